package statd

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

// Sender delivers reboot callbacks to the local lock manager over UDP
// from one socket bound to 127.0.0.1 (a privileged port in production:
// lockd refuses callbacks from ports above 1023), through an
// oncrpc.UDPCaller that accepts replies from 127.0.0.1 only. Callbacks
// wait in a queue and are delivered by a bounded number of workers, each
// retrying with backoff until Deadline, so a burst of thousands of
// SM_NOTIFYs loses none. The queue keeps one callback per monitor record,
// the newest: a record's older state that has not gone out yet is
// replaced, so the queue is bounded by the number of records however many
// notifications remote hosts send, and the lock manager always ends up
// with each record's latest state (one record is never delivered by two
// workers at once). The lock manager's port comes from the local
// portmapper and is cached for a short while.
type Sender struct {
	Lookup   func(ctx context.Context, prog, vers uint32) (uint16, error)
	Workers  int           // parallel deliveries; default 32
	Deadline time.Duration // give up on one callback after this; default 10 min
	Retry    time.Duration // first retransmission delay; default 500ms, doubling to 5s
	Log      *slog.Logger
	Done     func(cb Callback, err error) // optional, for tests and counters

	caller   *oncrpc.UDPCaller
	mu       sync.Mutex
	cond     *sync.Cond
	pending  map[recordKey]*list.Element // of *Callback, in order
	order    list.List                   // pending callbacks, oldest first
	inflight map[recordKey]bool
	ports    map[[2]uint32]portEntry
}

// recordKey identifies the monitor record a callback is for.
type recordKey struct {
	monName          string
	priv             [16]byte
	prog, vers, proc uint32
}

func keyOf(cb Callback) recordKey {
	return recordKey{cb.MonName, cb.Priv, cb.Prog, cb.Vers, cb.Proc}
}

type portEntry struct {
	port uint16
	at   time.Time
}

// NewSender returns a Sender on conn that finds the lock manager's port
// with lookup. Queue may be called before Run.
func NewSender(conn *net.UDPConn, lookup func(ctx context.Context, prog, vers uint32) (uint16, error)) *Sender {
	caller := oncrpc.NewUDPCaller(conn)
	caller.From = netip.MustParseAddr("127.0.0.1") // only the local lock manager answers
	s := &Sender{Lookup: lookup, caller: caller, ports: map[[2]uint32]portEntry{},
		pending: map[recordKey]*list.Element{}, inflight: map[recordKey]bool{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Queue adds a callback, or replaces the state of the one still waiting
// for the same record; it never blocks.
func (s *Sender) Queue(cb Callback) {
	k := keyOf(cb)
	s.mu.Lock()
	if el, ok := s.pending[k]; ok {
		el.Value.(*Callback).State = cb.State
	} else {
		s.pending[k] = s.order.PushBack(&cb)
	}
	s.mu.Unlock()
	s.cond.Signal()
}

// Pending returns the number of callbacks waiting to be sent.
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// Run delivers callbacks until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.caller.Run(ctx) }()
	for i := 0; i < orDefault(s.Workers, 32); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.work(ctx) }()
	}
	wg.Wait()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (s *Sender) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// next takes the oldest pending callback whose record is not being
// delivered by another worker, and marks its record in flight.
func (s *Sender) next(ctx context.Context) (Callback, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return Callback{}, false
		}
		for el := s.order.Front(); el != nil; el = el.Next() {
			cb := *el.Value.(*Callback)
			k := keyOf(cb)
			if s.inflight[k] {
				continue
			}
			s.order.Remove(el)
			delete(s.pending, k)
			s.inflight[k] = true
			return cb, true
		}
		s.cond.Wait()
	}
}

// finished releases cb's record for the next callback queued for it.
func (s *Sender) finished(cb Callback) {
	s.mu.Lock()
	delete(s.inflight, keyOf(cb))
	s.mu.Unlock()
	s.cond.Signal() // a callback queued for the record meanwhile may go now
}

func (s *Sender) work(ctx context.Context) {
	for {
		cb, ok := s.next(ctx)
		if !ok {
			return
		}
		err := s.deliver(ctx, cb)
		s.finished(cb)
		if err != nil {
			s.log().Error("reboot callback not delivered", "mon_name", cb.MonName, "state", cb.State, "err", err)
		} else {
			s.log().Debug("reboot callback delivered", "mon_name", cb.MonName, "state", cb.State)
		}
		if s.Done != nil {
			s.Done(cb, err)
		}
	}
}

func (s *Sender) port(ctx context.Context, prog, vers uint32, fresh bool) (uint16, error) {
	key := [2]uint32{prog, vers}
	s.mu.Lock()
	e, ok := s.ports[key]
	s.mu.Unlock()
	if ok && !fresh && time.Since(e.at) < 30*time.Second {
		return e.port, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := s.Lookup(lctx, prog, vers)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.ports[key] = portEntry{p, time.Now()}
	s.mu.Unlock()
	return p, nil
}

var errNotRegistered = errors.New("lock manager not registered with the portmapper")

// deliver sends one callback until it is acknowledged or Deadline passes.
func (s *Sender) deliver(ctx context.Context, cb Callback) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(s.Deadline, 10*time.Minute))
	defer cancel()
	args, err := nsm.Encode(&nsm.Status{MonName: cb.MonName, State: cb.State, Priv: cb.Priv})
	if err != nil {
		return err
	}
	delay := orDefault(s.Retry, 500*time.Millisecond)
	for attempt := 0; ; attempt++ {
		err = s.attempt(ctx, cb, args, attempt%4 == 3, delay)
		if err == nil || ctx.Err() != nil {
			if err != nil {
				err = fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// attempt looks the port up (again when refresh) and makes one call.
func (s *Sender) attempt(ctx context.Context, cb Callback, args []byte, refresh bool, wait time.Duration) error {
	port, err := s.port(ctx, cb.Prog, cb.Vers, refresh)
	switch {
	case err != nil:
		return fmt.Errorf("portmapper: %w", err)
	case port == 0:
		return errNotRegistered
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	_, err = s.caller.Call(ctx, to, cb.Prog, cb.Vers, cb.Proc, args, wait)
	return err
}
