package statd

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

// lockManager is a fake lockd: NLM 100021 v3 proc 16 records every status
// it receives; dropFirst ignores the first attempt of each callback.
type lockManager struct {
	mu        sync.Mutex
	got       map[[16]byte]nsm.Status
	attempts  map[[16]byte]int
	dropFirst bool
}

func (l *lockManager) Dispatch(_ context.Context, r *oncrpc.Request) (uint32, []byte) {
	if r.Proc != 16 {
		return oncrpc.ProcUnavail, nil
	}
	var st nsm.Status
	if err := nsm.Decode(r.Args, &st); err != nil {
		return oncrpc.GarbageArgs, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts[st.Priv]++
	if l.dropFirst && l.attempts[st.Priv] == 1 {
		time.Sleep(time.Millisecond) // lost: reply never sent in time
		return oncrpc.SystemErr, nil
	}
	l.got[st.Priv] = st
	return oncrpc.Success, nil
}

func startLockManager(t *testing.T, lm *lockManager) uint16 {
	t.Helper()
	lm.got, lm.attempts = map[[16]byte]nsm.Status{}, map[[16]byte]int{}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &oncrpc.Server{Handler: lm, Prog: 100021, VersLow: 1, VersHi: 4, MaxInflight: 4096}
	done := make(chan struct{})
	go func() { srv.ServeUDP(ctx, pc); close(done) }()
	t.Cleanup(func() { cancel(); <-done; pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String()).Port()
}

func startSender(t *testing.T, port uint16, done func(Callback, error)) *Sender {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSender(conn, func(context.Context, uint32, uint32) (uint16, error) { return port, nil })
	s.Retry, s.Deadline, s.Done = 20*time.Millisecond, 20*time.Second, done
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { s.Run(ctx); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished; conn.Close() })
	return s
}

func cb(i int) Callback {
	c := Callback{MonName: "peer", State: 3, Prog: 100021, Vers: 3, Proc: 16}
	binary.BigEndian.PutUint32(c.Priv[:], uint32(i))
	return c
}

// TestCallbackStorm: 10,000 peers reboot at once; every callback reaches
// the lock manager with its own mon_name, state and priv.
func TestCallbackStorm(t *testing.T) {
	lm := &lockManager{}
	port := startLockManager(t, lm)
	var delivered, failed atomic.Int64
	all := make(chan struct{})
	const n = 10000
	s := startSender(t, port, func(_ Callback, err error) {
		if err != nil {
			failed.Add(1)
		}
		if delivered.Add(1) == n {
			close(all)
		}
	})
	for i := 0; i < n; i++ {
		s.Queue(cb(i))
	}
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d of %d callbacks finished", delivered.Load(), n)
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if failed.Load() != 0 || len(lm.got) != n {
		t.Fatalf("%d failed, lock manager got %d of %d", failed.Load(), len(lm.got), n)
	}
	st := lm.got[cb(1234).Priv]
	if st.MonName != "peer" || st.State != 3 {
		t.Errorf("callback content %+v", st)
	}
}

func TestCallbackRetriesLostReplies(t *testing.T) {
	lm := &lockManager{dropFirst: true}
	port := startLockManager(t, lm)
	results := make(chan error, 10)
	s := startSender(t, port, func(_ Callback, err error) { results <- err })
	for i := 0; i < 10; i++ {
		s.Queue(cb(i))
	}
	for i := 0; i < 10; i++ {
		if err := <-results; err != nil {
			t.Fatalf("callback failed: %v", err)
		}
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for p, n := range lm.attempts {
		if n < 2 {
			t.Errorf("priv %x delivered in %d attempts, the first was dropped", p[:4], n)
		}
	}
}

func TestCallbackLockManagerAbsent(t *testing.T) {
	results := make(chan error, 1)
	s := startSender(t, 0, func(_ Callback, err error) { results <- err })
	s.Deadline = 200 * time.Millisecond
	s.Queue(cb(1))
	select {
	case err := <-results:
		if err == nil {
			t.Fatal("delivered to nobody")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
	}
}
