package statd_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

var bin string

// TestMain runs the package in a network and mount namespace of its own
// (testenv.Isolate), so that the statd and rpcbind on the host are never
// seen, and builds the binary the tests run.
func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

// local is the rpcbind of the test's own namespace.
var local = oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}

// need requires root and the real tools, and starts this test's own
// rpcbind (a missing tool fails the test under CI=true).
func need(t *testing.T, paths ...string) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, paths...)
	testenv.StartRpcbind(t)
}

// fakeLockd records NLM_SM_NOTIFY (100021 v3 proc 16) callbacks.
type fakeLockd struct {
	mu  sync.Mutex
	got []nsm.Status
}

func (f *fakeLockd) Dispatch(_ context.Context, r *oncrpc.Request) (uint32, []byte) {
	var st nsm.Status
	if r.Proc != 16 || nsm.Decode(r.Args, &st) != nil {
		return oncrpc.GarbageArgs, nil
	}
	f.mu.Lock()
	f.got = append(f.got, st)
	f.mu.Unlock()
	return oncrpc.Success, nil
}

func (f *fakeLockd) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// calls returns a copy of the callbacks received so far.
func (f *fakeLockd) calls() []nsm.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nsm.Status(nil), f.got...)
}

func startLockd(t *testing.T) *fakeLockd {
	t.Helper()
	lm := &fakeLockd{}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := netip.MustParseAddrPort(pc.LocalAddr().String()).Port()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &oncrpc.Server{Handler: lm, Prog: 100021, VersLow: 1, VersHi: 4}
	done := make(chan struct{})
	go func() { srv.ServeUDP(ctx, pc); close(done) }()
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	local.PmapSet(rctx, 100021, 3, oncrpc.ProtoUDP, 0, true)
	if ok, err := local.PmapSet(rctx, 100021, 3, oncrpc.ProtoUDP, port, false); err != nil || !ok {
		t.Fatalf("registering the fake lock manager: %v %v", ok, err)
	}
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), time.Second)
		local.PmapSet(c, 100021, 3, oncrpc.ProtoUDP, port, true)
		cc()
		cancel()
		<-done
		pc.Close()
	})
	return lm
}

// startStatd runs our rpc.statd in the foreground and waits until it is
// registered.
func startStatd(t *testing.T, dir string) {
	t.Helper()
	link := filepath.Join(dir, "rpc.statd")
	os.Symlink(bin, link)
	cmd := exec.Command(link, "-F", "-d", "-L", "--db", filepath.Join(dir, "nfsrecover.db"),
		"--nsm-state-file", filepath.Join(dir, "kstate"), "--pid-file", filepath.Join(dir, "pid"), "-P", dir)
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	logf, _ := os.Create(filepath.Join(dir, "statd.log"))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "statd.log"))
			t.Logf("statd log:\n%s", b)
		}
	})
	if !statdAnswers() {
		t.Fatal("our statd did not register")
	}
}

// smMon sends SM_MON over TCP from 127.0.0.1, as the kernel does.
func smMon(t *testing.T, monName string, priv [16]byte) nsm.SmStatRes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: monName, MyID: nsm.MyID{MyName: "ourhost", MyProg: 100021, MyVers: 3, MyProc: 16}}, Priv: priv})
	out, err := oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, nsm.ProcMon, args)
	if err != nil {
		t.Fatal(err)
	}
	var res nsm.SmStatRes
	if err := nsm.Decode(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// realSmNotify runs Debian's sm-notify against a state directory whose
// monitor list names 127.0.0.1, i.e. our statd.
func realSmNotify(t *testing.T, dir string, extra ...string) {
	t.Helper()
	sm := filepath.Join(dir, "sm")
	os.MkdirAll(sm, 0o700)
	os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
	line := "0100007f 000186b5 00000003 00000010 00000000000000000000000000000000 127.0.0.1 peer.example\n"
	os.WriteFile(filepath.Join(sm, "127.0.0.1"), []byte(line), 0o600)
	args := append([]string{"-d", "-f", "-P", dir}, extra...)
	out, err := exec.Command("/usr/sbin/sm-notify", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sm-notify %v: %v\n%s", args, err, out)
	}
}

// waitCallbacks waits (up to 20 s) until the lock manager has n callbacks.
func waitCallbacks(lm *fakeLockd, n int) {
	waitFor(20*time.Second, func() bool { return lm.count() >= n })
}

func TestRealSmNotifyToOurStatd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/sm-notify")
	lm := startLockd(t)
	srv := t.TempDir()
	startStatd(t, srv)
	var priv [16]byte
	copy(priv[:], "kernel-cookie-01")
	if res := smMon(t, "127.0.0.1", priv); res.ResStat != nsm.StatSucc || res.State%2 != 1 {
		t.Fatalf("SM_MON: %+v", res)
	}
	peer := t.TempDir() // the "other host" whose reboot sm-notify announces
	realSmNotify(t, peer)
	waitCallbacks(lm, 1)
	if lm.count() != 1 {
		t.Fatalf("%d callbacks after one reboot notice, want 1", lm.count())
	}
	got := lm.calls()[0]
	if got.MonName != "127.0.0.1" || got.Priv != priv || got.State%2 != 1 {
		t.Errorf("callback %+v: want mon_name 127.0.0.1, priv %q, an odd state", got, priv)
	}
	// Replay: the same state again (-n: no bump) must not call back
	// again. statd logs its decision before it answers sm-notify.
	replay := regexp.MustCompile(fmt.Sprintf(`msg=SM_NOTIFY .*state=%d callbacks=0`, got.State))
	decisions := func() int {
		b, _ := os.ReadFile(filepath.Join(srv, "statd.log"))
		return len(replay.FindAll(b, -1))
	}
	before := decisions()
	realSmNotify(t, peer, "-n")
	if n := decisions(); n <= before {
		t.Errorf("statd logged no decision on the replayed notification")
	}
	// The peer reboots again: a new state, exactly one more callback.
	realSmNotify(t, peer)
	waitCallbacks(lm, 2)
	if all := lm.calls(); len(all) != 2 || all[1].State == got.State {
		t.Errorf("replay, then a second reboot: callbacks %+v", all)
	}
}

func TestRpcinfoSeesOurStatd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/rpcinfo")
	startStatd(t, t.TempDir())
	out, _ := exec.Command("/usr/sbin/rpcinfo", "-p", "127.0.0.1").CombinedOutput()
	if !strings.Contains(string(out), "100024") {
		t.Errorf("rpcinfo -p:\n%s", out)
	}
	for _, tr := range []string{"-u", "-t"} {
		if out, err := exec.Command("/usr/sbin/rpcinfo", tr, "127.0.0.1", "status").CombinedOutput(); err != nil {
			t.Errorf("rpcinfo %s status: %v %s", tr, err, out)
		}
	}
}

// TestForkingStartupAndSecondInstance: without -F the parent exits 0 only
// once the detached child is registered; a second statd refuses to start;
// SIGTERM to the pid in the pid file unregisters and stops the daemon.
func TestForkingStartupAndSecondInstance(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	dir := t.TempDir()
	link := filepath.Join(dir, "rpc.statd")
	os.Symlink(bin, link)
	args := []string{"-L", "--db", filepath.Join(dir, "nfsrecover.db"), "--nsm-state-file", filepath.Join(dir, "kstate"),
		"--pid-file", filepath.Join(dir, "pid"), "-P", dir}
	start := exec.Command(link, args...)
	start.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("forking start: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if p, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoUDP); err != nil || p == 0 {
		t.Fatalf("not registered when the parent exited: %d %v", p, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "pid"))
	var pid int
	fmt.Sscan(string(raw), &pid)
	if pid <= 0 {
		t.Fatalf("pid file %q", raw)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	second := exec.Command(link, append([]string{"-F", "-d"}, args...)...)
	second.Env = start.Env
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Errorf("second statd: %v %s", err, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "pid")); string(again) != string(raw) {
		t.Errorf("the refused instance touched the pid file: %q -> %q", raw, again)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		c, cc := context.WithTimeout(context.Background(), 200*time.Millisecond)
		p, _ := local.PmapGetPort(c, nsm.Program, 1, oncrpc.ProtoUDP)
		cc()
		if p == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("still registered after SIGTERM")
}

// TestLegacyExportReadByRealSmNotify: a record in our notify list,
// exported to an nfs-utils state directory, is read by the real sm-notify,
// which notifies our statd, which calls the lock manager back. Importing
// the hand-written nfs-utils directory and exporting it again gives the
// same bytes.
func TestLegacyExportReadByRealSmNotify(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/sm-notify")
	lm := startLockd(t)
	dir := t.TempDir()
	startStatd(t, dir)
	var priv [16]byte
	copy(priv[:], "exported-cookie!")
	if res := smMon(t, "127.0.0.1", priv); res.ResStat != nsm.StatSucc {
		t.Fatalf("SM_MON %+v", res)
	}
	// The peer's own database: it monitors 127.0.0.1 (us) and rebooted.
	peerDB := filepath.Join(t.TempDir(), "peer.db")
	line := "0100007f 000186b5 00000003 00000010 00000000000000000000000000000000 127.0.0.1 peer.example\n"
	legacy := t.TempDir()
	os.MkdirAll(filepath.Join(legacy, "sm"), 0o700)
	os.WriteFile(filepath.Join(legacy, "sm", "127.0.0.1"), []byte(line), 0o600)
	run := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"statd"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nfsrecover statd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("import", "--db", peerDB, "--from", legacy)
	exported := t.TempDir()
	run("export", "--db", peerDB, "--to", exported, "--force")
	out, err := exec.Command("/usr/sbin/sm-notify", "-d", "-f", "-P", exported).CombinedOutput()
	if err != nil {
		t.Fatalf("sm-notify on our export: %v\n%s", err, out)
	}
	waitCallbacks(lm, 1)
	if all := lm.calls(); len(all) != 1 || all[0].Priv != priv {
		t.Fatalf("callbacks %+v", all)
	}
	golden := "../../testdata/statd/legacy"
	back := t.TempDir()
	db2 := filepath.Join(t.TempDir(), "x.db")
	run("import", "--db", db2, "--from", golden)
	run("export", "--db", db2, "--to", back, "--force")
	for _, f := range []string{"sm/client.example", "sm.bak/192.168.10.9", "state"} {
		a, _ := os.ReadFile(filepath.Join(golden, f))
		b, _ := os.ReadFile(filepath.Join(back, f))
		if string(a) != string(b) {
			t.Errorf("%s changed in the round trip: %q -> %q", f, a, b)
		}
	}
}

// TestCrashSafety: SM_MON load from 8 clients, kill -9 at a random moment,
// restart; every SM_MON that was answered STAT_SUCC is still monitored,
// proved by its callback after an SM_NOTIFY.
func TestCrashSafety(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	lm := startLockd(t)
	dir := t.TempDir()
	cmd := startStatdCmd(t, dir)
	var mu sync.Mutex
	acked := map[string][16]byte{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("10.%d.%d.%d", c, i/250, i%250)
				var priv [16]byte
				copy(priv[:], name)
				if res, err := trySmMon(name, priv); err == nil && res.ResStat == nsm.StatSucc {
					mu.Lock()
					acked[name] = priv
					mu.Unlock()
				}
			}
		}(c)
	}
	// Kill at a random moment once SM_MONs are flowing: after a random
	// number (50..299) of acknowledgements.
	killAt := 50 + int(time.Now().UnixNano()%250)
	if !waitFor(60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= killAt }) {
		t.Fatalf("fewer than %d SM_MONs acknowledged in a minute", killAt)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no SM_MON succeeded before the kill")
	}
	startStatd(t, dir) // restart on the same database
	for name := range acked {
		notifyFrom(t, name, 3)
	}
	waitCallbacks(lm, len(acked))
	got := map[[16]byte]bool{}
	for _, st := range lm.calls() {
		got[st.Priv] = true
	}
	for name, priv := range acked {
		if !got[priv] {
			t.Errorf("SM_MON %s was acknowledged but no callback arrived after the crash", name)
		}
	}
	t.Logf("%d acknowledged SM_MONs survived kill -9", len(acked))
}

func startStatdCmd(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	link := filepath.Join(dir, "rpc.statd")
	os.Symlink(bin, link)
	cmd := exec.Command(link, "-F", "-L", "--db", filepath.Join(dir, "nfsrecover.db"),
		"--nsm-state-file", filepath.Join(dir, "kstate"), "--pid-file", filepath.Join(dir, "pid"), "-P", dir)
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !statdAnswers() {
		t.Fatal("statd did not register")
	}
	return cmd
}

func trySmMon(monName string, priv [16]byte) (nsm.SmStatRes, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err != nil || port == 0 {
		return nsm.SmStatRes{}, fmt.Errorf("no port: %v", err)
	}
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: monName, MyID: nsm.MyID{MyName: "ourhost", MyProg: 100021, MyVers: 3, MyProc: 16}}, Priv: priv})
	out, err := oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, nsm.ProcMon, args)
	if err != nil {
		return nsm.SmStatRes{}, err
	}
	var res nsm.SmStatRes
	return res, nsm.Decode(out, &res)
}

// notifyFrom sends SM_NOTIFY(name, state) to our statd over UDP.
func notifyFrom(t *testing.T, name string, state int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoUDP)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := nsm.Encode(&nsm.StatChge{MonName: name, State: state})
	if _, err := oncrpc.Call(ctx, "udp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, nsm.ProcNotify, args); err != nil {
		t.Fatalf("SM_NOTIFY %s: %v", name, err)
	}
}

// statdAnswers waits until the statd registered with rpcbind answers
// SM_NULL on its TCP port (a stale registration left by a killed statd
// does not count).
func statdAnswers() bool {
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		p, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
		if err == nil && p != 0 {
			_, err = oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", p), nsm.Program, 1, nsm.ProcNull, nil)
		}
		cancel()
		if err == nil && p != 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestCallbackStormEndToEnd: 10,000 monitored peers all report a reboot
// at once; the lock manager receives every callback (the real rpc.statd
// drops about half above ~1,300 peers).
func TestCallbackStormEndToEnd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	n := 10000
	if testing.Short() {
		n = 1000
	}
	lm := startLockd(t)
	startStatd(t, t.TempDir())
	names := make(chan string)
	var wg sync.WaitGroup
	var failures sync.Map
	work := func(fn func(string) error) {
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range names {
					if err := fn(name); err != nil {
						failures.Store(name, err)
					}
				}
			}()
		}
	}
	peer := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256) }
	work(func(name string) error {
		var priv [16]byte
		copy(priv[:], name)
		res, err := trySmMon(name, priv)
		if err == nil && res.ResStat != nsm.StatSucc {
			err = fmt.Errorf("stat_fail")
		}
		return err
	})
	for i := 0; i < n; i++ {
		names <- peer(i)
	}
	close(names)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Fatalf("SM_MON %v: %v", k, v); return false })
	start := time.Now()
	names = make(chan string)
	work(func(name string) error { notifyFromQuiet(name, 5); return nil })
	for i := 0; i < n; i++ {
		names <- peer(i)
	}
	close(names)
	wg.Wait()
	waitFor(60*time.Second, func() bool { return lm.count() >= n })
	if lm.count() != n {
		t.Fatalf("lock manager got %d of %d callbacks", lm.count(), n)
	}
	t.Logf("%d callbacks delivered %v after the first SM_NOTIFY", n, time.Since(start).Round(time.Millisecond))
}

func notifyFromQuiet(name string, state int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoUDP)
	if err != nil {
		return err
	}
	args, _ := nsm.Encode(&nsm.StatChge{MonName: name, State: state})
	_, err = oncrpc.Call(ctx, "udp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, nsm.ProcNotify, args)
	return err
}

// TestPrivilegeDrop: with sm/ owned by nobody, statd runs as nobody once
// its sockets are bound, and SM_MON still commits (the database was
// handed over first).
func TestPrivilegeDrop(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // nobody must reach the database inside, as in /var/lib/nfs
	os.Chmod(filepath.Dir(dir), 0o755)
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	if err := os.Chown(filepath.Join(dir, "sm"), 65534, 65534); err != nil {
		t.Fatalf("chown sm/ to nobody: %v", err)
	}
	cmd := startStatdCmd(t, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if !strings.Contains(string(status), "Uid:\t65534\t65534\t65534\t65534") {
		t.Errorf("statd did not drop to nobody:\n%s", status)
	}
	var priv [16]byte
	if res := smMon(t, "192.0.2.7", priv); res.ResStat != nsm.StatSucc {
		t.Errorf("SM_MON after the drop: %+v", res)
	}
}

// TestRobustnessAgainstDaemon floods the running statd with garbage and
// truncated UDP datagrams and hostile TCP records; it still answers
// SM_NULL within a second, and its memory stays bounded.
func TestRobustnessAgainstDaemon(t *testing.T) {
	need(t, "/usr/sbin/rpcbind")
	cmd := startStatdCmd(t, t.TempDir())
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	uport, _ := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoUDP)
	tport, _ := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	g, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", uport))
	if err != nil {
		t.Fatal(err)
	}
	good := oncrpc.AppendCall(nil, 1, nsm.Program, 1, nsm.ProcMon, oncrpc.Auth{}, make([]byte, 64))
	junk := make([]byte, 1500)
	for i := 0; i < 5000; i++ {
		for j := range junk {
			junk[j] = byte(i*7 + j*13)
		}
		switch i % 3 {
		case 0:
			g.Write(good[:i%len(good)])
		case 1:
			g.Write(junk[:i%len(junk)])
		default:
			g.Write(oncrpc.AppendCall(nil, uint32(i), nsm.Program, 1, nsm.ProcMon, oncrpc.Auth{}, []byte{0xff, 0xff, 0xff, 0xff}))
		}
	}
	g.Close()
	var slow []net.Conn
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", tport))
		if err != nil {
			break // connection limit reached: fine
		}
		if i%2 == 0 {
			c.Write([]byte{0x7f, 0xff, 0xff, 0xff}) // 2^31-1 record
		} else {
			c.Write([]byte{0x80, 0, 0, 100, 1, 2, 3}) // stalls mid-record
		}
		slow = append(slow, c)
	}
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	start := time.Now()
	var err2 error
	for try := 0; try < 5; try++ { // retransmit every 200ms, as a client would, within one second
		nctx, ncancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err2 = oncrpc.Call(nctx, "udp4", fmt.Sprintf("127.0.0.1:%d", uport), nsm.Program, 1, nsm.ProcNull, nil)
		ncancel()
		if err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatalf("SM_NULL over UDP after the flood: %v", err2)
	}
	t.Logf("SM_NULL answered %v after the flood", time.Since(start).Round(time.Millisecond))
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	for _, l := range strings.Split(string(status), "\n") {
		var kb int
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil && kb > 200*1024 {
			t.Errorf("RSS %d KiB after the flood", kb)
		}
	}
}
