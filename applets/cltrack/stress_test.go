package cltrack_test

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
)

// TestConcurrentUpcalls is spec T-C12: 50 parallel creates and 50 checks,
// as the kernel may issue for different clients, all succeed.
func TestConcurrentUpcalls(t *testing.T) {
	o := newOurs(t)
	if code := o.run(t, nil, "init"); code != 0 {
		t.Fatal(code)
	}
	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func(i int) { defer wg.Done(); codes[i] = o.run(t, []string{v40}, "create", fmt.Sprintf("%04x", i)) }(i)
		go func(i int) { defer wg.Done(); codes[50+i] = o.run(t, []string{v41}, "check", "ffff") }(i)
	}
	wg.Wait()
	for i, c := range codes {
		if i < 50 && c != 0 || i >= 50 && c != 255 {
			t.Errorf("upcall %d exited %d", i, c)
		}
	}
	if rows := o.rows(t); len(rows) != 50 {
		t.Errorf("%d rows after 50 creates", len(rows))
	}
}

// TestCrashSafety kills creates with SIGKILL at random moments: every
// create that reported success is in the database afterwards, and the
// database passes "db check". The kill window adapts to how long an exec
// takes here, and rounds repeat (with a shorter window) until both kills
// and completions have happened often enough.
func TestCrashSafety(t *testing.T) {
	o := newOurs(t)
	o.run(t, nil, "init")
	start := time.Now()
	for i := 0; i < 5; i++ {
		o.run(t, []string{v40}, "create", fmt.Sprintf("ff%02x", i))
	}
	window := 2 * time.Since(start) / 5
	rng := rand.New(rand.NewSource(1))
	var recorded []string
	killed, next := 0, 0
	for round := 0; round < 8 && (killed < 20 || len(recorded) < 20); round++ {
		k, ok := crashRound(t, o, rng, &next, window)
		killed += k
		recorded = append(recorded, ok...)
		window = window * 2 / 3
	}
	t.Logf("%d creates succeeded, %d killed mid-way", len(recorded), killed)
	if killed < 20 || len(recorded) < 20 {
		t.Fatalf("could not get both outcomes (killed %d, completed %d)", killed, len(recorded))
	}
	have := map[string]bool{}
	for _, r := range o.rows(t) {
		have[r.ID] = true
	}
	for _, id := range recorded {
		if !have[fmt.Sprintf("%X", mustHex(id))] {
			t.Errorf("create %s succeeded but its record is gone", id)
		}
	}
	out, err := exec.Command(bin, "db", "check", "--db", filepath.Join(o.dir, "nfsrecover.db")).CombinedOutput()
	if err != nil {
		t.Errorf("db check after kills: %v\n%s", err, out)
	}
}

// crashRound runs 100 creates, 8 at a time; half are killed at a random
// point in window. It returns the kill count and the ids that succeeded.
func crashRound(t *testing.T, o *side, rng *rand.Rand, next *int, window time.Duration) (int, []string) {
	var mu sync.Mutex
	var ok []string
	killed := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("%06x", *next)
		*next++
		delay := time.Hour
		if rng.Intn(2) == 0 {
			delay = time.Duration(rng.Int63n(int64(window) + 1))
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cmd := exec.Command(o.exe, "-s", o.dir, "create", id)
			cmd.Env = []string{v40}
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			timer := time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
			err := cmd.Wait()
			timer.Stop()
			mu.Lock()
			defer mu.Unlock()
			var ee *exec.ExitError
			switch {
			case err == nil:
				ok = append(ok, id)
			case errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled():
				killed++
			default:
				t.Errorf("create %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	return killed, ok
}

func mustHex(s string) []byte {
	var b []byte
	fmt.Sscanf(s, "%x", &b)
	return b
}

// TestEnvFreeExecution is spec T-C13: empty environment, cwd "/", run
// through a symlink called nfsdcltrack at a long path.
func TestEnvFreeExecution(t *testing.T) {
	d := t.TempDir()
	long := filepath.Join(d, "usr", "local", "very", "long", "path", "sbin", "nfsdcltrack")
	os.MkdirAll(filepath.Dir(long), 0o755)
	os.Symlink(bin, long)
	store := filepath.Join(d, "s")
	for _, c := range []struct {
		args []string
		want int
	}{{[]string{"init"}, 0}, {[]string{"create", "aa"}, 0}, {[]string{"check", "aa"}, 0}, {[]string{"bogus"}, 218}} {
		cmd := exec.Command(long, append([]string{"-s", store}, c.args...)...)
		cmd.Env, cmd.Dir = []string{}, "/"
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.want)
		}
	}
}

// TestCapabilitiesDropped proves the production entry point leaves the
// process without capabilities once the database is open.
func TestCapabilitiesDropped(t *testing.T) {
	testenv.NeedRoot(t) // to have capabilities to drop
	d := t.TempDir()
	// A grace file that is a FIFO lets us catch the process after the drop.
	fifo := filepath.Join(d, "grace")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(d, "nfsdcltrack")
	os.Symlink(bin, link)
	cmd := exec.Command(link, "-s", filepath.Join(d, "s"), "--end-grace-file", fifo, "init")
	cmd.Env = []string{"NFSDCLTRACK_GRACE_START=1"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child opens the FIFO for writing after it dropped its
	// capabilities, and blocks there until we open it: inspect it while it
	// waits, with all its threads alive, then let it go.
	var status []byte
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		status, _ = os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if contains(string(status), "NoNewPrivs:\t1") && contains(string(status), "CapEff:\t0000000000000000") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("capabilities never dropped:\n%s", status)
		}
	}
	// Wait until it blocks in the FIFO's open (the kernel's
	// wait_for_partner), so every thread it will ever have is there.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", cmd.Process.Pid))
		if string(wchan) == "wait_for_partner" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("never blocked opening the FIFO (wchan %q)", wchan)
		}
	}
	status, _ = os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
	var threads []string
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		threads = append(threads, string(b))
	}
	f, err := os.Open(fifo) // releases the child
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd.Wait()
	if !contains(string(status), "CapBnd:\t0000000000000000") {
		t.Errorf("main thread keeps a bounding set:\n%s", status)
	}
	for _, st := range threads {
		for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1"} {
			if !contains(st, want) {
				t.Errorf("a thread lacks %q:\n%s", want, st)
			}
		}
	}
	if len(threads) < 2 {
		t.Errorf("expected several runtime threads, saw %d", len(threads))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
