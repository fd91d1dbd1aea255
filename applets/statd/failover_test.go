package statd_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startNodeStatd runs our rpc.statd, with its own rpcbind and /run, on the
// "peer" side of the link, which plays the NFS server node that holds the
// VIP (10.77.0.2), with its state in dir. It returns the process group to
// kill.
func (h *hosts) startNodeStatd(dir string) *exec.Cmd {
	t := h.t
	link := filepath.Join(h.work, "rpc.statd")
	os.Symlink(bin, link)
	script := fmt.Sprintf(`mount -t tmpfs none /run && mkdir -p /run/rpcbind || exit 1
/usr/sbin/rpcbind -f -w &
for i in $(seq 300); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.05; done
exec %s -F -d -L -P %s --pid-file /run/statd.pid --nsm-state-file %s/kstate`, link, dir, h.work)
	cmd := exec.Command("ip", "netns", "exec", h.peer, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NFSRECOVER_NFS_CONF=/nonexistent"}
	logf, _ := os.Create(filepath.Join(h.work, "node-statd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait(); logf.Close() })
	if !waitFor(30*time.Second, func() bool {
		out, _ := h.in(h.peer, "rpcinfo", "-T", "tcp", "127.0.0.1", "100024")
		return strings.Contains(out, "ready and waiting")
	}) {
		b, _ := os.ReadFile(filepath.Join(h.work, "node-statd.log"))
		t.Fatalf("our statd on the node never answered:\n%s", b)
	}
	return cmd
}

// stateOf reads a state file as nfs-utils does: a native-endian int.
func stateOf(t *testing.T, dir string) int32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil || len(b) < 4 {
		t.Fatalf("state file: %v (%d bytes)", err, len(b))
	}
	return int32(binary.NativeEndian.Uint32(b))
}

// nextState is nfs-utils' nsm_get_state(update): an even state is made
// odd, then it advances by 2 (the rule TestNotifyFromEditedFiles checks
// against the real sm-notify).
func nextState(s int32) int32 {
	if s&1 == 0 {
		s++
	}
	return s + 2
}

// TestFailoverPacemakerNfsnotify replays a fail-over as Pacemaker's
// nfsnotify agent does it. Node A runs our statd with its state on the
// shared directory and monitors the client host (which runs the real
// rpc.statd and a lock manager, and monitors the VIP); A dies with kill
// -9. Node B, holding the VIP, runs the agent's commands: killall -TERM
// the installed sm-notify, pgrep rpc.statd, cp -rpfn sm sm.bak state to a
// copy, sm-notify -f -v VIP -P COPY. The client's real statd calls its
// lock manager back for the VIP, with the state nfs-utils would have sent.
func TestFailoverPacemakerNfsnotify(t *testing.T) {
	h := netns(t)
	need(t, "/usr/sbin/rpc.statd", "killall", "pgrep")
	h.startServerWith(true) // the client host: real rpc.statd + lock manager, at 10.77.0.1
	clientPriv := "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", h.peerAddr, clientPriv); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("the client's lock manager monitoring the VIP: %v %s", err, out)
	}
	shared := filepath.Join(h.work, "shared", "statd")
	for _, d := range []string{"sm", "sm.bak"} {
		os.MkdirAll(filepath.Join(shared, d), 0o700)
	}
	nodeA := h.startNodeStatd(shared)
	if out, err := h.in(h.peer, h.helper, "mon", "127.0.0.1", h.srvAddr, "000102030405060708090a0b0c0d0e0f"); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("node A monitoring the client: %v %s", err, out)
	}
	syscall.Kill(-nodeA.Process.Pid, syscall.SIGKILL) // node A dies
	nodeA.Wait()

	// Node B, as heartbeat/nfsnotify's start action.
	sbin := t.TempDir()
	if out, err := exec.Command(bin, "--install", "-s", sbin).CombinedOutput(); err != nil {
		t.Fatalf("--install: %v %s", err, out)
	}
	exec.Command("killall", "-TERM", filepath.Join(sbin, "sm-notify")).Run() // nothing to kill: fine
	copyDir := filepath.Join(shared, "nfsnotify.bu")
	os.MkdirAll(copyDir, 0o755)
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("cp -rpfn %[1]s/sm %[1]s/sm.bak %[1]s/state %[2]s", shared, copyDir)).CombinedOutput(); err != nil {
		t.Fatalf("cp -rpfn: %v %s", err, out)
	}
	before := stateOf(t, copyDir)
	out, err := h.in(h.peer, "env", "NFSRECOVER_NFS_CONF=/nonexistent", filepath.Join(sbin, "sm-notify"), "-d", "-f", "-v", h.peerAddr, "-P", copyDir,
		"--pid-file", filepath.Join(h.work, "guard"), "--nsm-state-file", filepath.Join(h.work, "kstate"), "--deadline", "30s")
	if err != nil {
		t.Fatalf("sm-notify -f -v VIP -P COPY: %v\n%s", err, out)
	}
	var cbs []map[string]any
	waitFor(20*time.Second, func() bool { cbs = h.callbacksSeen(); return len(cbs) > 0 })
	if len(cbs) == 0 {
		t.Fatalf("the client's lock manager was never called back; sm-notify said:\n%s", out)
	}
	want := nextState(before)
	if cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != clientPriv || int32(cbs[0]["state"].(float64)) != want {
		t.Errorf("callback %v: want mon_name %s (the VIP), priv %s, state %d", cbs[0], h.peerAddr, clientPriv, want)
	}
	if got := stateOf(t, copyDir); got != want {
		t.Errorf("the copy's state file holds %d, want %d", got, want)
	}
}

// TestFailoverCTDBSendNotifies replays CTDB's statd_callout_helper
// send_notifies for a taken-over public IP: it writes SIPDIR/sm/<client>
// with smnotify_helper's line (vers 4, an all-zero priv) and a 4-byte
// host-order state from the clock, then runs "timeout 10 sm-notify -d -f
// -m 0 -n -P SIPDIR -v SIP". The client's real statd calls its lock
// manager back for the IP, with that state made odd (-n: not advanced).
func TestFailoverCTDBSendNotifies(t *testing.T) {
	h := netns(t)
	need(t, "/usr/sbin/rpc.statd", "timeout")
	h.startServerWith(true)
	clientPriv := "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", h.peerAddr, clientPriv); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("the client's lock manager monitoring the public IP: %v %s", err, out)
	}
	sipdir := filepath.Join(h.work, "sm-notify", h.peerAddr)
	for _, d := range []string{"sm", "sm.bak"} {
		os.MkdirAll(filepath.Join(sipdir, d), 0o755)
	}
	line := fmt.Sprintf("%08x %08x %08x %08x %s %s %s\n", binary.NativeEndian.Uint32([]byte{127, 0, 0, 1}), 100021, 4, 16,
		strings.Repeat("0", 32), h.srvAddr, h.peerAddr)
	os.WriteFile(filepath.Join(sipdir, "sm", h.srvAddr), []byte(line), 0o644)
	clock := int32(time.Now().Unix())
	os.WriteFile(filepath.Join(sipdir, "state"), binary.NativeEndian.AppendUint32(nil, uint32(clock)), 0o644)
	sbin := t.TempDir()
	if out, err := exec.Command(bin, "--install", "-s", sbin).CombinedOutput(); err != nil {
		t.Fatalf("--install: %v %s", err, out)
	}
	out, err := h.in(h.peer, "env", "NFSRECOVER_NFS_CONF=/nonexistent", "timeout", "10", filepath.Join(sbin, "sm-notify"),
		"-d", "-f", "-m", "0", "-n", "-P", sipdir, "-v", h.peerAddr,
		"--pid-file", filepath.Join(h.work, "guard"), "--nsm-state-file", filepath.Join(h.work, "kstate"))
	if err != nil {
		t.Fatalf("sm-notify as CTDB runs it: %v\n%s", err, out)
	}
	var cbs []map[string]any
	waitFor(20*time.Second, func() bool { cbs = h.callbacksSeen(); return len(cbs) > 0 })
	want := clock | 1
	if len(cbs) == 0 || cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != clientPriv || int32(cbs[0]["state"].(float64)) != want {
		t.Fatalf("callbacks %v: want one for %s with priv %s and state %d\nsm-notify said:\n%s", cbs, h.peerAddr, clientPriv, want, out)
	}
	if got := stateOf(t, sipdir); got != clock {
		t.Errorf("with -n the state file must be left as CTDB wrote it: %d, want %d", got, clock)
	}
}
