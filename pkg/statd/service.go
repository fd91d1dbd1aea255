// Package statd implements the NSM daemon's procedures (RPC program
// 100024 version 1) with rpc.statd's rules: SM_MON only from the local
// lock manager, durable before the reply, duplicate detection, SM_UNMON,
// SM_UNMON_ALL, SM_STAT, and SM_NOTIFY matching with replay suppression.
// Sockets, rpcbind registration, privileges and the callback sender are
// wired by the applet; this package is transport-free and testable.
package statd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/nsmdir"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

// NLM callback program and procedures statd accepts in SM_MON (spec §5.4).
const (
	nlmProg      = 100021
	nlmNotify    = 16
	nlmNotifyOld = 24
)

// Callback is a reboot notification to deliver to the local lock manager:
// the stored mon_name and priv, the new state, at my_prog/my_vers/my_proc.
type Callback struct {
	MonName          string
	State            int32
	Priv             [16]byte
	Prog, Vers, Proc uint32
}

// VIPRecorder records monitors against the floating IPs this node serves
// (cluster.NSMRecorder). Monitor returns nil only once the record is
// durable; a record it keeps too many costs one extra SM_NOTIFY later.
type VIPRecorder interface {
	Monitor(ctx context.Context, m store.Monitor) error
	Unmonitor(ctx context.Context, ms []store.Monitor) error
}

// Service answers NSM calls.
type Service struct {
	List   *List
	Commit interface {
		Do(context.Context, func(*store.Tx) error) error
	}
	// State returns our NSM state number (odd).
	State func() int32
	// Canon returns the canonical (DNS) name of a peer name; nil uses the
	// name itself. It must not block for long: numeric names need no DNS.
	Canon func(ctx context.Context, name string) (string, error)
	// Queue receives callbacks to deliver; it must not block (it is called
	// with the monitor list locked, to keep each record's order).
	Queue func(Callback)
	// Callout runs the HA callout with these arguments, asynchronously.
	Callout func(args ...string)
	// Mirror keeps the state directory's sm/ files in step; nil: none.
	Mirror *nsmdir.Mirror
	// VIPs records monitors against the floating IPs this node serves,
	// for the node that takes one over; nil: none.
	VIPs VIPRecorder
	// AllowIPv6Loopback accepts SM_MON and friends from ::1 too.
	AllowIPv6Loopback bool
	Now               func() time.Time
	Log               *slog.Logger
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Dispatch implements oncrpc.Handler.
func (s *Service) Dispatch(ctx context.Context, r *oncrpc.Request) (uint32, []byte) {
	type proc func(context.Context, *oncrpc.Request) (any, error)
	procs := map[uint32]proc{
		nsm.ProcNull: func(context.Context, *oncrpc.Request) (any, error) { return nil, nil },
		nsm.ProcStat: s.stat, nsm.ProcMon: s.mon, nsm.ProcUnmon: s.unmon,
		nsm.ProcUnmonAll: s.unmonAll, nsm.ProcSimuCrash: s.simuCrash, nsm.ProcNotify: s.notify,
	}
	p, ok := procs[r.Proc]
	if !ok {
		return oncrpc.ProcUnavail, nil
	}
	res, err := p(ctx, r)
	if err != nil {
		s.log().Warn("undecodable arguments", "proc", r.Proc, "from", r.Addr.String(), "err", err)
		return oncrpc.GarbageArgs, nil
	}
	if res == nil {
		return oncrpc.Success, nil
	}
	out, err := nsm.Encode(res)
	if err != nil {
		return oncrpc.SystemErr, nil
	}
	return oncrpc.Success, out
}

// local reports whether the caller is the local lock manager: exactly
// 127.0.0.1 (rpc.statd's rule), or ::1 when allowed.
func (s *Service) local(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr()
	return ip == netip.MustParseAddr("127.0.0.1") || s.AllowIPv6Loopback && ip == netip.IPv6Loopback()
}

func (s *Service) canon(ctx context.Context, name string) (string, error) {
	if s.Canon == nil {
		return name, nil
	}
	return s.Canon(ctx, name)
}

func (s *Service) stat(ctx context.Context, r *oncrpc.Request) (any, error) {
	var a nsm.SmName
	if err := nsm.Decode(r.Args, &a); err != nil {
		return nil, err
	}
	res := &nsm.SmStatRes{ResStat: nsm.StatSucc, State: s.State()}
	if _, err := s.canon(ctx, a.MonName); err != nil {
		res.ResStat = nsm.StatFail
	}
	return res, nil
}

// foldSpace replaces the whitespace rpc.statd replaces in my_name.
func foldSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return '_'
		}
		return r
	}, s)
}

// badName rejects peer names that were once used to attack statd (CERT
// CA-96.09: path components) and anything a log or file name must not
// carry.
func badName(n string) bool {
	if n == "" || strings.HasPrefix(n, ".") || strings.ContainsRune(n, '/') {
		return true
	}
	for _, c := range n {
		if c < 0x21 || c == 0x7f {
			return true
		}
	}
	return false
}

func sameCallback(e *Entry, myName string, prog, vers, proc uint32) bool {
	return strings.EqualFold(e.MyName, myName) && e.Prog == prog && e.Vers == vers && e.Proc == proc
}

func (s *Service) mon(ctx context.Context, r *oncrpc.Request) (any, error) {
	var a nsm.Mon
	if err := nsm.Decode(r.Args, &a); err != nil {
		return nil, err
	}
	failed := &nsm.SmStatRes{ResStat: nsm.StatFail, State: -1}
	id := a.MonID
	from := r.Addr.String()
	switch {
	case !s.local(r.Addr):
		s.log().Warn("SM_MON from non-local host refused", "from", from, "mon_name", id.MonName)
		return failed, nil
	case id.MyID.MyProg != nlmProg || id.MyID.MyProc != nlmNotify && id.MyID.MyProc != nlmNotifyOld:
		s.log().Warn("SM_MON: attempt to register a callback to a program other than the lock manager",
			"prog", id.MyID.MyProg, "proc", id.MyID.MyProc, "from", from)
		return failed, nil
	case badName(id.MonName):
		s.log().Warn("SM_MON: POSSIBLE SPOOF/ATTACK ATTEMPT, bad mon_name", "mon_name", id.MonName, "from", from)
		return failed, nil
	}
	myName := foldSpace(id.MyID.MyName)
	dns, err := s.canon(ctx, id.MonName)
	if err != nil {
		s.log().Warn("SM_MON: no canonical hostname", "mon_name", id.MonName, "err", err)
		return failed, nil
	}
	if err := smdir.ValidName(dns); err != nil { // rpc.statd could not create its sm/ file
		s.log().Warn("SM_MON: peer name cannot be recorded", "mon_name", id.MonName, "err", err)
		return failed, nil
	}
	m := store.Monitor{MonName: id.MonName, DNSName: dns, MyName: myName,
		Prog: uint32(id.MyID.MyProg), Vers: uint32(id.MyID.MyVers), Proc: uint32(id.MyID.MyProc),
		Priv: a.Priv, Created: s.now().Unix()}
	old, dup := s.findMon(m)
	if dup && old.Priv == m.Priv {
		return &nsm.SmStatRes{ResStat: nsm.StatSucc, State: s.State()}, nil // no I/O
	}
	// The sm/ file, the database and the per-VIP records are written at
	// once (each is made durable on its own), and the reply waits for all.
	fileDone, vipDone := make(chan error, 1), make(chan error, 1)
	go func() { fileDone <- s.Mirror.Monitor(m) }()
	go func() { vipDone <- s.recordVIPs(ctx, m) }()
	err = s.Commit.Do(ctx, func(tx *store.Tx) error {
		if dup {
			if err := tx.DeleteMonitor(old.Monitor); err != nil {
				return err
			}
		}
		return tx.PutMonitor(m)
	})
	ferr, verr := <-fileDone, <-vipDone
	if ferr != nil || err != nil || verr != nil {
		s.log().Error("SM_MON: cannot record the monitor", "mon_name", id.MonName, "file", ferr, "database", err, "cluster", verr)
		s.undoMon(ctx, m, old, dup, ferr == nil, err == nil) // best effort: the kernel will retry
		return failed, nil
	}
	s.install(m)
	s.callout("add-client", m.MonName, m.MyName)
	s.log().Info("monitoring", "mon_name", m.MonName, "my_name", m.MyName, "new_cookie", dup)
	return &nsm.SmStatRes{ResStat: nsm.StatSucc, State: s.State()}, nil
}

// recordVIPs records m against the floating IPs held now, if any.
func (s *Service) recordVIPs(ctx context.Context, m store.Monitor) error {
	if s.VIPs == nil {
		return nil
	}
	return s.VIPs.Monitor(ctx, m)
}

// undoMon takes back the half of an SM_MON that was written when the
// other half failed.
func (s *Service) undoMon(ctx context.Context, m store.Monitor, old Entry, dup, fileWritten, dbWritten bool) {
	if fileWritten && !dup {
		s.Mirror.Unmonitor(m)
	}
	if dbWritten {
		s.Commit.Do(ctx, func(tx *store.Tx) error {
			if err := tx.DeleteMonitor(m); err != nil {
				return err
			}
			if dup {
				return tx.PutMonitor(old.Monitor)
			}
			return nil
		})
	}
}

// findMon returns the entry SM_MON would duplicate, if any (a copy).
func (s *Service) findMon(m store.Monitor) (Entry, bool) {
	s.List.mu.Lock()
	defer s.List.mu.Unlock()
	for _, e := range s.List.candidates(m.MonName) {
		if strings.EqualFold(e.MonName, m.MonName) && sameCallback(e, m.MyName, m.Prog, m.Vers, m.Proc) {
			return *e, true
		}
	}
	return Entry{}, false
}

// install puts a committed record in memory, replacing its older twin
// (two concurrent SM_MONs for one peer leave one entry).
func (s *Service) install(m store.Monitor) {
	s.List.mu.Lock()
	defer s.List.mu.Unlock()
	for _, e := range s.List.candidates(m.MonName) {
		if strings.EqualFold(e.MonName, m.MonName) && sameCallback(e, m.MyName, m.Prog, m.Vers, m.Proc) {
			s.List.remove(e)
			break
		}
	}
	s.List.add(&Entry{Monitor: m})
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) callout(args ...string) {
	if s.Callout != nil {
		s.Callout(args...)
	}
}

// drop removes entries from the database and memory. Unlike rpc.statd,
// which deletes by exact file line and can leave stale records, records
// are deleted by identity.
func (s *Service) drop(ctx context.Context, victims []Entry) error {
	if len(victims) == 0 {
		return nil
	}
	for _, v := range victims {
		if err := s.Mirror.Unmonitor(v.Monitor); err != nil {
			s.log().Error("cannot remove the sm/ record", "mon_name", v.MonName, "err", err)
		}
	}
	if s.VIPs != nil {
		ms := make([]store.Monitor, len(victims))
		for i, v := range victims {
			ms[i] = v.Monitor
		}
		if err := s.VIPs.Unmonitor(ctx, ms); err != nil {
			s.log().Error("cannot remove the per-VIP records", "monitors", len(ms), "err", err)
		}
	}
	err := s.Commit.Do(ctx, func(tx *store.Tx) error {
		for _, v := range victims {
			if err := tx.DeleteMonitor(v.Monitor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.List.mu.Lock()
	for _, v := range victims {
		for _, e := range s.List.candidates(v.MonName) {
			if e.Monitor == v.Monitor {
				s.List.remove(e)
				break
			}
		}
	}
	s.List.mu.Unlock()
	for _, v := range victims {
		s.callout("del-client", v.MonName, v.MyName)
	}
	return nil
}

func (s *Service) unmon(ctx context.Context, r *oncrpc.Request) (any, error) {
	var a nsm.MonID
	if err := nsm.Decode(r.Args, &a); err != nil {
		return nil, err
	}
	res := &nsm.SmStat{State: s.State()}
	if !s.local(r.Addr) {
		s.log().Warn("SM_UNMON from non-local host ignored", "from", r.Addr.String())
		return res, nil
	}
	myName := foldSpace(a.MyID.MyName)
	var victim []Entry
	s.List.mu.Lock()
	for _, e := range s.List.candidates(a.MonName) {
		if strings.EqualFold(e.MonName, a.MonName) && sameCallback(e, myName, uint32(a.MyID.MyProg), uint32(a.MyID.MyVers), uint32(a.MyID.MyProc)) {
			victim = append(victim, *e)
			break
		}
	}
	s.List.mu.Unlock()
	if len(victim) == 0 {
		s.log().Info("erroneous SM_UNMON: not monitored", "mon_name", a.MonName, "my_name", myName)
		return res, nil
	}
	if err := s.drop(ctx, victim); err != nil {
		s.log().Error("SM_UNMON: cannot delete the record", "mon_name", a.MonName, "err", err)
	}
	return res, nil
}

func (s *Service) unmonAll(ctx context.Context, r *oncrpc.Request) (any, error) {
	var a nsm.MyID
	if err := nsm.Decode(r.Args, &a); err != nil {
		return nil, err
	}
	res := &nsm.SmStat{State: s.State()}
	if !s.local(r.Addr) {
		s.log().Warn("SM_UNMON_ALL from non-local host ignored", "from", r.Addr.String())
		return res, nil
	}
	var victims []Entry
	for _, e := range s.List.Snapshot() {
		if sameCallback(&e, a.MyName, uint32(a.MyProg), uint32(a.MyVers), uint32(a.MyProc)) {
			victims = append(victims, e)
		}
	}
	if err := s.drop(ctx, victims); err != nil {
		s.log().Error("SM_UNMON_ALL: cannot delete records", "err", err)
	}
	return res, nil
}

// simuCrash is refused: in rpc.statd it only forgets the in-memory list
// (the records stay on disk), and FreeBSD's version starts a notification
// storm; neither is useful from the network.
func (s *Service) simuCrash(_ context.Context, r *oncrpc.Request) (any, error) {
	s.log().Warn("SM_SIMU_CRASH ignored", "from", r.Addr.String())
	return nil, nil
}

// notify handles a peer's reboot notice: every entry naming that peer
// (by the name it sent, or by its source address) whose last seen state
// differs gets one callback; a repeat with the same state is ignored.
func (s *Service) notify(_ context.Context, r *oncrpc.Request) (any, error) {
	var a nsm.StatChge
	if err := nsm.Decode(r.Args, &a); err != nil {
		return nil, err
	}
	ip := ""
	if ap, err := netip.ParseAddrPort(r.Addr.String()); err == nil {
		ip = ap.Addr().Unmap().String()
	}
	s.callout("sm-notify", a.MonName, ip, fmt.Sprint(a.State))
	// Calls are dispatched concurrently: a notification that arrived
	// before the one an entry already took is stale and changes nothing.
	// Callbacks are queued under the list's lock, so the queue sees each
	// entry's states in arrival order too.
	queued := 0
	s.List.mu.Lock()
	seen := map[*Entry]bool{}
	for _, key := range []string{a.MonName, ip} {
		for _, e := range s.List.candidates(key) {
			if seen[e] || e.LastState == a.State || r.Seq < e.lastSeq {
				continue
			}
			seen[e] = true
			e.LastState, e.lastSeq = a.State, r.Seq
			s.Queue(Callback{MonName: e.MonName, State: a.State, Priv: e.Priv, Prog: e.Prog, Vers: e.Vers, Proc: e.Proc})
			queued++
		}
	}
	s.List.mu.Unlock()
	s.log().Info("SM_NOTIFY", "name", a.MonName, "from", ip, "state", a.State, "callbacks", queued)
	return nil, nil
}
