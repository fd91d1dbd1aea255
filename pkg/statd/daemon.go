package statd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/nsmdir"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

// Config is what the daemon needs from its command line and nfs.conf.
type Config struct {
	DBPath            string
	Port              int    // listener port for every transport; 0 = dynamic
	KernelStateFile   string // "" = nsmdir.KernelStateFile
	HACallout         string // program, "" = none
	AllowIPv6Loopback bool
	// StateDir's sm/ owner is the user statd runs as once its sockets are
	// bound ("" or a root-owned sm/: stay root, with a warning).
	StateDir string
	Rpcbind  oncrpc.Rpcbind // where to register; zero = local socket or 127.0.0.1:111
	// VIPs records monitors per floating IP (cluster mode); nil: none.
	VIPs VIPRecorder
	Log  *slog.Logger
	// Ready is called once every listener is registered with rpcbind.
	Ready func(ports map[string]int)
}

// ErrAlreadyRunning is returned when another statd answers on this host.
var ErrAlreadyRunning = errors.New("statd service already running")

// Run starts the daemon and serves until ctx ends; it unregisters from
// rpcbind before returning.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	rb := cfg.Rpcbind
	if rb.Network == "" {
		rb = oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}
		if _, err := os.Stat(oncrpc.DefaultSock); err == nil {
			rb = oncrpc.Rpcbind{Network: "unix", Address: oncrpc.DefaultSock}
		}
	}
	cbConn, err := callbackSocket()
	if err != nil {
		return fmt.Errorf("statd: callback socket: %w", err)
	}
	defer cbConn.Close()
	open := func() (*store.DB, error) { return store.Open(cfg.DBPath, nil) }
	var mirror *nsmdir.Mirror
	if cfg.StateDir != "" {
		mirror = &nsmdir.Mirror{Dir: cfg.StateDir}
		if err := reconcile(open, cfg.StateDir, log); err != nil {
			return err
		}
	}
	state, monitors, err := loadAll(open)
	if err != nil {
		return err
	}
	if mirror != nil && !smdir.HasState(cfg.StateDir) {
		if err := mirror.SetState(state); err != nil { // as rpc.statd creates a missing state file
			return fmt.Errorf("statd: %w", err)
		}
	}
	if err := nsmdir.TellKernel(orString(cfg.KernelStateFile, nsmdir.KernelStateFile), state); err != nil {
		log.Warn("cannot tell the kernel our NSM state", "err", err)
	}
	list := NewList()
	list.Load(monitors)
	log.Info("monitor list loaded", "monitors", list.Len(), "state", state)

	lookup := oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}
	sender := NewSender(cbConn, func(ctx context.Context, prog, vers uint32) (uint16, error) {
		return lookup.PmapGetPort(ctx, prog, vers, oncrpc.ProtoUDP)
	})
	sender.Log = log
	committer := store.NewCommitter(open)
	canon := &Canonicalizer{}
	svc := &Service{List: list, Commit: committer, State: func() int32 { return state }, Canon: canon.Canon,
		Queue: sender.Queue, AllowIPv6Loopback: cfg.AllowIPv6Loopback, Log: log, Mirror: mirror, VIPs: cfg.VIPs}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var callouts *Callouts
	if cfg.HACallout != "" {
		callouts = NewCallouts(cfg.HACallout, log)
		svc.Callout = callouts.Call
		go callouts.Run(ctx)
	}
	go committer.Run(ctx)
	go sender.Run(ctx)
	go logging.FlushEvery(ctx, log, logging.DefaultInterval)
	return serve(ctx, cfg, rb, &oncrpc.Server{Handler: svc, Prog: nsm.Program, VersLow: 1, VersHi: 1, Log: log})
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// reconcile brings the database in step with the state directory's files
// (nsmdir.Reconcile).
func reconcile(open func() (*store.DB, error), dir string, log *slog.Logger) error {
	db, err := open()
	if err != nil {
		return fmt.Errorf("statd: %w", err)
	}
	defer db.Close()
	if err := nsmdir.Reconcile(db, dir, log); err != nil {
		return fmt.Errorf("statd: %w", err)
	}
	return nil
}

// loadAll reads the state number and the monitor list in one open.
func loadAll(open func() (*store.DB, error)) (int32, []store.Monitor, error) {
	db, err := open()
	if err != nil {
		return 0, nil, fmt.Errorf("statd: %w", err)
	}
	defer db.Close()
	state, err := nsmdir.LoadState(db)
	if err != nil {
		return 0, nil, fmt.Errorf("statd: NSM state: %w", err)
	}
	c, err := db.Dump()
	if err != nil {
		return 0, nil, fmt.Errorf("statd: monitor list: %w", err)
	}
	return state, c.Monitors, nil
}

// ProbeRunning returns ErrAlreadyRunning when a statd is registered with
// the local rpcbind and answers SM_NULL. Call it before touching the pid
// file or anything else the running one owns.
func ProbeRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	port, err := oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}.PmapGetPort(ctx, nsm.Program, nsm.Version, oncrpc.ProtoUDP)
	if err != nil || port == 0 {
		return nil // no rpcbind answer or not registered: nobody runs
	}
	nctx, ncancel := context.WithTimeout(ctx, time.Second)
	defer ncancel()
	if _, err := oncrpc.Call(nctx, "udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), nsm.Program, nsm.Version, nsm.ProcNull, nil); err == nil {
		return ErrAlreadyRunning
	}
	return nil
}

// callbackSocket binds a UDP socket on 127.0.0.1 to a random privileged
// port (lockd accepts callbacks only from ports up to 1023), falling back
// to an ordinary port when not privileged (with a warning by the caller).
func callbackSocket() (*net.UDPConn, error) {
	for try := 0; try < 100; try++ {
		port := 600 + rand.IntN(1024-600)
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			return c, nil
		}
		if errors.Is(err, syscall.EACCES) {
			break
		}
	}
	return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

type listener struct {
	netid string
	udp   net.PacketConn
	tcp   net.Listener
}

func (l listener) port() int {
	if l.udp != nil {
		return int(netip.MustParseAddrPort(l.udp.LocalAddr().String()).Port())
	}
	return int(netip.MustParseAddrPort(l.tcp.Addr().String()).Port())
}

// listen opens udp, tcp (and udp6, tcp6, IPv6-only, when the host has
// IPv6) on port.
func listen(ctx context.Context, port int) ([]listener, error) {
	lc := net.ListenConfig{Control: v6only}
	var out []listener
	for _, t := range []struct{ netid, network, host string }{
		{"udp", "udp4", "0.0.0.0"}, {"tcp", "tcp4", "0.0.0.0"}, {"udp6", "udp6", "::"}, {"tcp6", "tcp6", "::"},
	} {
		addr := net.JoinHostPort(t.host, strconv.Itoa(port))
		var l listener
		var err error
		l.netid = t.netid
		if t.network[:3] == "udp" {
			l.udp, err = lc.ListenPacket(ctx, t.network, addr)
		} else {
			l.tcp, err = lc.Listen(ctx, t.network, addr)
		}
		if err != nil {
			if t.host == "::" {
				continue // no IPv6 here
			}
			closeAll(out)
			return nil, fmt.Errorf("listen %s %s: %w", t.network, addr, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func closeAll(ls []listener) {
	for _, l := range ls {
		if l.udp != nil {
			l.udp.Close()
		}
		if l.tcp != nil {
			l.tcp.Close()
		}
	}
}

// serve listens, registers every transport with rpcbind, serves until ctx
// ends, then unregisters.
func serve(ctx context.Context, cfg Config, rb oncrpc.Rpcbind, srv *oncrpc.Server) error {
	ls, err := listen(ctx, cfg.Port)
	if err != nil {
		return fmt.Errorf("statd: %w", err)
	}
	defer closeAll(ls)
	owner := strconv.Itoa(os.Getuid())
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	rb.Unset(rctx, oncrpc.RpcbVers, nsm.Program, nsm.Version, "", owner) // stale entries, as root
	if err := nsmdir.DropToOwner(cfg.StateDir, cfg.DBPath, cfg.Log); err != nil {
		return fmt.Errorf("statd: %w", err)
	}
	owner = strconv.Itoa(os.Getuid())
	ports := map[string]int{}
	for _, l := range ls {
		host := "0.0.0.0"
		if l.netid[len(l.netid)-1] == '6' {
			host = "::"
		}
		ua := oncrpc.UniversalAddr(netip.AddrPortFrom(netip.MustParseAddr(host), uint16(l.port())))
		if ok, err := rb.Set(rctx, oncrpc.RpcbVers, nsm.Program, nsm.Version, l.netid, ua, owner); err != nil || !ok {
			return fmt.Errorf("statd: register %s with rpcbind: ok=%v %v", l.netid, ok, err)
		}
		ports[l.netid] = l.port()
	}
	defer func() {
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ucancel()
		rb.Unset(uctx, oncrpc.RpcbVers, nsm.Program, nsm.Version, "", owner)
	}()
	errs := make(chan error, len(ls))
	for _, l := range ls {
		l := l
		go func() {
			if l.udp != nil {
				errs <- srv.ServeUDP(ctx, l.udp)
			} else {
				errs <- srv.ServeTCP(ctx, l.tcp)
			}
		}()
	}
	cfg.Log.Info("statd ready", "ports", ports)
	if cfg.Ready != nil {
		cfg.Ready(ports)
	}
	var first error
	for range ls {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
