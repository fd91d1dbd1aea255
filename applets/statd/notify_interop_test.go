package statd_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/store"
)

// peerDB makes the database of a host that monitored us (127.0.0.1)
// before its reboot.
func peerDB(t *testing.T, monitored ...string) (dir, db string) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	db = filepath.Join(dir, "nfsrecover.db")
	d, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Update(func(tx *store.Tx) error {
		for _, m := range monitored {
			if err := tx.PutMonitor(store.Monitor{MonName: m, DNSName: m, MyName: "peer.example", Prog: 100021, Vers: 3, Proc: 16}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, db
}

// ourNotify runs our sm-notify for the peer host, in the foreground.
func ourNotify(t *testing.T, dir, db string, extra ...string) (string, int) {
	t.Helper()
	link := filepath.Join(dir, "sm-notify")
	os.Symlink(bin, link)
	args := append([]string{"-d", "-P", dir, "--db", db, "--pid-file", filepath.Join(dir, "guard"),
		"--nsm-state-file", filepath.Join(dir, "kstate"), "--boot-id-file", filepath.Join(dir, "boot")}, extra...)
	cmd := exec.Command(link, args...)
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestOurNotifyToOurStatd: our sm-notify on a rebooted peer notifies our
// statd, which calls the lock manager back; the peer's notify list is
// empty afterwards and its state advanced to 3.
func TestOurNotifyToOurStatd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	lm := startLockd(t)
	startStatd(t, t.TempDir())
	var priv [16]byte
	copy(priv[:], "notify-me-please")
	if res := smMon(t, "127.0.0.1", priv); res.ResStat != nsm.StatSucc {
		t.Fatalf("SM_MON %+v", res)
	}
	dir, db := peerDB(t, "127.0.0.1")
	os.WriteFile(filepath.Join(dir, "boot"), []byte("boot-1\n"), 0o644)
	out, code := ourNotify(t, dir, db)
	if code != 0 {
		t.Fatalf("our sm-notify exited %d:\n%s", code, out)
	}
	waitCallbacks(lm, 1)
	if all := lm.calls(); len(all) != 1 || all[0].Priv != priv || all[0].State != 3 {
		t.Fatalf("callbacks %+v\n%s", all, out)
	}
	c, err := store.DumpFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notify) != 0 || len(c.Monitors) != 0 {
		t.Errorf("peer db after notify: %d to notify, %d monitors", len(c.Notify), len(c.Monitors))
	}
	kstate, _ := os.ReadFile(filepath.Join(dir, "kstate"))
	if string(kstate) != "3" {
		t.Errorf("kernel state file %q", kstate)
	}
	// Nobody left to notify: the next run changes nothing and lifts grace.
	grace := filepath.Join(dir, "grace")
	os.WriteFile(grace, nil, 0o644)
	if out, code := ourNotify(t, dir, db, "--end-grace-file", grace); code != 0 || !strings.Contains(out, "no hosts to notify") {
		t.Errorf("second run: %d %s", code, out)
	}
	if b, _ := os.ReadFile(grace); string(b) != "Y" {
		t.Errorf("lift-grace not written: %q", b)
	}
}

// TestNotifyFanOutSilentAndResume: 1,000 peers answered by one process on
// 127.1.x.y inside a network namespace, every tenth silent. A first run is
// killed with SIGKILL once it has notified some peers and before it has
// notified them all; the next run finishes: every answering peer is
// notified before the deadline although the silent ones are retried until
// then, the second run (-P: no once-per-boot guard) advances the state as
// nfs-utils does, and exactly the silent peers remain in the notify list.
func TestNotifyFanOutSilentAndResume(t *testing.T) {
	need(t, "/usr/sbin/ip")
	ns := fmt.Sprintf("nfsr-fan-%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "network namespaces: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	work := t.TempDir()
	helper := filepath.Join(work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		t.Fatalf("build helper: %v %s", err, out)
	}
	got := filepath.Join(work, "notified.txt")
	peersProc := exec.Command("ip", "netns", "exec", ns, helper, "peers", "10", got)
	stdout, _ := peersProc.StdoutPipe()
	if err := peersProc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { peersProc.Process.Signal(syscall.SIGTERM); peersProc.Wait() }()
	line := make([]byte, 6)
	stdout.Read(line) // "ready"
	var names []string
	for i := 0; i < 1000; i++ {
		names = append(names, fmt.Sprintf("127.1.%d.%d", i/256, i%256))
	}
	dir, db := peerDB(t, names...)
	os.WriteFile(filepath.Join(dir, "boot"), []byte("same-boot\n"), 0o644)
	link := filepath.Join(dir, "sm-notify")
	os.Symlink(bin, link)
	args := []string{"-d", "-P", dir, "--db", db, "--pid-file", filepath.Join(dir, "guard"),
		"--nsm-state-file", filepath.Join(dir, "kstate"), "--boot-id-file", filepath.Join(dir, "boot")}
	first := exec.Command("ip", append([]string{"netns", "exec", ns, link}, args...)...)
	first.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	notified := func() int {
		raw, _ := os.ReadFile(got)
		return strings.Count(string(raw), "\n")
	}
	// Kill it at the first notification: poll tightly, as the whole run
	// takes about 100 ms.
	for end := time.Now().Add(30 * time.Second); notified() == 0; time.Sleep(200 * time.Microsecond) {
		if time.Now().After(end) {
			t.Fatal("the first run notified nobody")
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	if n := notified(); n >= 900 {
		t.Fatalf("the first run notified all %d answering peers before it was killed: nothing left to resume", n)
	}
	second := exec.Command("ip", append([]string{"netns", "exec", ns, link}, append(args, "--deadline", "3s")...)...)
	second.Env = first.Env
	out, err := second.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("with silent peers left at the deadline the exit status must be 1: %v\n%s", err, out)
	}
	seen, states := map[string]int{}, map[string]bool{}
	var first0, last int64
	raw, _ := os.ReadFile(got)
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var addr, name, state string
		var at int64
		fmt.Sscan(l, &addr, &name, &state, &at)
		seen[addr]++
		states[state] = true
		if first0 == 0 || at < first0 {
			first0 = at
		}
		last = max(last, at)
	}
	if len(seen) != 900 {
		t.Errorf("%d answering peers notified, want 900", len(seen))
	}
	// The first run sent 3. With -P the once-per-boot guard does not
	// apply, so, as with nfs-utils, the second run advances the state again
	// and sends 5 to the peers it reaches.
	if len(states) != 2 || !states["3"] || !states["5"] {
		t.Errorf("states sent %v: want 3 from the first run and 5 from the second", states)
	}
	c, err := store.DumpFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notify) != 100 {
		t.Errorf("%d peers left in the notify list, want the 100 silent ones", len(c.Notify))
	}
	for _, m := range c.Notify {
		var b2, b3 int
		fmt.Sscanf(m.DNSName, "127.1.%d.%d", &b2, &b3)
		if (b2*256+b3)%10 != 9 {
			t.Errorf("answering peer %s left in the notify list", m.DNSName)
		}
	}
	t.Logf("900 answering peers notified within %v", time.Duration(last-first0).Round(time.Millisecond))
}
