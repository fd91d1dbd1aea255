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

// lockManager is a fake lockd on a raw UDP socket: NLM 100021 v3 proc 16
// records every status it receives, in arrival order. With dropFirst the
// first datagram of each callback gets no reply at all, as when a reply
// is lost on the way: the sender must time out and retransmit.
type lockManager struct {
	mu        sync.Mutex
	got       map[[16]byte]nsm.Status
	history   map[[16]byte][]int32 // states received, in order
	attempts  map[[16]byte]int
	dropFirst bool
}

// answer returns the reply to one datagram, or nil to send none.
func (l *lockManager) answer(msg []byte) []byte {
	h, err := oncrpc.DecodeCall(msg)
	if err != nil {
		return nil
	}
	if h.Prog != 100021 || h.Proc != 16 {
		return oncrpc.AppendAccepted(nil, h.XID, oncrpc.ProcUnavail, nil, 0, 0)
	}
	var st nsm.Status
	if err := nsm.Decode(h.Args, &st); err != nil {
		return oncrpc.AppendAccepted(nil, h.XID, oncrpc.GarbageArgs, nil, 0, 0)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts[st.Priv]++
	if l.dropFirst && l.attempts[st.Priv] == 1 {
		return nil // lost
	}
	l.got[st.Priv] = st
	l.history[st.Priv] = append(l.history[st.Priv], st.State)
	return oncrpc.AppendAccepted(nil, h.XID, oncrpc.Success, nil, 0, 0)
}

func startLockManager(t *testing.T, lm *lockManager) uint16 {
	t.Helper()
	lm.got, lm.attempts, lm.history = map[[16]byte]nsm.Status{}, map[[16]byte]int{}, map[[16]byte][]int32{}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := pc.(*net.UDPConn); ok {
		u.SetReadBuffer(4 << 20)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := lm.answer(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
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
	if len(lm.got) != 10 {
		t.Errorf("lock manager got %d of 10 callbacks", len(lm.got))
	}
	for p, n := range lm.attempts {
		if n < 2 {
			t.Errorf("priv %x delivered in %d attempts, the first was dropped", p[:4], n)
		}
	}
}

// A storm of notifications for a few records keeps one pending callback
// per record, and the lock manager ends with each record's latest state.
func TestCallbackQueueCoalesces(t *testing.T) {
	lm := &lockManager{dropFirst: true} // slow deliveries: notifications pile up
	port := startLockManager(t, lm)
	const records, rounds = 20, 5000
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := NewSender(conn, func(context.Context, uint32, uint32) (uint16, error) { return port, nil })
	s.Retry, s.Deadline = 20*time.Millisecond, 20*time.Second
	for r := 0; r < rounds; r++ {
		for i := 0; i < records; i++ {
			c := cb(i)
			c.State = int32(2*r + 3)
			s.Queue(c)
		}
	}
	if n := s.Pending(); n != records {
		t.Fatalf("%d callbacks pending after %d notifications for %d records", n, records*rounds, records)
	}
	latest := int32(2*(rounds-1) + 3)
	idle := make(chan struct{}, records*rounds)
	s.Done = func(Callback, error) { idle <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { s.Run(ctx); close(finished) }()
	defer func() { cancel(); <-finished }()
	for i := 0; i < records; i++ {
		select {
		case <-idle:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d records delivered", i, records)
		}
	}
	// Mid-delivery notifications: each record gets newer states while its
	// callback is in flight, and still ends with the newest.
	for r := 0; r < 50; r++ {
		for i := 0; i < records; i++ {
			c := cb(i)
			c.State = latest + int32(2*r+2)
			s.Queue(c)
		}
	}
	final := latest + 100
	deadline := time.After(20 * time.Second)
	for {
		lm.mu.Lock()
		done := 0
		for i := 0; i < records; i++ {
			if h := lm.history[cb(i).Priv]; len(h) > 0 && h[len(h)-1] == final {
				done++
			}
		}
		lm.mu.Unlock()
		if done == records && s.Pending() == 0 {
			break
		}
		select {
		case <-idle:
		case <-deadline:
			t.Fatalf("%d of %d records reached state %d", done, records, final)
		}
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for i := 0; i < records; i++ {
		h := lm.history[cb(i).Priv]
		for j := 1; j < len(h); j++ {
			if h[j] < h[j-1] {
				t.Errorf("record %d: states arrived out of order: %v", i, h)
				break
			}
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
