package statd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

// dirSnapshot is what HA agents copy from a state directory: each file of
// sm/, sm.bak/ and state with its bytes and mode.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	for _, sub := range []string{"sm", "sm.bak"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			st, _ := os.Stat(p)
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s/%s %v %q", sub, e.Name(), st.Mode().Perm(), b))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state")); err == nil {
		st, _ := os.Stat(filepath.Join(dir, "state"))
		out = append(out, fmt.Sprintf("state %v %x", st.Mode().Perm(), b))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// nsmCall sends one NSM call over TCP from 127.0.0.1 and waits for the
// reply.
func nsmCall(t *testing.T, proc uint32, arg any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err != nil || port == 0 {
		t.Fatalf("no statd registered: %v", err)
	}
	args, _ := nsm.Encode(arg)
	if _, err := oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, proc, args); err != nil {
		t.Fatalf("NSM proc %d: %v", proc, err)
	}
}

// mirrorSequence is the SM_MON/SM_UNMON sequence both statds get.
func mirrorSequence() []func(t *testing.T) {
	mon := func(name, my, priv string) func(t *testing.T) {
		return func(t *testing.T) {
			var m nsm.Mon
			m.MonID = nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: my, MyProg: 100021, MyVers: 3, MyProc: 16}}
			copy(m.Priv[:], priv)
			nsmCall(t, nsm.ProcMon, &m)
		}
	}
	unmon := func(name, my string) func(t *testing.T) {
		return func(t *testing.T) {
			nsmCall(t, nsm.ProcUnmon, &nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: my, MyProg: 100021, MyVers: 3, MyProc: 16}})
		}
	}
	return []func(t *testing.T){
		mon("10.7.0.1", "server", "cookie-one"),
		mon("10.7.0.2", "server", "cookie-two"),
		mon("10.7.0.1", "server", "cookie-new"),      // a new cookie replaces the line
		mon("10.7.0.1", "other.example", "cookie-3"), // a second line in the same file
		unmon("10.7.0.2", "server"),                  // the file goes
		unmon("10.7.0.1", "server"),                  // one line of two goes
		mon("10.7.0.3", "my name", "spaces"),         // whitespace in my_name becomes _
	}
}

// runSequence starts a statd with start on a fresh state directory (sm/
// and sm.bak/ owned by root, no state file), plays the sequence and
// returns the directory after each reply.
func runSequence(t *testing.T, start func(dir string) *exec.Cmd) []string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"sm", "sm.bak"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
	}
	cmd := start(dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !statdAnswers() {
		t.Fatal("statd did not start")
	}
	snaps := []string{dirSnapshot(t, dir)}
	for _, step := range mirrorSequence() {
		step(t)
		snaps = append(snaps, dirSnapshot(t, dir))
	}
	return snaps
}

// TestMirrorMatchesRealStatd: the same SM_MON/SM_UNMON sequence goes to
// nfs-utils' rpc.statd and to ours, each on its own state directory; after
// every reply sm/, sm.bak/ and state are the same, byte for byte and mode
// for mode.
func TestMirrorMatchesRealStatd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/rpc.statd")
	real := runSequence(t, func(dir string) *exec.Cmd {
		cmd := exec.Command("/usr/sbin/rpc.statd", "-F", "-L", "-P", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	})
	ours := runSequence(t, func(dir string) *exec.Cmd {
		cmd := exec.Command(bin, "statd", "-F", "-L", "-P", dir, "--nsm-state-file", filepath.Join(dir, "..", "kstate-ours"),
			"--pid-file", filepath.Join(t.TempDir(), "pid"))
		cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	})
	for i := range real {
		if real[i] != ours[i] {
			t.Errorf("after step %d the state directories differ:\n--- real rpc.statd\n%s\n--- ours\n%s", i, real[i], ours[i])
		}
	}
}
