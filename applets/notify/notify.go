// Package notify is the sm-notify applet: options, nfs.conf keys and
// process wiring around pkg/smnotify.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/getopt"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/nsmdir"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/smnotify"
	"nfsrecover/pkg/store"
)

// LinkName is the applet's name as nfs-utils installs it, and the name
// its processes show (comm, argv[0]).
const LinkName = nsm.NotifyName

// defaultStateDir is nfs-utils' state directory, the one sm-notify runs
// in only once per boot.
const defaultStateDir = "/var/lib/nfs"

var options = []getopt.Option{
	{Short: 'd'}, {Short: 'f'}, {Short: 'n'},
	{Short: 'm', HasArg: true}, {Short: 'p', HasArg: true}, {Short: 'v', HasArg: true}, {Short: 'P', HasArg: true},
	{Short: 'h', Long: "help"},
	{Long: "db", HasArg: true},
	{Long: "pid-file", HasArg: true},
	{Long: "nsm-state-file", HasArg: true},
	{Long: "end-grace-file", HasArg: true},
	{Long: "boot-id-file", HasArg: true},
	{Long: "deadline", HasArg: true},
}

// Usage is the help text. nfs-utils' first line reads "-notify [-dfq]",
// naming an option that does not exist and leaving out -n; ours is right.
const Usage = `Usage: %s [-dfn] [-m max-retry-minutes] [-p srcport]
            [-P /path/to/state/directory] [-v my_host_name]
  -d        stay in the foreground, log to stderr with debug messages
  -f        run even if already run this boot (HA fail-over); always advances the state
  -m MIN    give up after MIN minutes (default 15, 0 = never)
  -n        do not advance the NSM state number
  -p PORT   send from this source port (default: a random privileged port)
  -P DIR    state directory (the once-per-boot guard applies only to the default)
  -v NAME   name sent in SM_NOTIFY instead of each record's my_name; also the source address
nfsrecover additions:
  --db PATH            database (default: $NFSRECOVER_DB, nfs.conf [nfsrecover] db,
                       /var/lib/nfs/nfsrecover.db)
  --pid-file PATH      once-per-boot guard (default /run/sm-notify.pid)
  --deadline DURATION  like -m, in Go syntax (e.g. 30s)
nfs.conf [sm-notify]: debug, retry-time, outgoing-port, outgoing-addr, lift-grace,
update-state, force; [statd] state-directory-path; [nfsrecover] floating-ips and etcd-*:
-v of a floating IP notifies that IP's clients as recorded on etcd.
Exit status: 0 all notified, nobody to notify, or already run this boot; 1 bad usage,
unusable -v or state, socket or privilege failure, or peers left at the deadline.
Every peer is notified in parallel; one that answers leaves the notify list at once, so a
run that is killed resumes with the others (and the same state number) next time.
`

type config struct {
	foreground, force, noUpdate, liftGrace bool
	retry                                  time.Duration // 0 = forever
	port                                   int
	name, stateDir, db                     string
	defaultDir                             bool
	pidFile, stateFile, graceFile, bootID  string
	cluster                                cluster.Config // -v of a floating IP: notify from etcd
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	prog := filepath.Base(args[0])
	cfg, code, done := configure(args, stdout, stderr, lookupEnv)
	if done {
		return code
	}
	opts := logging.Options{Tag: prog, Debug: cfg.foreground}
	if cfg.foreground {
		opts.Writer = stderr
	}
	return run(cfg, args, logging.New(opts), lookupEnv, stderr)
}

func configure(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (cfg config, code int, done bool) {
	prog := filepath.Base(args[0])
	conf := nfsconf.LoadEnv(lookupEnv)
	cfg = config{
		foreground: conf.Int("sm-notify", "debug", 0) > 0,
		force:      conf.Bool("sm-notify", "force", false),
		noUpdate:   !conf.Bool("sm-notify", "update-state", true),
		liftGrace:  conf.Bool("sm-notify", "lift-grace", true),
		retry:      time.Duration(conf.Int("sm-notify", "retry-time", 15)) * time.Minute,
		port:       conf.Int("sm-notify", "outgoing-port", 0),
		name:       conf.String("sm-notify", "outgoing-addr", ""),
		stateDir:   conf.String("statd", "state-directory-path", defaultStateDir),
		pidFile:    "/run/sm-notify.pid", stateFile: nsmdir.KernelStateFile,
		graceFile: "/proc/fs/lockd/nlm_end_grace", bootID: "/proc/sys/kernel/random/boot_id",
	}
	parsed, operands, err := getopt.Parse(args[1:], options)
	usage := func(code int) (config, int, bool) { fmt.Fprintf(stdout, Usage, prog); return cfg, code, true }
	if err != nil || len(operands) > 0 {
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		}
		return usage(1)
	}
	var flagDB, flagDir string
	for _, p := range parsed {
		var perr error
		switch p.Key() {
		case "help":
			return usage(0)
		case "d":
			cfg.foreground = true
		case "f":
			cfg.force = true
		case "n":
			cfg.noUpdate = true
		case "m":
			var m int
			m, perr = strconv.Atoi(p.Arg)
			cfg.retry = time.Duration(m) * time.Minute
		case "deadline":
			cfg.retry, perr = time.ParseDuration(p.Arg)
		case "p":
			cfg.port, perr = strconv.Atoi(p.Arg)
			if perr == nil && (cfg.port < 1 || cfg.port > 65535) {
				perr = fmt.Errorf("port %d out of range", cfg.port)
			}
		case "v":
			cfg.name = p.Arg
		case "P":
			cfg.stateDir, flagDir = p.Arg, p.Arg
		case "db":
			flagDB = p.Arg
		case "pid-file":
			cfg.pidFile = p.Arg
		case "nsm-state-file":
			cfg.stateFile = p.Arg
		case "end-grace-file":
			cfg.graceFile = p.Arg
		case "boot-id-file":
			cfg.bootID = p.Arg
		}
		if perr != nil {
			fmt.Fprintf(stderr, "%s: -%s %s: %v\n", prog, p.Key(), p.Arg, perr)
			return usage(1)
		}
	}
	// nfs-utils compares the path as given: "-P /var/lib/nfs" is guarded
	// once per boot, "-P /var/lib/nfs/" is not.
	cfg.defaultDir = cfg.stateDir == defaultStateDir
	cfg.db, _ = store.Locate(store.Where{DB: flagDB, Dir: flagDir, ConfDir: conf.String("statd", "state-directory-path", "")}, lookupEnv, conf)
	cfg.cluster = cluster.Read(conf)
	return cfg, 0, false
}

// onceThisBoot implements the /run/sm-notify.pid guard: false when this
// boot already ran sm-notify (the file existed). Only for the default
// state directory, and -f and -n bypass it, as in nfs-utils.
func onceThisBoot(cfg config, log *slog.Logger) bool {
	if !cfg.defaultDir {
		return true
	}
	f, err := os.OpenFile(cfg.pidFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
		return true
	}
	if errors.Is(err, os.ErrExist) && !cfg.force && !cfg.noUpdate {
		log.Info("Already notifying clients; Exiting!")
		return false
	}
	return true
}

// prepareOptions says when the state advances. As in nfs-utils, every run
// that has peers to notify advances it (unless -n) when the once-per-boot
// guard does not apply: with -f, and with a state directory other than
// the default (HA scripts run sm-notify -P DIR once per fail-over, and
// peers must see each as a reboot). Only the guarded default run keeps
// the number when it resumes a run of the same boot.
func prepareOptions(cfg config, bootID string) smnotify.Options {
	return smnotify.Options{Bump: !cfg.noUpdate, Force: cfg.force || !cfg.defaultDir, BootID: bootID}
}

func run(cfg config, args []string, log *slog.Logger, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	// The background child finds everything its parent prepared: the
	// guard taken, the lists retired, the state advanced and durable. It
	// must not do any of it again (a second advance would look like a
	// second reboot).
	child := daemon.IsChild(lookupEnv)
	if !child && !onceThisBoot(cfg, log) {
		return 0
	}
	name, bindAddr, err := checkName(cfg.name)
	if err != nil {
		log.Error("unusable -v", "name", cfg.name, "err", err)
		return 1
	}
	if err := cfg.cluster.VIPsErr(); err != nil && bindAddr.IsValid() {
		// Whether -v names a floating IP (notify from etcd) or not (from
		// the state directory) cannot be told: refuse rather than guess.
		log.Error("cannot tell whether -v names a floating IP", "name", cfg.name, "err", err)
		return 1
	}
	if !child {
		cfg.cluster.WarnUnused(log)
	}
	if bindAddr.IsValid() && slices.Contains(cfg.cluster.FloatingIPs, bindAddr.String()) {
		return runVIP(cfg, args, bindAddr, name, log, lookupEnv, stderr)
	}
	db, err := store.Open(cfg.db, nil)
	if err != nil {
		log.Error("cannot open the database", "err", err)
		return 1
	}
	mirror := &nsmdir.Mirror{Dir: cfg.stateDir}
	if err := nsmdir.Reconcile(db, cfg.stateDir, log); err != nil {
		db.Close()
		log.Error("cannot read the state directory", "dir", cfg.stateDir, "err", err)
		return 1
	}
	boot, _ := os.ReadFile(cfg.bootID)
	opts := prepareOptions(cfg, strings.TrimSpace(string(boot)))
	opts.Bump = opts.Bump && !child
	plan, err := smnotify.Prepare(db, opts)
	db.Close()
	if err != nil {
		log.Error("cannot record the new state", "err", err)
		return 1
	}
	if err := mirror.Retire(); err != nil {
		log.Error("cannot move sm/ to sm.bak/", "dir", cfg.stateDir, "err", err)
		return 1
	}
	if plan.Bumped {
		if err := mirror.SetState(plan.State); err != nil {
			log.Error("cannot write the state file", "dir", cfg.stateDir, "err", err)
			return 1
		}
	}
	if len(plan.Peers) == 0 {
		log.Info("no hosts to notify")
		if cfg.liftGrace {
			liftGrace(cfg.graceFile, log)
		}
		return 0
	}
	if err := nsmdir.TellKernel(cfg.stateFile, plan.State); err != nil {
		log.Warn("cannot tell the kernel our NSM state", "err", err)
	}
	log.Info("notifying peers", "peers", len(plan.Peers), "state", plan.State, "advanced", plan.Bumped)
	ready, parent, err := daemon.Detach(cfg.foreground, LinkName, args, lookupEnv)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "sm-notify: %v\n", err)
		return 1
	case parent:
		return 0
	}
	conn, err := socket(bindAddr, cfg.port)
	if err != nil {
		log.Error("cannot create the sending socket", "err", err)
		return 1
	}
	defer conn.Close()
	if err := nsmdir.DropToOwner(cfg.stateDir, cfg.db, log); err != nil {
		log.Error("cannot drop privileges", "err", err)
		return 1
	}
	ready()
	return notifyAll(cfg, plan, name, conn, mirror, log)
}

func notifyAll(cfg config, plan smnotify.Plan, name string, conn *net.UDPConn, mirror *nsmdir.Mirror, log *slog.Logger) int {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	committer := store.NewCommitter(func() (*store.DB, error) { return store.Open(cfg.db, nil) })
	go committer.Run(ctx)
	return notifyPeers(cfg, plan.Peers, plan.State, name, conn, log, func(ctx context.Context, m store.Monitor) error {
		if err := mirror.Notified(m); err != nil {
			return err
		}
		return committer.Do(ctx, func(tx *store.Tx) error { return tx.DeleteNotify(m) })
	})
}

// notifyPeers sends state to every peer until each answered or the -m
// deadline passed; done records a peer as notified. It returns the exit
// status.
func notifyPeers(cfg config, peers []store.Monitor, state int32, name string, conn *net.UDPConn, log *slog.Logger,
	done func(context.Context, store.Monitor) error) int {
	ctx := context.Background()
	if cfg.retry > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.retry)
		defer cancel()
	}
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	caller := oncrpc.NewUDPCaller(conn)
	go caller.Run(rctx)
	n := &smnotify.Notifier{Caller: caller, State: state, Name: name, Log: log, Done: done}
	start := time.Now()
	sum := n.Run(ctx, peers)
	for _, p := range sum.Pending {
		log.Error("Unable to notify, giving up", "peer", p.DNSName)
	}
	log.Info("sm-notify done", "notified", sum.Notified, "pending", len(sum.Pending), "elapsed", time.Since(start).Round(time.Millisecond))
	if len(sum.Pending) > 0 {
		return 1
	}
	return 0
}

// checkName returns the name to send and the address to bind for -v. A
// numeric -v is sent as its reverse name when DNS answers in time (as
// nfs-utils does), else as given; a name must resolve to bind to it.
func checkName(v string) (string, netip.Addr, error) {
	if v == "" {
		return "", netip.Addr{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a, err := netip.ParseAddr(v); err == nil {
		if names, err := net.DefaultResolver.LookupAddr(ctx, v); err == nil && len(names) > 0 {
			return strings.TrimSuffix(names[0], "."), a, nil
		}
		return v, a, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", v)
	if err != nil || len(ips) == 0 {
		return "", netip.Addr{}, fmt.Errorf("cannot resolve %q to bind to it: %v", v, err)
	}
	return v, ips[0].Unmap(), nil
}

// socket binds the sending socket: to the -v address (or every address,
// dual-stack) and to the -p port or a random privileged one.
func socket(addr netip.Addr, port int) (*net.UDPConn, error) {
	network, ip := "udp", net.IPv6unspecified
	if addr.IsValid() {
		ip = net.IP(addr.AsSlice())
		if addr.Is4() {
			network = "udp4"
		}
	}
	if port != 0 {
		return net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
	}
	for try := 0; try < 100; try++ {
		c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: 600 + rand.IntN(1024-600)})
		if err == nil {
			return c, nil
		}
		if errors.Is(err, syscall.EACCES) {
			break // not privileged: an ordinary port
		}
	}
	return net.ListenUDP(network, &net.UDPAddr{IP: ip})
}

func liftGrace(path string, log *slog.Logger) {
	err := os.WriteFile(path, []byte("Y"), 0)
	if err != nil && !os.IsNotExist(err) {
		log.Warn("cannot lift the lock manager's grace period", "file", path, "err", err)
	}
}
