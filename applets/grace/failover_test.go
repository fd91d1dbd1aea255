//go:build linux && !noetcd

package grace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/internal/pipefs"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
	"nfsrecover/pkg/store"
)

// lan is a LAN of network namespaces on a bridge in the test's own
// namespace, where the embedded etcd listens: NFS server nodes and client
// hosts, each a namespace with one address.
type lan struct {
	t      *testing.T
	work   string
	bridge string
	id     int
	helper string
	hosts  map[string]string // namespace -> its device
}

const (
	bridgeAddr = "10.78.0.254"
	vip        = "10.78.0.100"
)

func newLAN(t *testing.T) *lan {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "/usr/sbin/ip", "/usr/sbin/rpcbind", "/usr/sbin/rpc.statd", "/usr/sbin/rpcinfo", "unshare")
	l := &lan{t: t, work: t.TempDir(), id: os.Getpid() % 100000, hosts: map[string]string{}}
	l.bridge = fmt.Sprintf("nfsrbr%d", l.id)
	l.ip("link", "add", l.bridge, "type", "bridge")
	l.ip("addr", "add", bridgeAddr+"/24", "dev", l.bridge)
	l.ip("link", "set", l.bridge, "up")
	t.Cleanup(func() { exec.Command("ip", "link", "del", l.bridge).Run() })
	l.helper = filepath.Join(l.work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", l.helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		t.Fatalf("building nsmhelper: %v %s", err, out)
	}
	return l
}

func (l *lan) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		testenv.Unavailable(l.t, "network namespaces: ip %v: %v %s", args, err, out)
	}
}

// host adds namespace name with address addr on the bridge.
func (l *lan) host(name, addr string) string {
	ns := fmt.Sprintf("nfsr-%s-%d", name, l.id)
	dev := fmt.Sprintf("nf%s%d", name, l.id)
	l.ip("netns", "add", ns)
	l.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	l.ip("link", "add", dev+"a", "type", "veth", "peer", "name", dev+"b")
	l.ip("link", "set", dev+"a", "master", l.bridge, "up")
	l.ip("link", "set", dev+"b", "netns", ns)
	l.ip("-n", ns, "addr", "add", addr+"/24", "dev", dev+"b")
	l.ip("-n", ns, "link", "set", dev+"b", "up")
	l.ip("-n", ns, "link", "set", "lo", "up")
	l.hosts[ns] = dev + "b"
	return ns
}

// in runs a command in namespace ns.
func (l *lan) in(ns string, env []string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs, in ns and a private mount namespace with its own /run, an
// rpcbind, a fake lock manager writing callbacks to name's callbacks.jsonl
// and then daemon; it waits until statd answers there.
func (l *lan) start(ns, name, daemon string, env []string) *exec.Cmd {
	t := l.t
	resolv := filepath.Join(l.work, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644) // no DNS: refuse at once
	script := fmt.Sprintf(`mount -t tmpfs none /run && mkdir -p /run/rpcbind && mount --bind %[1]s /etc/resolv.conf || exit 1
/usr/sbin/rpcbind -f -w &
for i in $(seq 300); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.05; done
%[2]s lockd %[3]s/%[4]s-callbacks.jsonl > %[3]s/%[4]s-lockd.log 2>&1 &
for i in $(seq 300); do rpcinfo -p 127.0.0.1 2>/dev/null | grep -q 100021 && break; sleep 0.05; done
exec %[5]s`, resolv, l.helper, l.work, name, daemon)
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	logf, _ := os.Create(filepath.Join(l.work, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s:\n%s", name, b)
		}
	})
	if !testenv.WaitFor(30*time.Second, func() bool {
		out, _ := l.in(ns, nil, "rpcinfo", "-T", "tcp", "127.0.0.1", "100024")
		return strings.Contains(out, "ready and waiting")
	}) {
		t.Fatalf("statd of %s never answered", name)
	}
	return cmd
}

func (l *lan) callbacks(name string) []map[string]any {
	b, _ := os.ReadFile(filepath.Join(l.work, name+"-callbacks.jsonl"))
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestFailoverWithoutSharedStorage: nodes A and B share only the etcd
// cluster. A serves the VIP, and its lock manager monitors two clients,
// which run the real rpc.statd and monitor the VIP. A is killed, B takes
// the VIP, and B's sm-notify -f -v VIP tells both clients, from the
// records A left on etcd: each client's statd calls its lock manager back
// to reclaim. No directory is copied between A and B.
func TestFailoverWithoutSharedStorage(t *testing.T) {
	l := newLAN(t)
	ec := etcdtest.StartOn(t, 3, bridgeAddr)
	const prefix = "/t/failover/"
	conf := filepath.Join(l.work, "nfs.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[nfsrecover]\netcd-endpoints = %s\netcd-prefix = %s\nfloating-ips = %s\n",
		strings.Join(ec.Endpoints(), ","), prefix, vip)), 0o644)
	env := []string{"NFSRECOVER_NFS_CONF=" + conf}

	nodeA, nodeB := l.host("a", "10.78.0.1"), l.host("b", "10.78.0.2")
	clients := map[string]string{"c1": "10.78.0.11", "c2": "10.78.0.12"}
	privs := map[string]string{"c1": "0101010101010101010101010101010c", "c2": "0202020202020202020202020202020c"}
	statd, smNotify := filepath.Join(l.work, "rpc.statd"), filepath.Join(l.work, "sm-notify")
	os.Symlink(bin, statd)
	os.Symlink(bin, smNotify)
	for name, addr := range clients {
		ns := l.host(name, addr)
		dir := filepath.Join(l.work, name)
		os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
		os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
		l.start(ns, name, fmt.Sprintf("/usr/sbin/rpc.statd -F -d -L -P %s", dir), nil)
		// The client's lock manager holds a lock on the VIP: its statd
		// monitors the VIP.
		if out, err := l.in(ns, nil, l.helper, "mon", "127.0.0.1", vip, privs[name]); err != nil || !strings.HasPrefix(out, "succ") {
			t.Fatalf("%s: SM_MON %s: %v %s", name, vip, err, out)
		}
	}
	l.ip("-n", nodeA, "addr", "add", vip+"/24", "dev", l.hosts[nodeA])
	dirA := filepath.Join(l.work, "a")
	os.MkdirAll(filepath.Join(dirA, "sm"), 0o700)
	a := l.start(nodeA, "a", fmt.Sprintf("%s -F -d -L -P %s --db %s/nfsrecover.db --nsm-state-file %s/kstate", statd, dirA, dirA, dirA), env)
	// A's lock manager monitors both clients (they hold locks through the VIP).
	for name, addr := range clients {
		if out, err := l.in(nodeA, nil, l.helper, "mon", "127.0.0.1", addr, "000102030405060708090a0b0c0d0e0f"); err != nil || !strings.HasPrefix(out, "succ") {
			t.Fatalf("A: SM_MON %s (%s): %v %s", name, addr, err, out)
		}
	}
	admin := dial(t, ec.Endpoints(), prefix)
	if recs, err := admin.VIPMonitors(context.Background(), vip); err != nil || len(recs) != len(clients) {
		t.Fatalf("after A's SM_MONs etcd has %d records for %s (%v), want %d", len(recs), vip, err, len(clients))
	}

	// A dies; B takes the VIP over and notifies its clients.
	syscall.Kill(-a.Process.Pid, syscall.SIGKILL)
	l.ip("-n", nodeA, "addr", "del", vip+"/24", "dev", l.hosts[nodeA])
	l.ip("-n", nodeB, "addr", "add", vip+"/24", "dev", l.hosts[nodeB])
	dirB := filepath.Join(l.work, "b") // empty: nothing of A's is here
	os.MkdirAll(filepath.Join(dirB, "sm"), 0o700)
	out, err := l.in(nodeB, env, smNotify, "-d", "-f", "-v", vip, "-P", dirB, "--db", dirB+"/nfsrecover.db",
		"--nsm-state-file", dirB+"/kstate", "--deadline", "60s")
	if err != nil {
		t.Fatalf("B: sm-notify -f -v %s: %v\n%s", vip, err, out)
	}
	for name := range clients {
		var cbs []map[string]any
		if !testenv.WaitFor(20*time.Second, func() bool { cbs = l.callbacks(name); return len(cbs) > 0 }) {
			t.Fatalf("%s's statd never called its lock manager back; B's sm-notify said:\n%s", name, out)
		}
		st, _ := cbs[0]["state"].(float64)
		if len(cbs) != 1 || cbs[0]["mon_name"] != vip || cbs[0]["priv"] != privs[name] || int(st) != 3 {
			t.Errorf("%s: callbacks %v; want one for %s with priv %s and state 3 (the VIP's first reboot)", name, cbs, vip, privs[name])
		}
	}
	if recs, err := admin.VIPMonitors(context.Background(), vip); err != nil || len(recs) != 0 {
		t.Errorf("after B notified every client, etcd still has %d records for %s (%v)", len(recs), vip, err)
	}
	if _, err := os.Stat(filepath.Join(dirB, "nfsrecover.db")); err == nil {
		t.Errorf("sm-notify -v VIP created a local database: it must use etcd only")
	}
}

func dial(t *testing.T, endpoints []string, prefix string) *cluster.Client {
	t.Helper()
	c, err := cluster.Dial(context.Background(), cluster.Config{Endpoints: endpoints, Prefix: prefix, RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernel plays nfsd's client tracking on an emulated rpc_pipefs.
type kernel struct {
	t   *testing.T
	fs  *pipefs.FS
	xid uint32
}

func newKernel(t *testing.T) *kernel {
	t.Helper()
	fs, err := pipefs.Mount(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Unmount() })
	if err := fs.CreatePipe(); err != nil {
		t.Fatal(err)
	}
	return &kernel{t: t, fs: fs}
}

// call sends one upcall and decodes its downcalls.
func (k *kernel) call(m cld.Msg) []cld.Msg {
	k.t.Helper()
	k.xid++
	m.XID = k.xid
	raw, err := cld.Encode(m)
	if err != nil {
		k.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ds, err := k.fs.Call(ctx, raw)
	if err != nil {
		k.t.Fatalf("upcall %d: %v", m.Cmd, err)
	}
	var out []cld.Msg
	for _, d := range ds {
		dm, err := cld.Decode(d)
		if err != nil {
			k.t.Fatalf("downcall: %v", err)
		}
		out = append(out, dm)
	}
	if last := out[len(out)-1]; last.Status != cld.StatusOK {
		k.t.Fatalf("upcall %d: final status %d", m.Cmd, last.Status)
	}
	return out
}

// boot is what a v2 kernel sends when client tracking starts; it returns
// the clients GraceStart streamed.
func (k *kernel) boot() map[string]bool {
	k.call(cld.Msg{Vers: cld.Version1, Cmd: cld.GetVersion})
	got := map[string]bool{}
	ds := k.call(cld.Msg{Vers: cld.Version2, Cmd: cld.GraceStart})
	for _, d := range ds[:len(ds)-1] {
		if d.Status != cld.StatusEINPROGRESS || got[string(d.Name)] {
			k.t.Fatalf("GraceStart stream: status %d, name %q (seen: %v)", d.Status, d.Name, got[string(d.Name)])
		}
		got[string(d.Name)] = true
	}
	return got
}

// startCld runs our nfsdcld in namespace ns on k's pipe and waits until it
// has the pipe open; it returns the process to kill.
func (l *lan) startCld(ns, name string, k *kernel, env []string) *exec.Cmd {
	t := l.t
	link := filepath.Join(l.work, "nfsdcld")
	os.Symlink(bin, link)
	storage := filepath.Join(l.work, name+"-cld")
	os.MkdirAll(storage, 0o700)
	cmd := exec.Command("ip", "netns", "exec", ns, link, "-F", "-d", "-p", k.fs.Dir(), "-s", storage)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	log := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", name, log)
		}
	})
	if !testenv.WaitFor(30*time.Second, func() bool { return k.fs.Readers() > 0 }) {
		t.Fatalf("nfsdcld of %s never opened the pipe:\n%s", name, log)
	}
	return cmd
}

// TestFailoverCldScope: node A's nfsdcld keeps the clients of server scope
// S on etcd; A dies, and the nfsdcld that node B starts for S streams every
// one of them in GraceStart, so each may reclaim on B. Nothing but etcd
// is shared.
func TestFailoverCldScope(t *testing.T) {
	l := newLAN(t)
	testenv.NeedTools(t, "fusermount3")
	ec := etcdtest.StartOn(t, 3, bridgeAddr)
	conf := filepath.Join(l.work, "nfs.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[nfsrecover]\nbackend = etcd\netcd-endpoints = %s\netcd-prefix = /t/cldfailover/\nv4-scope = nfs-vip1\n",
		strings.Join(ec.Endpoints(), ","))), 0o644)
	env := []string{"NFSRECOVER_NFS_CONF=" + conf}
	nodeA, nodeB := l.host("a", "10.78.0.1"), l.host("b", "10.78.0.2")

	kA := newKernel(t)
	a := l.startCld(nodeA, "a", kA, env)
	if got := kA.boot(); len(got) != 0 {
		t.Fatalf("a fresh scope streamed %v", got)
	}
	want := map[string]bool{}
	for i := range 300 {
		name := fmt.Sprintf("Linux NFSv4.2 client-%03d", i)
		m := cld.Msg{Vers: cld.Version2, Cmd: cld.Create, Name: []byte(name)}
		if i%2 == 0 {
			m.PrincHash = bytes.Repeat([]byte{byte(i)}, 32)
		}
		kA.call(m)
		want[name] = true
	}
	kA.call(cld.Msg{Vers: cld.Version2, Cmd: cld.Remove, Name: []byte("Linux NFSv4.2 client-007")})
	delete(want, "Linux NFSv4.2 client-007")
	kA.call(cld.Msg{Vers: cld.Version2, Cmd: cld.GraceDone})

	a.Process.Kill() // node A dies
	a.Wait()
	kB := newKernel(t)
	l.startCld(nodeB, "b", kB, env)
	got := kB.boot()
	for name := range want {
		if !got[name] {
			t.Errorf("B's GraceStart did not stream %q", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("B streamed %d clients, want %d", len(got), len(want))
	}
}

// TestStatusAndDoctorShowCluster: status and doctor, reading nfs.conf's
// etcd settings, show the members and their flags, the floating IP's
// clients and the scope's epochs as etcd holds them, and doctor warns of
// a member that needs grace without a lease.
func TestStatusAndDoctorShowCluster(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	const prefix = "/t/view/"
	ctx := context.Background()
	c := dial(t, ec.Endpoints(), prefix)
	for _, step := range []struct {
		op  grace.Op
		ids []string
	}{{grace.Add, []string{"a", "b"}}, {grace.Start, []string{"b"}}} {
		if _, err := c.UpdateGrace(ctx, step.op, step.ids); err != nil {
			t.Fatal(err)
		}
	}
	rec := &cluster.NSMRecorder{Client: c, VIPs: func() ([]string, error) { return []string{"192.0.2.77"}, nil }}
	for _, peer := range []string{"10.1.0.1", "10.1.0.2"} {
		if err := rec.Monitor(ctx, store.Monitor{MonName: peer, DNSName: peer, MyName: "me", Prog: 100021, Vers: 3, Proc: 16}); err != nil {
			t.Fatal(err)
		}
	}
	scope := &cluster.ScopeRecords{Client: c, Scope: "s9"}
	if _, err := scope.GraceStart(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x", "y", "z"} {
		if err := scope.Create(ctx, store.CldRecord{ID: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[nfsrecover]\netcd-endpoints = %s\netcd-prefix = %s\nfloating-ips = 192.0.2.77\nbackend = etcd\nv4-scope = s9\n",
		strings.Join(ec.Endpoints(), ","), prefix)), 0o644)
	db := filepath.Join(dir, "nfsrecover.db")
	if s, err := store.Open(db, nil); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	run := func(args ...string) ([]byte, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "NFSRECOVER_NFS_CONF="+conf)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out, code
	}
	out, code := run("status", "--json", "--db", db)
	var r struct{ Cluster cluster.View }
	if err := json.Unmarshal(out, &r); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	v := r.Cluster
	want := []cluster.MemberView{{Node: "a", Enforcing: true}, {Node: "b", Need: true, Enforcing: true}}
	if v.Err != "" || v.Current != 2 || v.Recovery != 1 || !slices.Equal(v.Members, want) {
		t.Errorf("status: cluster %+v; want epochs 2/1 and members %+v", v, want)
	}
	if len(v.VIPs) != 1 || v.VIPs[0] != (cluster.VIPView{IP: "192.0.2.77", Clients: 2}) {
		t.Errorf("status: floating IPs %+v", v.VIPs)
	}
	if v.Scope == nil || *v.Scope != (cluster.ScopeView{Name: "s9", Current: 2, Recovery: 1, Clients: 3}) {
		t.Errorf("status: scope %+v", v.Scope)
	}
	out, _ = run("doctor", "--json", "--db", db, "-P", dir)
	var fs []struct{ Check, Level, Detail, Fix string }
	if err := json.Unmarshal(out, &fs); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	found := false
	for _, f := range fs {
		found = found || f.Check == "cluster grace" && f.Level == "warn" && strings.Contains(f.Fix, "grace remove b")
	}
	if !found {
		t.Errorf("doctor did not warn that b needs grace without a lease:\n%s", out)
	}
}
