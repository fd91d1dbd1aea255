package statd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two simulated hosts in network namespaces this test creates: "srv" runs
// its own rpcbind, our statd and a fake lock manager; "peer" runs the real
// sm-notify. They talk over a veth pair whose addresses exist only inside
// the two namespaces.
type hosts struct {
	t                  *testing.T
	srv, peer          string // namespace names
	srvAddr, peerAddr  string
	helper, work       string
	srvProc            *exec.Cmd
	callbacks, capture string
}

func netns(t *testing.T) *hosts {
	t.Helper()
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/sm-notify", "/usr/sbin/ip")
	id := os.Getpid() % 100000
	h := &hosts{t: t, srv: fmt.Sprintf("nfsr-srv-%d", id), peer: fmt.Sprintf("nfsr-peer-%d", id),
		srvAddr: "10.77.0.1", peerAddr: "10.77.0.2", work: t.TempDir()}
	veth := fmt.Sprintf("nfsr%d", id)
	steps := [][]string{
		{"netns", "add", h.srv}, {"netns", "add", h.peer},
		{"link", "add", veth + "a", "type", "veth", "peer", "name", veth + "b"},
		{"link", "set", veth + "a", "netns", h.srv}, {"link", "set", veth + "b", "netns", h.peer},
		{"-n", h.srv, "addr", "add", h.srvAddr + "/24", "dev", veth + "a"},
		{"-n", h.peer, "addr", "add", h.peerAddr + "/24", "dev", veth + "b"},
		{"-n", h.srv, "link", "set", veth + "a", "up"}, {"-n", h.peer, "link", "set", veth + "b", "up"},
		{"-n", h.srv, "link", "set", "lo", "up"}, {"-n", h.peer, "link", "set", "lo", "up"},
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", h.srv).Run()
		exec.Command("ip", "netns", "del", h.peer).Run()
	})
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("ip %v: %v %s", s, err, out)
			}
			t.Skipf("network namespaces unavailable: ip %v: %v %s", s, err, out)
		}
	}
	h.helper = filepath.Join(h.work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", h.helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		t.Fatalf("building nsmhelper: %v %s", err, out)
	}
	return h
}

// in runs a command in namespace ns and returns its output.
func (h *hosts) in(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// startServer brings up rpcbind, the fake lock manager and our statd in
// the srv namespace, in a private mount namespace (its own /run), and
// captures the srv side of the link with tshark when available.
func (h *hosts) startServer(capture bool) { h.startServerWith(capture, false) }

// startServerWith runs the real rpc.statd instead of ours when real is set.
func (h *hosts) startServerWith(capture, real bool) {
	t := h.t
	dir := filepath.Join(h.work, "srv")
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	link := filepath.Join(h.work, "rpc.statd")
	os.Symlink(bin, link)
	h.callbacks = filepath.Join(h.work, "callbacks.jsonl")
	h.capture = filepath.Join(h.work, "capture.pcapng")
	tsharkCmd := ":"
	if capture {
		tsharkCmd = fmt.Sprintf(`tshark -q -i any -w %[1]s -f 'not port 22' >/dev/null 2>%[2]s/tshark.err & echo $! > %[2]s/tshark.pid
for i in $(seq 100); do grep -q 'Capturing on' %[2]s/tshark.err && break; sleep 0.1; done`, h.capture, h.work)
	}
	statdCmd := fmt.Sprintf("%s -F -d -L -P %s --db %s/nfsrecover.db --pid-file %s/pid --nsm-state-file %s/kstate", link, dir, dir, dir, dir)
	if real {
		os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
		statdCmd = fmt.Sprintf("/usr/sbin/rpc.statd -F -d -L -P %s", dir)
	}
	script := fmt.Sprintf(`mount -t tmpfs none /run && mkdir -p /run/rpcbind &&
/usr/sbin/rpcbind -f -w & sleep 0.5
%s
%s lockd %s > %s/lockd.log 2>&1 &
exec %s`, tsharkCmd, h.helper, h.callbacks, h.work, statdCmd)
	cmd := exec.Command("ip", "netns", "exec", h.srv, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NFSRECOVER_NFS_CONF=/nonexistent"}
	logf, _ := os.Create(filepath.Join(h.work, "statd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.srvProc = cmd
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			for _, f := range []string{"statd.log", "lockd.log"} {
				b, _ := os.ReadFile(filepath.Join(h.work, f))
				t.Logf("%s:\n%s", f, b)
			}
		}
	})
	for i := 0; i < 100; i++ {
		out, _ := h.in(h.peer, "rpcinfo", "-T", "tcp", h.srvAddr, "100024")
		if strings.Contains(out, "ready and waiting") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("statd in the server namespace never answered")
}

func (h *hosts) callbacksSeen() []map[string]any {
	b, _ := os.ReadFile(h.callbacks)
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// smNotifyFromPeer runs the real sm-notify on the peer host with a
// monitor record naming the server.
func (h *hosts) smNotifyFromPeer(extra ...string) {
	t := h.t
	dir := filepath.Join(h.work, "peer")
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
	line := "0100007f 000186b5 00000003 00000010 00000000000000000000000000000000 " + h.srvAddr + " peer.example\n"
	os.WriteFile(filepath.Join(dir, "sm", h.srvAddr), []byte(line), 0o600)
	args := append([]string{"/usr/sbin/sm-notify", "-d", "-f", "-P", dir}, extra...)
	out, err := h.in(h.peer, args...)
	if err != nil {
		t.Fatalf("sm-notify on the peer host: %v\n%s", err, out)
	}

}

func TestNamespacesRealSmNotifyAcrossHosts(t *testing.T) {
	h := netns(t)
	_, tsharkErr := exec.LookPath("tshark")
	h.startServer(tsharkErr == nil)
	// rpcinfo from the other host, over both transports.
	for _, tr := range []string{"udp", "tcp"} {
		if out, err := h.in(h.peer, "rpcinfo", "-T", tr, h.srvAddr, "100024"); err != nil || !strings.Contains(out, "ready and waiting") {
			t.Errorf("rpcinfo -T %s from the peer: %v %s", tr, err, out)
		}
	}
	// The local lock manager monitors the peer; the peer itself may not.
	priv := "000102030405060708090a0b0c0d0e0f"
	if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", h.peerAddr, priv); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("SM_MON from the server's loopback: %v %s", err, out)
	}
	if out, err := h.in(h.peer, h.helper, "mon", h.srvAddr, "victim.example", priv); err != nil || strings.TrimSpace(out) != "fail" {
		t.Errorf("SM_MON from another host must be refused: %v %s", err, out)
	}
	h.smNotifyFromPeer()
	var cbs []map[string]any
	for i := 0; i < 100 && len(cbs) == 0; i++ {
		time.Sleep(50 * time.Millisecond)
		cbs = h.callbacksSeen()
	}
	if len(cbs) != 1 || cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != priv || int(cbs[0]["state"].(float64))%2 != 1 {
		t.Fatalf("callbacks %v: want one for %s with priv %s and an odd state", cbs, h.peerAddr, priv)
	}
	if from, _ := cbs[0]["from"].(string); !strings.HasPrefix(from, "127.0.0.1:") || portOf(from) > 1023 {
		t.Errorf("callback came from %s: want 127.0.0.1 and a privileged port", from)
	}
	h.smNotifyFromPeer("-n") // same state again
	time.Sleep(500 * time.Millisecond)
	if n := len(h.callbacksSeen()); n != 1 {
		t.Errorf("replayed notification gave %d callbacks", n)
	}
	if tsharkErr == nil {
		h.checkCapture()
	}
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	var p int
	fmt.Sscan(addr[i+1:], &p)
	return p
}

// stopCapture stops tshark (SIGTERM: a background job of a non-interactive
// shell ignores SIGINT) and waits until it has written everything.
func (h *hosts) stopCapture() {
	raw, _ := os.ReadFile(filepath.Join(h.work, "tshark.pid"))
	var pid int
	fmt.Sscan(string(raw), &pid)
	if pid <= 0 {
		h.t.Fatal("no tshark pid")
	}
	time.Sleep(1500 * time.Millisecond) // libpcap hands packets over in batches
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			return // gone, or a zombie nobody reaps: its file is complete
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatal("tshark did not stop")
}

// checkCapture decodes the capture: NSM calls are there, nothing is
// malformed.
func (h *hosts) checkCapture() {
	t := h.t
	h.stopCapture()
	out, err := exec.Command("tshark", "-r", h.capture, "-Y", "stat", "-T", "fields", "-e", "stat.procedure_v1").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v %s", err, out)
	}
	procs := string(out)
	if !strings.Contains(procs, "2") || !strings.Contains(procs, "6") {
		t.Errorf("capture lacks SM_MON (2) and SM_NOTIFY (6): %q", procs)
	}
	bad, _ := exec.Command("tshark", "-r", h.capture, "-Y", "_ws.malformed || _ws.expert.severity >= error").Output()
	if len(bytes.TrimSpace(bad)) > 0 {
		t.Errorf("malformed packets in the capture:\n%s", bad)
	}
}

// TestNamespacesOurSmNotifyToRealStatd: our sm-notify on the peer host
// notifies the real rpc.statd on the server host, which calls back the
// lock manager; a capture of our traffic on the peer host decodes cleanly.
func TestNamespacesOurSmNotifyToRealStatd(t *testing.T) {
	h := netns(t)
	need(t, "/usr/sbin/rpc.statd")
	h.startServerWith(false, true)
	priv := "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", h.peerAddr, priv); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("SM_MON to the real statd: %v %s", err, out)
	}
	capture := filepath.Join(h.work, "peer.pcapng")
	stopCapture := h.captureIn(h.peer, capture)
	dir, db := peerDB(t, h.srvAddr)
	link := filepath.Join(dir, "sm-notify")
	os.Symlink(bin, link)
	out, err := h.in(h.peer, "env", "NFSRECOVER_NFS_CONF=/nonexistent", link, "-d", "-P", dir, "--db", db,
		"--pid-file", filepath.Join(dir, "guard"), "--nsm-state-file", filepath.Join(dir, "kstate"), "--deadline", "20s")
	if err != nil {
		t.Fatalf("our sm-notify: %v\n%s", err, out)
	}
	var cbs []map[string]any
	for i := 0; i < 100 && len(cbs) == 0; i++ {
		time.Sleep(50 * time.Millisecond)
		cbs = h.callbacksSeen()
	}
	if len(cbs) != 1 || cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != priv || cbs[0]["state"].(float64) != 3 {
		t.Fatalf("the real statd's callbacks: %v\nour sm-notify said:\n%s", cbs, out)
	}
	if stopCapture == nil {
		return
	}
	stopCapture()
	fields, _ := exec.Command("tshark", "-r", capture, "-Y", "stat.procedure_v1 == 6 && rpc.msgtyp == 0",
		"-T", "fields", "-e", "stat.mon_id.name", "-e", "stat.state").Output()
	if string(fields) != "peer.example\t3\npeer\t3\n" {
		all, _ := exec.Command("tshark", "-r", capture).Output()
		t.Errorf("capture lacks our SM_NOTIFYs (full, then short name):\n%s\nall packets:\n%s", fields, all)
	}
	bad, _ := exec.Command("tshark", "-r", capture, "-Y", "_ws.malformed || _ws.expert.severity >= error").Output()
	if len(bytes.TrimSpace(bad)) > 0 {
		t.Errorf("malformed packets:\n%s", bad)
	}
}

// captureIn starts tshark in namespace ns, waits until it captures, and
// returns a function that stops it once everything is written (nil when
// tshark is not installed).
func (h *hosts) captureIn(ns, file string) func() {
	if _, err := exec.LookPath("tshark"); err != nil {
		return nil
	}
	errf := file + ".err"
	cmd := exec.Command("ip", "netns", "exec", ns, "tshark", "-q", "-i", "any", "-w", file)
	ef, _ := os.Create(errf)
	cmd.Stderr = ef
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(errf); bytes.Contains(b, []byte("Capturing on")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// tshark says so before its capture child really sees packets, and
	// sm-notify's whole exchange takes a millisecond.
	time.Sleep(time.Second)
	return func() {
		// libpcap hands packets over in batches: give the last ones time to
		// reach the file before stopping.
		time.Sleep(1500 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		ef.Close()
		// tshark writes through its capture child (dumpcap), which may
		// still be flushing the file when tshark is gone.
		for i := 0; i < 100; i++ {
			if exec.Command("pgrep", "-f", "--", "dumpcap.*"+regexp.QuoteMeta(file)).Run() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
