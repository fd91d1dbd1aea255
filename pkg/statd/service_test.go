package statd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

type fixture struct {
	t        *testing.T
	svc      *Service
	commit   *store.Committer
	dbPath   string
	queued   []Callback
	callouts [][]string
	mu       sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, dbPath: filepath.Join(t.TempDir(), "nfsrecover.db")}
	f.commit = store.NewCommitter(func() (*store.DB, error) { return store.Open(f.dbPath, nil) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go f.commit.Run(ctx)
	f.svc = &Service{
		List: NewList(), Commit: f.commit, State: func() int32 { return 7 },
		Queue: func(cb Callback) { f.mu.Lock(); f.queued = append(f.queued, cb); f.mu.Unlock() },
		Callout: func(a ...string) {
			f.mu.Lock()
			f.callouts = append(f.callouts, a)
			f.mu.Unlock()
		},
	}
	return f
}

var loopback = &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 800}

func (f *fixture) call(proc uint32, from net.Addr, arg any) []byte {
	f.t.Helper()
	var args []byte
	if arg != nil {
		var err error
		if args, err = nsm.Encode(arg); err != nil {
			f.t.Fatal(err)
		}
	}
	stat, res := f.svc.Dispatch(context.Background(), &oncrpc.Request{
		CallHeader: oncrpc.CallHeader{Prog: nsm.Program, Vers: 1, Proc: proc, Args: args}, Addr: from})
	if stat != oncrpc.Success {
		f.t.Fatalf("proc %d: accept_stat %d", proc, stat)
	}
	return res
}

func (f *fixture) mon(from net.Addr, monName, myName string, prog, proc int32, priv string) nsm.SmStatRes {
	f.t.Helper()
	m := nsm.Mon{MonID: nsm.MonID{MonName: monName, MyID: nsm.MyID{MyName: myName, MyProg: prog, MyVers: 3, MyProc: proc}}}
	copy(m.Priv[:], priv)
	var res nsm.SmStatRes
	if err := nsm.Decode(f.call(nsm.ProcMon, from, &m), &res); err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) stored() []store.Monitor {
	f.t.Helper()
	c, err := store.DumpFile(f.dbPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing was ever committed
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return c.Monitors
}

func TestMonRules(t *testing.T) {
	ok := nsm.SmStatRes{ResStat: nsm.StatSucc, State: 7}
	bad := nsm.SmStatRes{ResStat: nsm.StatFail, State: -1}
	cases := []struct {
		name    string
		from    net.Addr
		monName string
		prog    int32
		proc    int32
		want    nsm.SmStatRes
	}{
		{"lock manager", loopback, "192.168.1.2", 100021, 16, ok},
		{"old notify proc", loopback, "client.example", 100021, 24, ok},
		{"other 127/8 address", &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 1}, "h", 100021, 16, bad},
		{"remote caller (CA-99.05)", &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 600}, "h", 100021, 16, bad},
		{"::1 without the option", &net.UDPAddr{IP: net.IPv6loopback, Port: 1}, "h", 100021, 16, bad},
		{"callback to another program", loopback, "h", 100005, 16, bad},
		{"callback to another proc", loopback, "h", 100021, 1, bad},
		{"slash in name (CA-96.09)", loopback, "../../etc/passwd", 100021, 16, bad},
		{"leading dot", loopback, ".hidden", 100021, 16, bad},
		{"control character", loopback, "a\nb", 100021, 16, bad},
		{"longest file name", loopback, strings.Repeat("a", 255), 100021, 16, ok},
		{"longer than a file name (308 bytes)", loopback, strings.Repeat("b", 308), 100021, 16, bad},
	}
	// rpc.statd files each peer as sm/NAME: the kernel decides which names
	// it can create, and SM_MON must refuse the others.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, strings.Repeat("a", 255)), nil, 0o600); err != nil {
		t.Fatalf("a 255-byte file name: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, strings.Repeat("b", 256)), nil, 0o600); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("a 256-byte file name: %v, want ENAMETOOLONG", err)
	}
	for _, c := range cases {
		f := newFixture(t)
		if got := f.mon(c.from, c.monName, "server", c.prog, c.proc, "cookie"); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if n := len(f.stored()); (c.want == ok) != (n == 1) {
			t.Errorf("%s: %d records stored", c.name, n)
		}
	}
}

func TestMonDuplicatesAndCookies(t *testing.T) {
	f := newFixture(t)
	f.mon(loopback, "peer", "my host", 100021, 16, "cookie-1")
	if recs := f.stored(); len(recs) != 1 || recs[0].MyName != "my_host" {
		t.Fatalf("whitespace in my_name must be folded: %+v", recs)
	}
	before, _ := f.commit.Stats()
	f.mon(loopback, "PEER", "my host", 100021, 16, "cookie-1") // same priv: no I/O
	if after, _ := f.commit.Stats(); after != before {
		t.Errorf("duplicate SM_MON committed (%d -> %d)", before, after)
	}
	f.mon(loopback, "peer", "my host", 100021, 16, "cookie-2") // new cookie replaces
	recs := f.stored()
	if len(recs) != 1 || string(recs[0].Priv[:8]) != "cookie-2" || f.svc.List.Len() != 1 {
		t.Errorf("new cookie: %+v (list %d)", recs, f.svc.List.Len())
	}
	if len(f.callouts) != 2 || strings.Join(f.callouts[0], " ") != "add-client peer my_host" {
		t.Errorf("callouts %v", f.callouts)
	}
}

func TestUnmonAndUnmonAll(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"a", "b", "c"} {
		f.mon(loopback, n, "srv", 100021, 16, n)
	}
	f.mon(loopback, "d", "other", 100021, 16, "d")
	var st nsm.SmStat
	nsm.Decode(f.call(nsm.ProcUnmon, &net.UDPAddr{IP: net.ParseIP("10.1.1.1"), Port: 1}, &nsm.MonID{MonName: "a", MyID: nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16}}), &st)
	if st.State != 7 || len(f.stored()) != 4 {
		t.Fatalf("remote SM_UNMON must do nothing: %d records", len(f.stored()))
	}
	f.call(nsm.ProcUnmon, loopback, &nsm.MonID{MonName: "A", MyID: nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16}})
	if len(f.stored()) != 3 || f.svc.List.Len() != 3 {
		t.Fatalf("SM_UNMON: %d stored, %d listed", len(f.stored()), f.svc.List.Len())
	}
	f.call(nsm.ProcUnmonAll, loopback, &nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16})
	if recs := f.stored(); len(recs) != 1 || recs[0].MonName != "d" || f.svc.List.Len() != 1 {
		t.Fatalf("SM_UNMON_ALL left %+v", recs)
	}
}

func TestNotifyMatchingAndReplay(t *testing.T) {
	f := newFixture(t)
	f.mon(loopback, "client.example", "srv", 100021, 16, "by-name")
	f.mon(loopback, "192.168.7.7", "srv", 100021, 16, "by-addr")
	from := &net.UDPAddr{IP: net.ParseIP("192.168.7.7"), Port: 900}
	f.call(nsm.ProcNotify, from, &nsm.StatChge{MonName: "CLIENT.example", State: 5})
	if len(f.queued) != 2 {
		t.Fatalf("notify by name from a monitored address: %d callbacks, want 2: %+v", len(f.queued), f.queued)
	}
	for _, cb := range f.queued {
		if cb.State != 5 || cb.Prog != 100021 || cb.Proc != 16 {
			t.Errorf("callback %+v", cb)
		}
	}
	f.call(nsm.ProcNotify, from, &nsm.StatChge{MonName: "client", State: 5}) // sm-notify's short name, same state
	if len(f.queued) != 2 {
		t.Errorf("replayed notify delivered again: %d", len(f.queued))
	}
	f.call(nsm.ProcNotify, &net.UDPAddr{IP: net.ParseIP("10.9.9.9"), Port: 1}, &nsm.StatChge{MonName: "client.example", State: 7})
	if len(f.queued) != 3 || f.queued[2].MonName != "client.example" || string(f.queued[2].Priv[:7]) != "by-name" {
		t.Errorf("next reboot: %+v", f.queued)
	}
	last := f.callouts[len(f.callouts)-1]
	if strings.Join(last, " ") != "sm-notify client.example 10.9.9.9 7" {
		t.Errorf("sm-notify callout %v", last)
	}
}

func TestGarbageAndUnknownProcs(t *testing.T) {
	f := newFixture(t)
	stat, _ := f.svc.Dispatch(context.Background(), &oncrpc.Request{CallHeader: oncrpc.CallHeader{Proc: nsm.ProcMon, Args: []byte{0, 0, 4, 1}}, Addr: loopback})
	if stat != oncrpc.GarbageArgs {
		t.Errorf("over-long string: %d", stat)
	}
	if stat, _ := f.svc.Dispatch(context.Background(), &oncrpc.Request{CallHeader: oncrpc.CallHeader{Proc: 7}, Addr: loopback}); stat != oncrpc.ProcUnavail {
		t.Errorf("proc 7: %d", stat)
	}
}

// TestGroupCommit: concurrent SM_MONs share transactions, and every one
// that was answered with success is in the database.
func TestGroupCommit(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	const n = 200
	results := make([]nsm.SmStatRes, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = f.mon(loopback, fmt.Sprintf("10.0.%d.%d", i/250, i%250), "srv", 100021, 16, "x")
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.ResStat != nsm.StatSucc {
			t.Fatalf("SM_MON %d failed", i)
		}
	}
	commits, changes := f.commit.Stats()
	if changes != n || commits >= n {
		t.Errorf("%d changes in %d commits: no grouping", changes, commits)
	}
	t.Logf("%d SM_MONs in %d commits", changes, commits)
	if got := len(f.stored()); got != n {
		t.Errorf("%d records stored, want %d", got, n)
	}
}

func benchmarkMon(b *testing.B, clients int) {
	dbPath := filepath.Join(b.TempDir(), "bench.db")
	commit := store.NewCommitter(func() (*store.DB, error) { return store.Open(dbPath, nil) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go commit.Run(ctx)
	f := &fixture{commit: commit, svc: &Service{List: NewList(), Commit: commit, State: func() int32 { return 7 }, Queue: func(Callback) {}}}
	var next int64
	var mu sync.Mutex
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/clients + 1
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				mu.Lock()
				next++
				name := fmt.Sprintf("peer-%d", next)
				mu.Unlock()
				m := nsm.Mon{MonID: nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16}}}
				args, _ := nsm.Encode(&m)
				stat, res := f.svc.Dispatch(context.Background(), &oncrpc.Request{CallHeader: oncrpc.CallHeader{Proc: nsm.ProcMon, Args: args}, Addr: loopback})
				if stat != oncrpc.Success || len(res) != 8 || res[3] != 0 {
					b.Error("SM_MON failed")
					return
				}
			}
		}()
	}
	wg.Wait()
	commits, changes := f.commit.Stats()
	b.ReportMetric(float64(changes)/float64(max(commits, 1)), "mons/commit")
}

// BenchmarkMon1 and BenchmarkMon8: durable SM_MONs per second with 1 and 8
// concurrent callers (in-process, no network).
func BenchmarkMon1(b *testing.B) { benchmarkMon(b, 1) }
func BenchmarkMon8(b *testing.B) { benchmarkMon(b, 8) }

func TestNullStatSimuCrash(t *testing.T) {
	f := newFixture(t)
	if res := f.call(nsm.ProcNull, &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5}, nil); len(res) != 0 {
		t.Errorf("SM_NULL result %x", res)
	}
	var st nsm.SmStatRes
	nsm.Decode(f.call(nsm.ProcStat, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5}, &nsm.SmName{MonName: "anyone"}), &st)
	if st.ResStat != nsm.StatSucc || st.State != 7 {
		t.Errorf("SM_STAT from anywhere: %+v", st)
	}
	f.svc.Canon = func(context.Context, string) (string, error) { return "", fmt.Errorf("no name") }
	nsm.Decode(f.call(nsm.ProcStat, loopback, &nsm.SmName{MonName: "unknown"}), &st)
	if st.ResStat != nsm.StatFail || st.State != 7 {
		t.Errorf("SM_STAT of an unresolvable name: %+v (state is ours either way)", st)
	}
	if f.svc.List.Len() != 0 || len(f.stored()) != 0 {
		t.Errorf("SM_STAT must not create records")
	}
	f.svc.Canon = nil
	f.mon(loopback, "peer", "srv", 100021, 16, "p")
	f.call(nsm.ProcSimuCrash, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 700}, nil)
	if f.svc.List.Len() != 1 || len(f.queued) != 0 || len(f.stored()) != 1 {
		t.Errorf("SM_SIMU_CRASH must change nothing: list %d, callbacks %d", f.svc.List.Len(), len(f.queued))
	}
}

// Calls are dispatched concurrently, so a notification can reach the
// handler after a later one: it is stale and must not overwrite the
// newer state, nor queue a callback behind it.
func TestNotifyArrivalOrder(t *testing.T) {
	f := newFixture(t)
	f.mon(loopback, "10.0.0.5", "srv", 100021, 16, "cookie")
	from := &net.UDPAddr{IP: net.ParseIP("10.0.0.5"), Port: 900}
	notify := func(seq uint64, state int32) {
		args, _ := nsm.Encode(&nsm.StatChge{MonName: "10.0.0.5", State: state})
		f.svc.Dispatch(context.Background(), &oncrpc.Request{
			CallHeader: oncrpc.CallHeader{Prog: nsm.Program, Vers: 1, Proc: nsm.ProcNotify, Args: args}, Addr: from, Seq: seq})
	}
	notify(11, 9) // received second, handled first
	notify(10, 7) // received first, handled late: stale
	if len(f.queued) != 1 || f.queued[0].State != 9 {
		t.Fatalf("callbacks %+v: want one, with the state received last (9)", f.queued)
	}
	notify(12, 11)
	if len(f.queued) != 2 || f.queued[1].State != 11 {
		t.Errorf("a newer notification after the stale one: callbacks %+v", f.queued)
	}
}
