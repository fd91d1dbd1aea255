package statd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
)

// Two simulated hosts in network namespaces this test creates: "srv" runs
// its own rpcbind, our statd and a fake lock manager; "peer" runs the real
// sm-notify. They talk over a veth pair whose addresses exist only inside
// the two namespaces.
type hosts struct {
	t                  *testing.T
	srv, peer          string // namespace names
	peerDev            string // the peer's end of the link
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
	h.peerDev = veth + "b"
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
			testenv.Unavailable(t, "network namespaces: ip %v: %v %s", s, err, out)
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
// the srv namespace, in a private mount namespace (its own /run).
func (h *hosts) startServer() { h.startServerWith(false) }

// startServerWith runs the real rpc.statd instead of ours when real is set.
func (h *hosts) startServerWith(real bool) {
	t := h.t
	dir := filepath.Join(h.work, "srv")
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	link := filepath.Join(h.work, "rpc.statd")
	os.Symlink(bin, link)
	h.callbacks = filepath.Join(h.work, "callbacks.jsonl")
	statdCmd := fmt.Sprintf("%s -F -d -L -P %s --db %s/nfsrecover.db --pid-file %s/pid --nsm-state-file %s/kstate", link, dir, dir, dir, dir)
	if real {
		os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
		statdCmd = fmt.Sprintf("/usr/sbin/rpc.statd -F -d -L -P %s", dir)
	}
	// Each step waits for the one before: rpcbind answers before the lock
	// manager registers, and the lock manager is registered before statd.
	// A resolver that refuses at once: the namespace has no DNS, and a
	// lookup must not wait for a timeout.
	resolv := filepath.Join(h.work, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644)
	script := fmt.Sprintf(`mount -t tmpfs none /run && mkdir -p /run/rpcbind && mount --bind %[5]s /etc/resolv.conf || exit 1
/usr/sbin/rpcbind -f -w &
for i in $(seq 300); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.05; done
%[1]s lockd %[2]s > %[3]s/lockd.log 2>&1 &
for i in $(seq 300); do rpcinfo -p 127.0.0.1 2>/dev/null | grep -q 100021 && break; sleep 0.05; done
exec %[4]s`, h.helper, h.callbacks, h.work, statdCmd, resolv)
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
	if !waitFor(30*time.Second, func() bool {
		out, _ := h.in(h.peer, "rpcinfo", "-T", "tcp", h.srvAddr, "100024")
		return strings.Contains(out, "ready and waiting")
	}) {
		t.Fatal("statd in the server namespace never answered")
	}
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

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
	testenv.NeedTools(t, "tshark")
	h.startServer()
	capture := h.startCapture(h.srv, filepath.Join(h.work, "capture.pcapng"))
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
	if out, err := h.in(h.peer, h.helper, "mon", h.srvAddr, "victim.example", priv); err != nil || !strings.HasPrefix(out, "fail") {
		t.Errorf("SM_MON from another host must be refused: %v %s", err, out)
	}
	h.smNotifyFromPeer()
	var cbs []map[string]any
	waitFor(10*time.Second, func() bool { cbs = h.callbacksSeen(); return len(cbs) > 0 })
	if len(cbs) != 1 || cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != priv || int(cbs[0]["state"].(float64))%2 != 1 {
		t.Fatalf("callbacks %v: want one for %s with priv %s and an odd state", cbs, h.peerAddr, priv)
	}
	if from, _ := cbs[0]["from"].(string); !strings.HasPrefix(from, "127.0.0.1:") || portOf(from) > 1023 {
		t.Errorf("callback came from %s: want 127.0.0.1 and a privileged port", from)
	}
	// The same state again: statd must decide on no callback (its log says
	// so once the SM_NOTIFY is answered). Then a new reboot: exactly one
	// more callback, with the new state, and none for the replay.
	replay := `msg=SM_NOTIFY .*state=` + fmt.Sprint(int(cbs[0]["state"].(float64))) + ` callbacks=0`
	before := h.logCount(replay)
	h.smNotifyFromPeer("-n")
	if !waitFor(10*time.Second, func() bool { return h.logCount(replay) > before }) {
		t.Errorf("statd logged no decision on the replayed notification")
	}
	h.smNotifyFromPeer()
	waitFor(10*time.Second, func() bool { return len(h.callbacksSeen()) >= 2 })
	if got := h.callbacksSeen(); len(got) != 2 || got[1]["state"] == cbs[0]["state"] {
		t.Errorf("after a replay and a new reboot: callbacks %v, want one more with a new state", got)
	}
	capture.stop()
	h.checkCapture(capture.file)
}

// logCount returns how many lines of the server's log match re.
func (h *hosts) logCount(re string) int {
	b, _ := os.ReadFile(filepath.Join(h.work, "statd.log"))
	return len(regexp.MustCompile(re).FindAll(b, -1))
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	var p int
	fmt.Sscan(addr[i+1:], &p)
	return p
}

// checkCapture decodes the capture: NSM calls are there, nothing is
// malformed.
func (h *hosts) checkCapture(file string) {
	t := h.t
	out, err := exec.Command("tshark", "-r", file, "-Y", "stat", "-T", "fields", "-e", "stat.procedure_v1").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v %s", err, out)
	}
	procs := string(out)
	if !strings.Contains(procs, "2") || !strings.Contains(procs, "6") {
		t.Errorf("capture lacks SM_MON (2) and SM_NOTIFY (6): %q", procs)
	}
	bad, _ := exec.Command("tshark", "-r", file, "-Y", "_ws.malformed || _ws.expert.severity >= error").Output()
	if len(bytes.TrimSpace(bad)) > 0 {
		t.Errorf("malformed packets in the capture:\n%s", bad)
	}
}

// TestNamespacesOurSmNotifyToRealStatd: our sm-notify on the peer host
// notifies the real rpc.statd on the server host, which calls back the
// lock manager; a capture of our traffic on the peer host decodes cleanly.
func TestNamespacesOurSmNotifyToRealStatd(t *testing.T) {
	h := netns(t)
	testenv.NeedTools(t, "/usr/sbin/rpc.statd", "tshark")
	h.startServerWith(true)
	priv := "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", h.peerAddr, priv); err != nil || !strings.HasPrefix(out, "succ") {
		t.Fatalf("SM_MON to the real statd: %v %s", err, out)
	}
	capture := h.startCapture(h.peer, filepath.Join(h.work, "peer.pcapng"))
	dir, db := peerDB(t, h.srvAddr)
	link := filepath.Join(dir, "sm-notify")
	os.Symlink(bin, link)
	out, err := h.in(h.peer, "env", "NFSRECOVER_NFS_CONF=/nonexistent", link, "-d", "-P", dir, "--db", db,
		"--pid-file", filepath.Join(dir, "guard"), "--nsm-state-file", filepath.Join(dir, "kstate"), "--deadline", "20s")
	if err != nil {
		t.Fatalf("our sm-notify: %v\n%s", err, out)
	}
	var cbs []map[string]any
	waitFor(10*time.Second, func() bool { cbs = h.callbacksSeen(); return len(cbs) > 0 })
	if len(cbs) != 1 || cbs[0]["mon_name"] != h.peerAddr || cbs[0]["priv"] != priv || cbs[0]["state"].(float64) != 3 {
		t.Fatalf("the real statd's callbacks: %v\nour sm-notify said:\n%s", cbs, out)
	}
	capture.stop()
	fields, _ := exec.Command("tshark", "-r", capture.file, "-Y", "stat.procedure_v1 == 6 && rpc.msgtyp == 0",
		"-T", "fields", "-e", "stat.mon_id.name", "-e", "stat.state").Output()
	if string(fields) != "peer.example\t3\npeer\t3\n" {
		all, _ := exec.Command("tshark", "-r", capture.file).Output()
		t.Errorf("capture lacks our SM_NOTIFYs (full, then short name):\n%s\nall packets:\n%s", fields, all)
	}
	bad, _ := exec.Command("tshark", "-r", capture.file, "-Y", "_ws.malformed || _ws.expert.severity >= error").Output()
	if len(bytes.TrimSpace(bad)) > 0 {
		t.Errorf("malformed packets:\n%s", bad)
	}
}

// capture is tshark writing what one namespace sees to a file. It prints
// a summary line per packet as it goes (-l -P), so the test can wait for
// marker datagrams instead of guessing how long libpcap takes.
type capture struct {
	h        *hosts
	ns, file string
	cmd      *exec.Cmd
	mu       sync.Mutex
	seen     []string
}

// Marker ports: a datagram to each proves the capture is live, or that
// everything before it was captured.
const startMarker, stopMarker = 19991, 19992

// startCapture starts tshark in namespace ns and returns once it captures.
func (h *hosts) startCapture(ns, file string) *capture {
	c := &capture{h: h, ns: ns, file: file}
	c.cmd = exec.Command("ip", "netns", "exec", ns, "tshark", "-l", "-P", "-i", "any", "-w", file)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.seen = append(c.seen, sc.Text())
			c.mu.Unlock()
		}
	}()
	c.marker(startMarker)
	return c
}

// marker sends datagrams to port inside the namespace until tshark shows
// one.
func (c *capture) marker(port int) {
	send := fmt.Sprintf("echo marker > /dev/udp/127.0.0.1/%d", port)
	if !waitFor(60*time.Second, func() bool {
		c.h.in(c.ns, "bash", "-c", send)
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, l := range c.seen {
			if strings.Contains(l, fmt.Sprint(port)) {
				return true
			}
		}
		return false
	}) {
		c.h.t.Fatalf("tshark in %s never showed the marker to port %d", c.ns, port)
	}
}

// stop waits until tshark has seen everything sent so far (a last
// marker), stops it and waits until the file is complete.
func (c *capture) stop() {
	c.marker(stopMarker)
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	// tshark writes through its capture child (dumpcap), which may still be
	// flushing the file when tshark is gone.
	if !waitFor(10*time.Second, func() bool {
		return exec.Command("pgrep", "-f", "--", "dumpcap.*"+regexp.QuoteMeta(c.file)).Run() != nil
	}) {
		c.h.t.Fatal("dumpcap did not finish writing the capture")
	}
}
