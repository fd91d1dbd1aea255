package statd_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// identity returns a process's command name and argv[0].
func identity(t *testing.T, pid int) (comm, argv0 string) {
	t.Helper()
	c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	first, _, _ := bytes.Cut(cmdline, []byte{0})
	return strings.TrimSpace(string(c)), string(first)
}

// pgrepX reports whether "pgrep -x name" lists pid.
func pgrepX(name string, pid int) bool {
	out, _ := exec.Command("pgrep", "-x", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if f == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// TestForkedStatdIdentity: started as "nfsrecover statd" (no link at all),
// the forked daemon shows rpc.statd as its command name and argv[0], so
// Pacemaker's "pgrep rpc.statd", CTDB's "killall rpc.statd" and
// nfsnotify's "/proc/PID/cmdline | grep rpc.statd" find it.
func TestForkedStatdIdentity(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "pgrep")
	dir := t.TempDir()
	cmd := exec.Command(bin, "statd", "-L", "-P", dir, "--nsm-state-file", filepath.Join(dir, "kstate"),
		"--pid-file", filepath.Join(dir, "pid"))
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("statd: %v %s", err, out)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if pid <= 0 {
		t.Fatalf("pid file %q", raw)
	}
	defer syscall.Kill(pid, syscall.SIGTERM)
	if comm, argv0 := identity(t, pid); comm != "rpc.statd" || argv0 != "rpc.statd" {
		t.Errorf("forked statd shows comm %q, argv[0] %q; want rpc.statd for both", comm, argv0)
	}
	if !pgrepX("rpc.statd", pid) {
		t.Errorf("pgrep -x rpc.statd does not find the forked statd (pid %d)", pid)
	}
	// The -P directory decides where its state is.
	if _, err := os.Stat(filepath.Join(dir, "nfsrecover.db")); err != nil {
		t.Errorf("statd -P %s did not keep its database there: %v", dir, err)
	}
}

// TestKillallSmNotifyKillsOnlySmNotify replays Pacemaker's nfsnotify
// "killall -TERM /usr/sbin/sm-notify" on an installed tree: it stops the
// running sm-notify and leaves rpc.statd, another applet of the same
// binary, running.
func TestKillallSmNotifyKillsOnlySmNotify(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "killall")
	sbin := t.TempDir()
	if out, err := exec.Command(bin, "--install", "-s", sbin).CombinedOutput(); err != nil {
		t.Fatalf("--install: %v %s", err, out)
	}
	dir := t.TempDir()
	statd := exec.Command(filepath.Join(sbin, "rpc.statd"), "-F", "-L", "-P", dir,
		"--nsm-state-file", filepath.Join(dir, "kstate"), "--pid-file", filepath.Join(dir, "pid"))
	statd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if err := statd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { statd.Process.Kill(); statd.Wait() }()
	if !statdAnswers() {
		t.Fatal("statd did not start")
	}
	// An sm-notify that keeps retrying a silent peer (nothing listens on
	// 192.0.2.1 in this namespace).
	peer, db := peerDB(t, "192.0.2.1")
	notify := exec.Command(filepath.Join(sbin, "sm-notify"), "-d", "-P", peer, "--db", db,
		"--pid-file", filepath.Join(peer, "guard"), "--nsm-state-file", filepath.Join(peer, "kstate"), "--deadline", "5m")
	notify.Env = statd.Env
	if err := notify.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- notify.Wait() }()
	if !waitFor(10*time.Second, func() bool { return pgrepX("sm-notify", notify.Process.Pid) }) {
		t.Fatal("sm-notify does not show as sm-notify")
	}
	if out, err := exec.Command("killall", "-TERM", filepath.Join(sbin, "sm-notify")).CombinedOutput(); err != nil {
		t.Fatalf("killall -TERM %s/sm-notify: %v %s", sbin, err, out)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("killall by path did not stop sm-notify")
	}
	if err := statd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("killall by sm-notify's path also killed rpc.statd: %v", err)
	}
	if !statdAnswers() {
		t.Error("rpc.statd stopped answering after killall of sm-notify")
	}
}
