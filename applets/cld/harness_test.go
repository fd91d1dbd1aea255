//go:build linux

package cld

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/pipefs"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/nfsconf"
)

// realNfsdcld is the oracle: Debian's nfsdcld (nfs-utils 2.6.2).
const realNfsdcld = "/usr/sbin/nfsdcld"

// bin is the nfsrecover binary under test, built by TestMain.
var bin string

func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

// needRig requires what the FUSE rig needs.
func needRig(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, realNfsdcld, "fusermount3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Unavailable(t, "no /dev/fuse: %v", err)
	}
}

// rig is one daemon (ours or the real nfsdcld) behind an emulated
// rpc_pipefs, driven as the kernel drives it.
type rig struct {
	t       *testing.T
	name    string
	argv    []string // the daemon's command line without -p/-s
	fs      *pipefs.FS
	storage string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *testenv.SyncBuffer
	xid     uint32
	conf    string // nfs.conf for the daemon; "" = none
}

// newRig mounts a pipefs with the pipe created and starts the daemon.
// kind is "ours" or "real".
func newRig(t *testing.T, kind string) *rig {
	t.Helper()
	return newRigAt(t, kind, t.TempDir())
}

// newRigAt is newRig with the daemon's storage directory (-s) given.
func newRigAt(t *testing.T, kind, storage string) *rig {
	t.Helper()
	return newRigConf(t, kind, storage, "")
}

// newRigConf is newRigAt with an nfs.conf for the daemon ("" = none).
func newRigConf(t *testing.T, kind, storage, conf string) *rig {
	t.Helper()
	mnt := t.TempDir()
	fs, err := pipefs.Mount(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fs.Unmount(); err != nil {
			t.Error(err)
		}
	})
	r := &rig{t: t, name: kind, fs: fs, storage: storage, log: &testenv.SyncBuffer{}, conf: conf}
	switch kind {
	case "ours":
		r.argv = []string{bin, "cld", "-F", "-d"}
	case "real":
		r.argv = []string{realNfsdcld, "-F", "-d"}
	}
	if err := fs.CreatePipe(); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(func() { r.stop(syscall.SIGKILL) })
	return r
}

// start runs the daemon and waits until it has the pipe open.
func (r *rig) start() {
	r.t.Helper()
	args := append(append([]string{}, r.argv[1:]...), "-p", r.fs.Dir(), "-s", r.storage)
	r.cmd = exec.Command(r.argv[0], args...)
	r.cmd.Stderr = r.log
	conf := r.conf
	if conf == "" {
		conf = "/dev/null"
	}
	r.cmd.Env = append(os.Environ(), nfsconf.EnvPath+"="+conf)
	if err := r.cmd.Start(); err != nil {
		r.fatalf("%v", err)
	}
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(r.cmd, r.exited)
	r.waitReader()
}

// waitReader waits until the daemon has the pipe open.
func (r *rig) waitReader() {
	r.t.Helper()
	if !testenv.WaitFor(10*time.Second, func() bool { return r.fs.Readers() > 0 }) {
		r.fatalf("%s: daemon never opened the pipe; its log:\n%s", r.name, r.log)
	}
}

// stop signals the daemon and waits for it to exit.
func (r *rig) stop(sig syscall.Signal) {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(sig)
	// A dying process closes the pipe, and the kernel waits for this
	// test's FUSE server to answer that release; under -race on a loaded
	// CI machine a SIGKILLed daemon once took longer than 10 s to be gone.
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		r.t.Errorf("%s: did not exit on %v", r.name, sig)
		r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// call sends one upcall with the next xid and returns its downcalls.
func (r *rig) call(m cld.Msg) [][]byte {
	r.t.Helper()
	r.xid++
	m.XID = r.xid
	raw, err := cld.Encode(m)
	if err != nil {
		r.fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := r.fs.Call(ctx, raw)
	if err != nil {
		r.fatalf("%s: %v; its log:\n%s", r.name, err, r.log)
	}
	return got
}

// fatalf fails the test and ends the calling goroutine, which may be
// one of differential's (t.Fatal must not be called there).
func (r *rig) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf(r.name+": "+format, args...)
	runtime.Goexit()
}

// step is one thing the "kernel" does to both daemons.
type step struct {
	op  string // "call", "restart", "kill", "repipe"
	msg cld.Msg
}

func call(m cld.Msg) step { return step{op: "call", msg: m} }

var (
	restart = step{op: "restart"} // SIGTERM, start again
	kill9   = step{op: "kill"}    // SIGKILL, start again
	repipe  = step{op: "repipe"}  // nfsd restart: remove the pipe, create it again
)

// transcript runs steps on r and returns every downcall in order, each
// prefixed by its step number.
func (r *rig) transcript(steps []step) []string {
	var out []string
	for i, s := range steps {
		switch s.op {
		case "call":
			ds := r.call(s.msg)
			if s.msg.Cmd == cld.GraceStart && len(ds) > 1 {
				// The kernel files the stream into a hash table: its
				// order is free (ours writes several at once).
				slices.SortFunc(ds[:len(ds)-1], bytes.Compare)
			}
			for _, d := range ds {
				out = append(out, fmt.Sprintf("step %d: %s", i, describe(d)))
			}
		case "restart", "kill":
			sig := syscall.SIGTERM
			if s.op == "kill" {
				sig = syscall.SIGKILL
			}
			r.stop(sig)
			r.start()
		case "repipe":
			if err := r.fs.RemovePipe(); err != nil {
				r.fatalf("%v", err)
			}
			if err := r.fs.CreatePipe(); err != nil {
				r.fatalf("%v", err)
			}
			r.waitReader()
		}
	}
	return out
}

// describe shows a downcall's bytes in full and decoded.
func describe(d []byte) string {
	m, err := cld.Decode(d)
	return fmt.Sprintf("len=%d vers=%d cmd=%d status=%d xid=%d name=%q princhash=%x version=%d decode=%v raw=%x",
		len(d), m.Vers, m.Cmd, m.Status, m.XID, m.Name, m.PrincHash, m.Version, err, d)
}

// differential runs steps on ours and on the real nfsdcld and requires
// identical downcalls, byte for byte.
func differential(t *testing.T, steps []step) (ours, real []string) {
	t.Helper()
	needRig(t)
	return differentialWith(t, newRig(t, "ours"), steps)
}

// differentialWith runs steps on o (our daemon, however configured) and
// on the real nfsdcld, and fails on the first downcall that differs.
func differentialWith(t *testing.T, o *rig, steps []step) (ours, real []string) {
	t.Helper()
	var wg sync.WaitGroup
	re := newRig(t, "real")
	wg.Add(2)
	go func() { defer wg.Done(); ours = o.transcript(steps) }()
	go func() { defer wg.Done(); real = re.transcript(steps) }()
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := 0; i < max(len(ours), len(real)); i++ {
		var a, b string
		if i < len(ours) {
			a = ours[i]
		}
		if i < len(real) {
			b = real[i]
		}
		if a != b {
			t.Fatalf("downcall %d differs (of %d ours, %d real) from character %d:\nours: %s\nreal: %s\nour log ends:\n%s",
				i, len(ours), len(real), firstDiff(a, b), a, b, tail(o.log.String(), 2000))
		}
	}
	if len(real) == 0 {
		t.Fatal("no downcalls at all")
	}
	return ours, real
}

// pipefsDir is where a test that starts daemons by hand mounts.
func pipefsDir(t *testing.T) string { return filepath.Join(t.TempDir(), "pipefs") }

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
