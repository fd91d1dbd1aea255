package smnotify

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	xdr "github.com/davecgh/go-xdr/xdr2"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

// TestMain runs the package's tests, which talk to fake peers over
// loopback, in a network namespace of their own (testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Isolate(m.Run)) }

func TestNextState(t *testing.T) {
	cases := []struct {
		cur  int32
		ok   bool
		want int32
	}{{0, false, 3}, {3, true, 5}, {4, true, 7}, {1, true, 3}, {0, true, 3}, {-2, true, 1}, {-5, true, -3}}
	for _, c := range cases {
		if got := NextState(c.cur, c.ok); got != c.want {
			t.Errorf("NextState(%d,%v) = %d, want %d", c.cur, c.ok, got, c.want)
		}
	}
}

func openDB(t *testing.T) *store.DB {
	db, err := store.Open(filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func monitor(name string) store.Monitor {
	return store.Monitor{MonName: name, DNSName: name, MyName: "srv.example", Prog: 100021, Vers: 3, Proc: 16}
}

func TestPrepare(t *testing.T) {
	db := openDB(t)
	// Nobody to notify: the state is not bumped (nor created beyond 1).
	p, err := Prepare(db, Options{Bump: true, BootID: "b1"})
	if err != nil || p.Bumped || len(p.Peers) != 0 {
		t.Fatalf("empty: %+v %v", p, err)
	}
	db.Update(func(tx *store.Tx) error { return tx.PutMonitor(monitor("10.0.0.1")) })
	p, _ = Prepare(db, Options{Bump: true, BootID: "b1"})
	if !p.Bumped || p.State != 3 || p.Retired != 1 || len(p.Peers) != 1 {
		t.Fatalf("first boot: %+v", p)
	}
	c, _ := db.Dump()
	if len(c.Monitors) != 0 || len(c.Notify) != 1 {
		t.Errorf("retirement: %d monitors, %d to notify", len(c.Monitors), len(c.Notify))
	}
	// Same boot again (a resumed run): same state.
	if p, _ = Prepare(db, Options{Bump: true, BootID: "b1"}); p.Bumped || p.State != 3 {
		t.Errorf("resume: %+v", p)
	}
	// -f (HA fail-over) always advances.
	if p, _ = Prepare(db, Options{Bump: true, Force: true, BootID: "b1"}); !p.Bumped || p.State != 5 {
		t.Errorf("forced: %+v", p)
	}
	// -n never does.
	if p, _ = Prepare(db, Options{Bump: false, BootID: "b2"}); p.Bumped || p.State != 5 {
		t.Errorf("-n: %+v", p)
	}
	// Next boot: +2.
	if p, _ = Prepare(db, Options{Bump: true, BootID: "b2"}); !p.Bumped || p.State != 7 {
		t.Errorf("next boot: %+v", p)
	}
}

func TestSchedule(t *testing.T) {
	want := []time.Duration{2, 4, 8, 16, 32, 64, 120, 120}
	for i, w := range want {
		if got := DefaultSchedule.Wait(i); got != w*time.Second {
			t.Errorf("attempt %d: %v, want %vs", i, got, w)
		}
	}
}

// fakePeers answers PMAP GETPORT and SM_NOTIFY on 127.0.0.x addresses;
// silent ones have no sockets at all.
type fakePeers struct {
	mu       sync.Mutex
	notified map[string][]string // address -> names received
	pmPort   uint16
}

func (f *fakePeers) Dispatch(_ context.Context, r *oncrpc.Request) (uint32, []byte) {
	switch {
	case r.Prog == oncrpc.RpcbProg && r.Proc == oncrpc.RpcbGetAddr:
		var b bytes.Buffer
		xdr.Marshal(&b, uint32(f.pmPort+1)) // statd listens next to the portmapper
		return oncrpc.Success, b.Bytes()
	case r.Prog == nsm.Program && r.Proc == nsm.ProcNotify:
		var st nsm.StatChge
		nsm.Decode(r.Args, &st)
		f.mu.Lock()
		f.notified[r.Addr.String()] = append(f.notified[r.Addr.String()], st.MonName)
		f.mu.Unlock()
		return oncrpc.Success, nil
	}
	return oncrpc.ProcUnavail, nil
}

// startPeers binds a portmapper (port pm) and a statd (pm+1) on each
// answering address, all served by one handler that records by peer
// address (the handler sees the source: our socket; so each address gets
// its own handler wrapper).
func startPeers(t *testing.T, addrs []string, pm uint16) map[string]*fakePeers {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := map[string]*fakePeers{}
	for _, a := range addrs {
		f := &fakePeers{notified: map[string][]string{}, pmPort: pm}
		out[a] = f
		for i, prog := range []uint32{oncrpc.RpcbProg, nsm.Program} {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf("%s:%d", a, pm+uint16(i)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			srv := &oncrpc.Server{Handler: f, Prog: prog, VersLow: 1, VersHi: 4}
			go srv.ServeUDP(ctx, pc)
		}
	}
	return out
}

func TestNotifyFanOutWithSilentPeers(t *testing.T) {
	const pm = 20111
	var answering, silent []string
	var peers []store.Monitor
	for i := 0; i < 50; i++ {
		a := fmt.Sprintf("127.0.42.%d", i+1)
		if i%10 == 9 {
			silent = append(silent, a)
		} else {
			answering = append(answering, a)
		}
		peers = append(peers, monitor(a))
	}
	fakes := startPeers(t, answering, pm)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	caller := oncrpc.NewUDPCaller(conn)
	// The run ends (as at the -m deadline) once every answering peer is
	// done, while the silent ones are still being retried.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go caller.Run(ctx)
	var mu sync.Mutex
	var done []string
	n := &Notifier{Caller: caller, State: 7, PortmapPort: pm,
		Schedule: Schedule{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, ReLookup: 4},
		Done: func(_ context.Context, m store.Monitor) error {
			mu.Lock()
			done = append(done, m.DNSName)
			if len(done) == len(answering) {
				cancel()
			}
			mu.Unlock()
			return nil
		}}
	start := time.Now()
	sum := n.Run(ctx, peers)
	if sum.Notified != len(answering) || len(sum.Pending) != len(silent) {
		t.Fatalf("notified %d (want %d), pending %d (want %d)", sum.Notified, len(answering), len(sum.Pending), len(silent))
	}
	if len(done) != len(answering) {
		t.Errorf("%d removed from the notify list", len(done))
	}
	for _, a := range answering {
		var names []string
		fakes[a].mu.Lock()
		for _, v := range fakes[a].notified {
			names = append(names, v...)
		}
		fakes[a].mu.Unlock()
		if len(names) != 2 || names[0] != "srv.example" || names[1] != "srv" {
			t.Errorf("%s received %v, want the full then the short name", a, names)
		}
	}
	t.Logf("%d peers in %v (silent ones until the deadline)", len(peers), time.Since(start).Round(time.Millisecond))
}

// v6Peer answers RPCB v3 GETADDR with a universal address and SM_NOTIFY,
// as an IPv6 peer's rpcbind and statd do.
type v6Peer struct {
	statdPort uint16
	mu        sync.Mutex
	got       []string
}

func (p *v6Peer) Dispatch(_ context.Context, r *oncrpc.Request) (uint32, []byte) {
	switch {
	case r.Prog == oncrpc.RpcbProg && r.Vers == oncrpc.RpcbVers && r.Proc == oncrpc.RpcbGetAddr:
		var b bytes.Buffer
		xdr.Marshal(&b, fmt.Sprintf("::1.%d.%d", p.statdPort>>8, p.statdPort&0xff))
		return oncrpc.Success, b.Bytes()
	case r.Prog == nsm.Program && r.Proc == nsm.ProcNotify:
		var st nsm.StatChge
		nsm.Decode(r.Args, &st)
		p.mu.Lock()
		p.got = append(p.got, st.MonName)
		p.mu.Unlock()
		return oncrpc.Success, nil
	}
	return oncrpc.ProcUnavail, nil
}

func TestNotifyIPv6PeerUsesRpcbindV3(t *testing.T) {
	pm, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		testenv.Unavailable(t, "no IPv6 loopback: %v", err)
	}
	sd, _ := net.ListenPacket("udp6", "[::1]:0")
	peer := &v6Peer{statdPort: uint16(sd.LocalAddr().(*net.UDPAddr).Port)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go (&oncrpc.Server{Handler: peer, Prog: oncrpc.RpcbProg, VersLow: 2, VersHi: 4}).ServeUDP(ctx, pm)
	go (&oncrpc.Server{Handler: peer, Prog: nsm.Program, VersLow: 1, VersHi: 1}).ServeUDP(ctx, sd)
	conn, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	caller := oncrpc.NewUDPCaller(conn)
	go caller.Run(ctx)
	n := &Notifier{Caller: caller, State: 9, PortmapPort: uint16(pm.LocalAddr().(*net.UDPAddr).Port),
		Schedule: Schedule{Initial: 100 * time.Millisecond, Max: time.Second, ReLookup: 4}}
	sum := n.Run(ctx, []store.Monitor{monitor("::1")})
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if sum.Notified != 1 || len(peer.got) != 2 || peer.got[0] != "srv.example" {
		t.Errorf("IPv6 peer: %+v, received %v", sum, peer.got)
	}
}
