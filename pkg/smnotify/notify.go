package smnotify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	xdr "github.com/davecgh/go-xdr/xdr2"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

// Schedule is nfs-utils' per-host retry schedule: the first wait is
// Initial, doubling to Max; every ReLookup attempts the next address is
// tried and the remote port looked up again (the remote statd may have
// restarted).
type Schedule struct {
	Initial, Max time.Duration
	ReLookup     int
}

// DefaultSchedule is sm-notify's: 2 s doubling to 120 s, re-lookup every 4.
var DefaultSchedule = Schedule{Initial: 2 * time.Second, Max: 120 * time.Second, ReLookup: 4}

// Wait returns the timeout of the attempt-th transmission (0-based).
func (s Schedule) Wait(attempt int) time.Duration {
	d := s.Initial
	for i := 0; i < attempt && d < s.Max; i++ {
		d *= 2
	}
	return min(d, s.Max)
}

// Notifier sends SM_NOTIFY to peers.
type Notifier struct {
	Caller   *oncrpc.UDPCaller
	State    int32
	Name     string // -v: the name sent instead of each record's my_name
	Schedule Schedule
	Window   int // peers in flight; default 4096
	// PortmapPort is where peers' portmappers listen; 0 means 111.
	PortmapPort uint16
	// Resolve returns a peer's addresses; nil: numeric names as is, others
	// through DNS with a 5 s timeout.
	Resolve func(ctx context.Context, name string) ([]netip.Addr, error)
	// Done removes a notified peer from the notify list (durably).
	Done func(ctx context.Context, m store.Monitor) error
	Log  *slog.Logger
}

// Summary counts the outcome.
type Summary struct {
	Notified int
	Pending  []store.Monitor // not notified before the deadline
}

// Run notifies every peer in parallel until all answered or ctx ends
// (the -m deadline).
func (n *Notifier) Run(ctx context.Context, peers []store.Monitor) Summary {
	window := n.Window
	if window <= 0 {
		window = 4096
	}
	slots := make(chan struct{}, window)
	var mu sync.Mutex
	var sum Summary
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				sum.Pending = append(sum.Pending, p)
				mu.Unlock()
				return
			}
			err := n.peer(ctx, p)
			<-slots // the exchange is over: the bookkeeping below must not hold up other peers
			if err == nil && n.Done != nil {
				err = n.Done(context.WithoutCancel(ctx), p)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				sum.Pending = append(sum.Pending, p)
				n.log().Debug("peer not notified", "peer", p.DNSName, "err", err)
				return
			}
			sum.Notified++
			n.log().Debug("peer notified", "peer", p.DNSName)
		}()
	}
	wg.Wait()
	return sum
}

func (n *Notifier) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}

// peer runs one host's state machine until it acknowledged both the name
// and (for a dotted name) its short form, or ctx ends.
func (n *Notifier) peer(ctx context.Context, m store.Monitor) error {
	names := []string{m.MyName}
	if n.Name != "" {
		names[0] = n.Name
	}
	if i := strings.IndexByte(names[0], '.'); i > 0 {
		names = append(names, names[0][:i]) // the short name too, for peers that know us by it
	}
	var addrs []netip.Addr
	var port uint16
	sched := n.Schedule
	if sched.Initial == 0 {
		sched = DefaultSchedule
	}
	attempt, sinceLookup := 0, sched.ReLookup // forces the first lookup
	var last error
	for len(names) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		}
		if sinceLookup >= sched.ReLookup {
			if len(addrs) > 1 {
				addrs = append(addrs[1:], addrs[0]) // try the next address
			}
			port, sinceLookup = 0, 0
		}
		wait := sched.Wait(attempt)
		var err error
		switch {
		case len(addrs) == 0:
			addrs, err = n.resolve(ctx, m.DNSName)
			if err == nil {
				continue
			}
		case port == 0:
			port, err = n.lookupPort(ctx, addrs[0], wait)
			if err == nil && port != 0 {
				attempt, sinceLookup = 0, 0
				continue // send the notification at once
			}
			if err == nil {
				err = errors.New("no statd registered on the peer")
				wait = sched.Max
			}
		default:
			err = n.send(ctx, netip.AddrPortFrom(addrs[0], port), names[0], wait)
			if err == nil {
				names = names[1:]
				continue
			}
		}
		last = err
		attempt++
		sinceLookup++
		if errors.Is(err, oncrpc.ErrNoReply) {
			continue // the call already waited its timeout
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	return nil
}

func (n *Notifier) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	if n.Resolve != nil {
		return n.Resolve(ctx, name)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", name)
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("%s has no address", name)
	}
	return ips, err
}

type pmapMapping struct{ Prog, Vers, Prot, Port uint32 }

type rpcb struct {
	Prog, Vers         uint32
	Netid, Addr, Owner string
}

// lookupPort asks the peer's portmapper for its statd's UDP port: PMAP v2
// GETPORT for IPv4, RPCB v3 GETADDR (udp6) for IPv6, as sm-notify does.
func (n *Notifier) lookupPort(ctx context.Context, a netip.Addr, wait time.Duration) (uint16, error) {
	pm := n.PortmapPort
	if pm == 0 {
		pm = 111
	}
	to := netip.AddrPortFrom(a, pm)
	var buf bytes.Buffer
	if a.Is4() {
		xdr.Marshal(&buf, &pmapMapping{nsm.Program, nsm.Version, oncrpc.ProtoUDP, 0})
		res, err := n.Caller.Call(ctx, to, oncrpc.RpcbProg, oncrpc.PmapVers, oncrpc.RpcbGetAddr, buf.Bytes(), wait)
		if err != nil {
			return 0, err
		}
		var port uint32
		if _, err := xdr.UnmarshalLimited(bytes.NewReader(res), &port, 64); err != nil || port > 65535 {
			return 0, fmt.Errorf("bad GETPORT reply from %s", to)
		}
		return uint16(port), nil
	}
	xdr.Marshal(&buf, &rpcb{nsm.Program, nsm.Version, "udp6", oncrpc.UniversalAddr(to), ""})
	res, err := n.Caller.Call(ctx, to, oncrpc.RpcbProg, oncrpc.RpcbVers, oncrpc.RpcbGetAddr, buf.Bytes(), wait)
	if err != nil {
		return 0, err
	}
	var uaddr string
	if _, err := xdr.UnmarshalLimited(bytes.NewReader(res), &uaddr, 256); err != nil {
		return 0, fmt.Errorf("bad GETADDR reply from %s", to)
	}
	if uaddr == "" {
		return 0, nil
	}
	ap, err := oncrpc.ParseUniversalAddr(uaddr)
	return ap.Port(), err
}

func (n *Notifier) send(ctx context.Context, to netip.AddrPort, name string, wait time.Duration) error {
	args, err := nsm.Encode(&nsm.StatChge{MonName: name, State: n.State})
	if err != nil {
		return err
	}
	_, err = n.Caller.Call(ctx, to, nsm.Program, nsm.Version, nsm.ProcNotify, args, wait)
	return err
}
