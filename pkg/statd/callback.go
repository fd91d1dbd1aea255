package statd

import (
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
// wait in an unbounded queue and are delivered by a bounded number of
// workers, each retrying with backoff until Deadline, so a burst of
// thousands of SM_NOTIFYs loses none. The lock manager's port comes from
// the local portmapper and is cached for a short while.
type Sender struct {
	Lookup   func(ctx context.Context, prog, vers uint32) (uint16, error)
	Workers  int           // parallel deliveries; default 32
	Deadline time.Duration // give up on one callback after this; default 10 min
	Retry    time.Duration // first retransmission delay; default 500ms, doubling to 5s
	Log      *slog.Logger
	Done     func(cb Callback, err error) // optional, for tests and counters

	caller *oncrpc.UDPCaller
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []Callback
	ports  map[[2]uint32]portEntry
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
	s := &Sender{Lookup: lookup, caller: caller, ports: map[[2]uint32]portEntry{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Queue adds a callback; it never blocks.
func (s *Sender) Queue(cb Callback) {
	s.mu.Lock()
	s.queue = append(s.queue, cb)
	s.mu.Unlock()
	s.cond.Signal()
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

func (s *Sender) next(ctx context.Context) (Callback, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 {
		if ctx.Err() != nil {
			return Callback{}, false
		}
		s.cond.Wait()
	}
	cb := s.queue[0]
	s.queue = s.queue[1:]
	return cb, true
}

func (s *Sender) work(ctx context.Context) {
	for {
		cb, ok := s.next(ctx)
		if !ok {
			return
		}
		err := s.deliver(ctx, cb)
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
