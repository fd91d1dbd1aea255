package statd_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// vmKB returns a VmXXX field of /proc/PID/status in KiB.
func vmKB(t *testing.T, pid int, field string) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("statd status: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		var kb int
		if _, err := fmt.Sscanf(l, field+": %d kB", &kb); err == nil {
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// lastStates returns each callback's latest state by mon_name.
func (h *hosts) lastStates() map[string]int {
	out := map[string]int{}
	for _, cb := range h.callbacksSeen() {
		name, _ := cb["mon_name"].(string)
		st, _ := cb["state"].(float64)
		out[name] = int(st)
	}
	return out
}

// TestFloodFromAnotherHost: a host in another namespace sends 200,000
// SM_STATs with distinct 1000-byte names, then 300,000 SM_NOTIFYs for the
// 100 peers statd monitors. statd's memory stays under 64 MB at its peak,
// SM_NULL is answered within a second, the log does not grow with the
// flood, and for every monitored peer the lock manager ends up with the
// latest state.
func TestFloodFromAnotherHost(t *testing.T) {
	h := netns(t)
	h.startServer()
	pid := h.srvProc.Process.Pid
	const peers, rounds = 100, 3000
	var names []string
	for i := 1; i <= peers; i++ {
		name := fmt.Sprintf("10.88.0.%d", i)
		names = append(names, name)
		priv := fmt.Sprintf("%032x", i)
		if out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", name, priv); err != nil || !strings.HasPrefix(out, "succ") {
			t.Fatalf("SM_MON %s: %v %s", name, err, out)
		}
	}
	t.Logf("RSS before the flood: %d KiB", vmKB(t, pid, "VmRSS"))
	if out, err := h.in(h.peer, h.helper, "flood-stat", h.srvAddr, "200000", "1000"); err != nil {
		t.Fatalf("SM_STAT flood: %v %s", err, out)
	}
	out, err := h.in(h.peer, append([]string{h.helper, "flood-notify", h.srvAddr, fmt.Sprint(rounds)}, names...)...)
	if err != nil {
		t.Fatalf("SM_NOTIFY flood: %v %s", err, out)
	}
	last := 2*rounds + 3
	if strings.TrimSpace(out) != fmt.Sprintf("last %d", last) {
		t.Fatalf("flood-notify said %q", out)
	}
	if out, err := h.in(h.peer, h.helper, "null-tcp", h.srvAddr); err != nil {
		t.Errorf("SM_NULL after the flood: %v %s", err, out)
	} else if d, err := time.ParseDuration(strings.TrimSpace(out)); err != nil || d > time.Second {
		t.Errorf("SM_NULL after the flood took %s", out)
	}
	if !waitFor(180*time.Second, func() bool {
		got := h.lastStates()
		for _, n := range names {
			if got[n] != last {
				return false
			}
		}
		return true
	}) {
		got := h.lastStates()
		for _, n := range names {
			if got[n] != last {
				t.Errorf("the lock manager's last callback for %s has state %d, want %d", n, got[n], last)
			}
		}
	}
	if hwm := vmKB(t, pid, "VmHWM"); hwm > 64*1024 {
		t.Errorf("statd's peak RSS was %d KiB during the flood, want under 64 MiB", hwm)
	} else {
		t.Logf("statd's peak RSS %d KiB; %d callbacks for %d notifications", hwm, len(h.callbacksSeen()), peers*(rounds+1))
	}
	// 300,000 SM_NOTIFY lines would be tens of MB: the log keeps a few and
	// says how many it dropped.
	if n := h.logCount(`msg=SM_NOTIFY `); n > 2000 {
		t.Errorf("%d SM_NOTIFY lines logged for %d notifications: not rate-limited", n, peers*(rounds+1))
	}
	if !waitFor(30*time.Second, func() bool { return h.logCount(`msg="repeated messages suppressed" message=SM_NOTIFY`) > 0 }) {
		t.Error("the log never said how many SM_NOTIFY lines it suppressed")
	}
}

// TestIdleConnectionsCannotLockOut: another host holds 300 idle TCP
// connections to statd for 60 s, opening new ones as fast as they are
// closed and all of them anew every 29 s. Meanwhile an SM_MON from the
// local lock manager over a new TCP connection every 2 s is answered
// within 100 ms, and a client of a third host that talks gets its answer
// too. A lock-out hits every new connection: it is closed, or waits for a
// slot (until an idle connection times out, minutes). An SM_MON also
// waits for its fsyncs, which a loaded CI disk can stretch (128 ms was
// seen once), so one probe in ten may take up to 1 s.
func TestIdleConnectionsCannotLockOut(t *testing.T) {
	h := netns(t)
	h.startServer()
	const third = "10.77.0.3" // another host, on the peer's side of the link
	if out, err := exec.Command("ip", "-n", h.peer, "addr", "add", third+"/24", "dev", h.peerDev).CombinedOutput(); err != nil {
		t.Fatalf("adding %s: %v %s", third, err, out)
	}
	idle := exec.Command("ip", "netns", "exec", h.peer, h.helper, "idle", h.srvAddr, "300", "60")
	stdout, err := idle.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { idle.Process.Kill(); idle.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "holding") {
		t.Fatalf("idle connections: %q", lines.Text())
	}
	end := time.Now().Add(60 * time.Second)
	probes, slow := 0, 0
	var slowest time.Duration
	for i := 0; time.Now().Before(end); i++ {
		next := time.Now().Add(2 * time.Second)
		name := fmt.Sprintf("10.89.%d.%d", i/250, i%250+1)
		out, err := h.in(h.srv, h.helper, "mon", "127.0.0.1", name, fmt.Sprintf("%032x", i))
		f := strings.Fields(out)
		if err != nil || len(f) != 3 || f[0] != "succ" {
			t.Errorf("SM_MON %d from the lock manager with 300 idle connections open: %v %q", i, err, out)
		} else if d, err := time.ParseDuration(f[2]); err != nil || d > time.Second {
			t.Errorf("SM_MON %d took %s, want at most 1s", i, f[2])
		} else {
			slowest = max(slowest, d)
			if d > 100*time.Millisecond {
				slow++
			}
		}
		if out, err := h.in(h.peer, h.helper, "null-tcp", h.srvAddr, third); err != nil {
			t.Errorf("SM_NULL %d over a new connection from a third host: %v %s", i, err, out)
		}
		probes++
		time.Sleep(time.Until(next))
	}
	lines.Scan() // "reopened K", once its 60 s are over
	if err := idle.Wait(); err != nil {
		t.Errorf("idle connections: %v", err)
	}
	if slow*10 > probes {
		t.Errorf("%d of %d SM_MONs took over 100ms", slow, probes)
	}
	t.Logf("%d probes answered, the slowest SM_MON in %v, %d over 100ms; the idle host %s", probes, slowest, slow, lines.Text())
}
