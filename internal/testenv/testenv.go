// Package testenv is what nfsrecover's tests share to get the real tools,
// the privileges and the private network they need.
//
// Under CI=true a missing tool or privilege fails the test; elsewhere it
// skips with the reason, so a developer without root can still run the
// unit tests. Tests that run daemons call Isolate from TestMain: the test
// binary then runs in a network and mount namespace of its own, with a
// private /run, where each test starts its own rpcbind (StartRpcbind). A
// statd or rpcbind running on the host is never seen or touched.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run in CI, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t with the reason, or fails it under CI=true.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("unavailable in CI (CI=true): %s", msg)
	}
	t.Skip(msg)
}

// NeedRoot requires euid 0.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// NeedTools requires each program (a path, or a name found in PATH).
func NeedTools(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			Unavailable(t, "%s not installed (scripts/test-deps.sh installs it): %v", p, err)
		}
	}
}

// isolatedEnv marks the re-executed, isolated test binary.
const isolatedEnv = "NFSRECOVER_TEST_ISOLATED"

// Isolated reports whether this process runs in Isolate's namespaces.
func Isolated() bool { return os.Getenv(isolatedEnv) == "1" }

// Isolate runs the tests of a package in a network and mount namespace of
// their own: it re-executes the test binary there and returns its exit
// status, and in the re-executed binary it sets the namespace up (loopback
// up, a tmpfs over /run) and returns run(). Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Isolate(m.Run)) }
//
// Without root, outside CI, run is called unisolated and the tests that
// need root skip.
func Isolate(run func() int) int {
	if Isolated() {
		if err := setUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: isolated namespace: %v\n", err)
			return 2
		}
		return run()
	}
	if os.Geteuid() != 0 && !CI() {
		return run()
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	cmd.SysProcAttr = namespaces()
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: cannot run the tests in a namespace of their own: %v\n", err)
		return 2
	}
	return 0
}

// StartRpcbind starts a fresh rpcbind for this test and waits until it
// answers; it is killed when the test ends. It needs Isolate: on the
// host's network it would clash with the host's own rpcbind.
func StartRpcbind(t testing.TB) {
	t.Helper()
	NeedRoot(t)
	NeedTools(t, "/usr/sbin/rpcbind", "/usr/sbin/rpcinfo")
	if !Isolated() {
		Unavailable(t, "rpcbind tests need the namespace of testenv.Isolate (root)")
	}
	os.RemoveAll("/run/rpcbind")
	os.Remove("/run/rpcbind.sock")
	os.Remove("/run/rpcbind.lock")
	os.MkdirAll("/run/rpcbind", 0o755)
	cmd := exec.Command("/usr/sbin/rpcbind", "-f", "-w")
	if err := cmd.Start(); err != nil {
		t.Fatalf("rpcbind: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("/usr/sbin/rpcinfo", "-p", "127.0.0.1").CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rpcbind does not answer: rpcinfo -p: %v %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Lookup is an os.LookupEnv over m: the environment an applet's Main is
// given in a test.
func Lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// WaitFor polls cond until it holds or d passes, and reports whether it
// held: the way tests wait for an event instead of sleeping.
func WaitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// BuildBinary builds the static nfsrecover binary into a new temporary
// directory for tests that run it as the kernel or an HA agent would; the
// returned function removes it.
func BuildBinary() (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "nfsrecover-bin-")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "nfsrecover")
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", path, "nfsrecover")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building nfsrecover: %v\n%s", err, out)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// IsolateWithBinary is Isolate for packages that run the nfsrecover
// binary: inside the namespace it builds it, sets *bin to its path, runs
// the tests and removes it. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }
func IsolateWithBinary(run func() int, bin *string) int {
	return Isolate(func() int {
		path, remove, err := BuildBinary()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer remove()
		*bin = path
		return run()
	})
}

// SyncBuffer is a bytes.Buffer that a child process's output (or a
// logger) and the test may use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
