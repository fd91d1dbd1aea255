package powercut

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/lazyfs"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/store"
)

// bin is the nfsrecover binary the tests run.
var bin string

// TestMain runs the package in a network and mount namespace of its own
// (statd needs its own rpcbind; the FUSE mounts stay private) and builds
// the binary.
func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

// rig is a lazyfs mount that the programs under test use as their disk,
// with a power switch.
type rig struct {
	t     *testing.T
	fs    *lazyfs.FS
	mnt   *lazyfs.Mount
	dir   string // the mount point
	work  string // scratch space off the mount (links, logs, pid files)
	rng   *rand.Rand
	cuts  int
	procs []*exec.Cmd // running on the mount: killed by a cut
}

func newRig(t *testing.T) *rig {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Unavailable(t, "/dev/fuse: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := &rig{t: t, fs: lazyfs.New(), dir: t.TempDir(), work: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 1))}
	var err error
	if r.mnt, err = r.fs.Mount(r.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.killAll()
		r.mnt.Unmount()
		t.Logf("%d power cuts", r.cuts)
	})
	return r
}

// path returns a path on the mount.
func (r *rig) path(elem ...string) string { return filepath.Join(append([]string{r.dir}, elem...)...) }

// link returns a link to the binary named name (argv[0] picks the applet).
func (r *rig) link(name string) string {
	p := filepath.Join(r.work, name)
	if _, err := os.Lstat(p); err != nil {
		if err := os.Symlink(bin, p); err != nil {
			r.t.Fatal(err)
		}
	}
	return p
}

// start runs a program whose files live on the mount; a cut kills it.
func (r *rig) start(cmd *exec.Cmd) {
	r.t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.procs = append(r.procs, cmd)
}

// killAll kills every program started on the mount, as a power cut does,
// and reaps it.
func (r *rig) killAll() {
	for _, c := range r.procs {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
	}
	r.procs = nil
}

// cut kills everything running on the mount, drops what was not made
// durable, and mounts the file system again, as a reboot would.
func (r *rig) cut() {
	r.t.Helper()
	r.killAll()
	if err := r.mnt.Unmount(); err != nil {
		r.t.Fatal(err)
	}
	r.fs.Cut()
	var err error
	if r.mnt, err = r.fs.Mount(r.dir); err != nil {
		r.t.Fatal(err)
	}
	r.cuts++
}

// snapshot reads a database off the mount (with read(2), so no page of it
// is ever mapped by the process that serves the mount), checks that it
// opens clean, and returns its contents. A missing file is empty.
func (r *rig) snapshot(dbPath string) (store.Contents, []string) {
	r.t.Helper()
	var c store.Contents
	bad := r.withCopy(dbPath, func(db *store.DB) (bad []string) {
		for _, p := range db.Check() {
			bad = append(bad, "db check: "+p.Error())
		}
		var err error
		if c, err = db.Dump(); err != nil {
			bad = append(bad, fmt.Sprintf("dump: %v", err))
		}
		return bad
	})
	return c, bad
}

// withCopy copies a database off the mount and opens the copy for fn;
// fn's changes are copied back, durably. A missing file starts empty.
func (r *rig) withCopy(dbPath string, fn func(*store.DB) []string) []string {
	r.t.Helper()
	local := filepath.Join(r.t.TempDir(), "copy.db")
	data, err := os.ReadFile(dbPath)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return []string{fmt.Sprintf("read %s: %v", dbPath, err)}
	default:
		if err := os.WriteFile(local, data, 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	db, err := store.Open(local, nil)
	if err != nil {
		return []string{fmt.Sprintf("the database does not open after the cut: %v", err)}
	}
	bad := fn(db)
	db.Close()
	if after, _ := os.ReadFile(local); !bytes.Equal(after, data) {
		r.put(local, dbPath)
	}
	return bad
}

// put copies a file prepared off the mount onto it, durably (as if it had
// been there before the test's boot).
func (r *rig) put(src, dst string) {
	r.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		r.t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.fs.SyncAll()
}

// report fails the test with the violations found after a cut.
func report(t *testing.T, round int, bad []string) {
	t.Helper()
	if len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("... and %d more", len(bad)-10))
		}
		t.Errorf("after cut %d:\n  %s", round, strings.Join(bad, "\n  "))
	}
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// runCut starts cmd on the mount, kills it after delay unless it finished
// before, and cuts the power. It returns how long the command ran and how
// it ended.
func (r *rig) runCut(cmd *exec.Cmd, delay time.Duration) (time.Duration, error) {
	r.t.Helper()
	start := time.Now()
	r.start(cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(delay):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	took := time.Since(start)
	r.procs = nil // reaped above
	r.cut()
	return took, err
}
