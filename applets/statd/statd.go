// Package statd is the rpc.statd applet: options, nfs.conf keys and
// process wiring around pkg/statd.
package statd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/getopt"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/statd"
	"nfsrecover/pkg/store"
	"nfsrecover/pkg/version"
)

// LinkName is the applet's name as nfs-utils installs it, and the name
// its processes show (comm, argv[0]).
const LinkName = nsm.StatdName

var options = []getopt.Option{
	{Short: 'F', Long: "foreground"},
	{Short: 'd', Long: "no-syslog"},
	{Short: 'h', Long: "help"},
	{Short: '?'},
	{Short: 'v', Long: "version"},
	{Short: 'V'},
	{Short: 'p', Long: "port", HasArg: true},
	{Short: 'o', Long: "outgoing-port", HasArg: true},
	{Short: 'n', Long: "name", HasArg: true},
	{Short: 'P', Long: "state-directory-path", HasArg: true},
	{Short: 'N', Long: "notify-mode"},
	{Short: 'L', Long: "no-notify"},
	{Short: 'H', Long: "ha-callout", HasArg: true},
	{Short: 'T', Long: "nlm-port", HasArg: true},
	{Short: 'U', Long: "nlm-udp-port", HasArg: true},
	{Long: "db", HasArg: true},
	{Long: "pid-file", HasArg: true},
	{Long: "allow-ipv6-loopback"},
	{Long: "nsm-state-file", HasArg: true},
}

// Usage is printed by -h and, as in nfs-utils, for an unknown option.
const Usage = `Usage: %s [options]
      -h, -?, --help       Print this help screen.
      -F, --foreground     Foreground (no-daemon mode)
      -d, --no-syslog      Verbose logging to stderr.  Foreground mode only.
      -p, --port           Port to listen on
      -o, --outgoing-port  Port for outgoing connections
      -V, -v, --version    Display version information and exit.
      -n, --name           Specify a local hostname.
      -P                   State directory path: sm/, sm.bak/ and state, kept as
                           nfs-utils keeps them, and nfsrecover.db unless --db.
      -N                   Run in notify only mode (sm-notify, then exit).
      -L, --no-notify      Do not perform any notification.
      -H                   Specify a high-availability callout program.
      -T, --nlm-port       Port for NLM TCP listener (written to the kernel)
      -U, --nlm-udp-port   Port for NLM UDP listener (written to the kernel)
nfsrecover additions:
      --db PATH            database (default: $NFSRECOVER_DB, nfs.conf [nfsrecover] db,
                           /var/lib/nfs/nfsrecover.db)
      --pid-file PATH      default /run/rpc.statd.pid
      --allow-ipv6-loopback  accept SM_MON from ::1 as well as 127.0.0.1
Environment: RPC_STATD_NO_NOTIFY=n (n > 0) is -L.
nfs.conf [nfsrecover] floating-ips and etcd-*: also record each monitor on etcd against
every floating IP this host holds, for sm-notify -v on the host that takes it over.
Management (as "nfsrecover statd"):
      nfsrecover statd import [--from /var/lib/nfs] [--replace]   sm/, sm.bak/, state -> database
      nfsrecover statd export --to DIR [--force]                  database -> sm/, sm.bak/, state
`

type config struct {
	foreground, debug, noNotify, notifyMode bool
	port, outPort, nlmTCP, nlmUDP           int
	name, stateDir, callout                 string
	db, pidFile, stateFile                  string
	allowV6                                 bool
	cluster                                 cluster.Config // per-VIP records when FloatingIPs is set
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	prog := filepath.Base(args[0])
	if hoisted, ok := getopt.HoistVerb(args, "import", "export"); ok && prog != "rpc.statd" {
		return manage(hoisted, stdout, stderr, lookupEnv)
	}
	cfg, code, done := configure(args, stdout, stderr, lookupEnv)
	if done {
		return code
	}
	if cfg.notifyMode {
		opts := logging.Options{Tag: prog, Debug: cfg.debug}
		if cfg.debug {
			opts.Writer = stderr
		}
		return runNotify(cfg, logging.New(opts)) // -N: notify and exit
	}
	ready, parent, err := daemon.Detach(cfg.foreground, LinkName, args, lookupEnv)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	case parent:
		return 0 // the child is up and registered
	}
	opts := logging.Options{Tag: prog, Debug: cfg.debug}
	if cfg.debug && cfg.foreground {
		opts.Writer = stderr
	}
	return run(cfg, logging.New(opts), ready, lookupEnv)
}

func run(cfg config, log *slog.Logger, ready func(), lookupEnv func(string) (string, bool)) int {
	if err := statd.ProbeRunning(context.Background()); err != nil {
		log.Error("Statd service already running!")
		return 1
	}
	setNLMPorts(cfg, log)
	release, err := daemon.WritePidfile(cfg.pidFile)
	if err != nil {
		log.Warn("no pid file", "err", err)
	} else {
		defer release()
	}
	if cfg.noNotify {
		log.Info("no-notify mode: sm-notify not run")
	} else {
		runNotify(cfg, log)
	}
	cfg.cluster.WarnUnused(log)
	vips, closeVIPs, err := vipRecorder(cfg.cluster, log)
	if err != nil {
		log.Error("cannot record monitors per floating IP", "err", err)
		return 1
	}
	defer closeVIPs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	signal.Ignore(syscall.SIGPIPE)
	err = statd.Run(ctx, statd.Config{
		DBPath: cfg.db, Port: cfg.port, KernelStateFile: cfg.stateFile, HACallout: cfg.callout, StateDir: cfg.stateDir,
		AllowIPv6Loopback: cfg.allowV6, Log: log, VIPs: vips,
		Ready: func(map[string]int) {
			daemon.SdNotify(lookupEnv, "READY=1")
			ready()
		},
	})
	if err != nil {
		log.Error("statd stopped", "err", err)
		return 1
	}
	log.Info("statd exiting")
	return 0
}

// setNLMPorts writes -T/-U to the kernel (errors logged only).
func setNLMPorts(cfg config, log *slog.Logger) {
	for file, port := range map[string]int{"nlm_tcpport": cfg.nlmTCP, "nlm_udpport": cfg.nlmUDP} {
		if port == 0 {
			continue
		}
		p := "/proc/sys/fs/nfs/" + file
		if err := os.WriteFile(p, []byte(strconv.Itoa(port)), 0); err != nil {
			log.Warn("cannot set the lock manager port", "file", p, "err", err)
		}
	}
}

// configure applies nfs.conf, then the environment, then the command
// line. done means exit now with code.
func configure(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (cfg config, code int, done bool) {
	prog := filepath.Base(args[0])
	conf := nfsconf.LoadEnv(lookupEnv)
	cfg = config{pidFile: "/run/rpc.statd.pid"}
	cfg.port = conf.Int("statd", "port", 0)
	cfg.outPort = conf.Int("statd", "outgoing-port", 0)
	cfg.name = conf.String("statd", "name", "")
	cfg.stateDir = conf.String("statd", "state-directory-path", "/var/lib/nfs")
	cfg.callout = conf.String("statd", "ha-callout", "")
	cfg.noNotify = conf.Bool("statd", "no-notify", false)
	cfg.nlmTCP = conf.Int("lockd", "port", 0)
	cfg.nlmUDP = conf.Int("lockd", "udp-port", cfg.nlmTCP)
	if v, ok := lookupEnv("RPC_STATD_NO_NOTIFY"); ok && atoi(v) > 0 {
		cfg.noNotify = true
	}
	parsed, _, err := getopt.Parse(args[1:], options)
	if err != nil {
		// nfs-utils names the option, prints the usage and exits 0 (an
		// unknown option is '?', which is help); scripts may rely on it.
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		fmt.Fprintf(stdout, Usage, prog)
		return cfg, 0, true
	}
	var flagDB, flagDir string
	udpSet := false
	for _, p := range parsed {
		var perr error
		switch p.Key() {
		case "foreground":
			cfg.foreground = true
		case "no-syslog":
			cfg.debug = true
		case "help", "?":
			fmt.Fprintf(stdout, Usage, prog)
			return cfg, 0, true
		case "version", "V":
			fmt.Fprintf(stdout, "%s version nfsrecover %s\n", prog, version.Version)
			return cfg, 0, true
		case "port":
			cfg.port, perr = port(p.Arg)
		case "outgoing-port":
			cfg.outPort, perr = port(p.Arg)
		case "nlm-port":
			cfg.nlmTCP, perr = port(p.Arg)
			if !udpSet {
				cfg.nlmUDP = cfg.nlmTCP
			}
		case "nlm-udp-port":
			cfg.nlmUDP, perr = port(p.Arg)
			udpSet = true
		case "name":
			cfg.name = p.Arg
		case "state-directory-path":
			cfg.stateDir, flagDir = p.Arg, p.Arg
		case "notify-mode":
			cfg.notifyMode = true
		case "no-notify":
			cfg.noNotify = true
		case "ha-callout":
			cfg.callout = p.Arg
		case "db":
			flagDB = p.Arg
		case "pid-file":
			cfg.pidFile = p.Arg
		case "allow-ipv6-loopback":
			cfg.allowV6 = true
		case "nsm-state-file":
			cfg.stateFile = p.Arg
		}
		if perr != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, perr)
			fmt.Fprintf(stdout, Usage, prog)
			return cfg, 1, true
		}
	}
	if cfg.port != 0 && cfg.port == cfg.outPort {
		fmt.Fprintf(stderr, "%s: listening port and outgoing port cannot be the same\n", prog)
		return cfg, 1, true
	}
	if st, err := os.Lstat(cfg.stateDir); err != nil || !st.IsDir() || !filepath.IsAbs(cfg.stateDir) {
		fmt.Fprintf(stderr, "%s: state directory %q must be an existing absolute path\n", prog, cfg.stateDir)
		return cfg, 1, true
	}
	cfg.db, _ = store.Locate(store.Where{DB: flagDB, Dir: flagDir, ConfDir: conf.String("statd", "state-directory-path", "")}, lookupEnv, conf)
	cfg.cluster = cluster.Read(conf)
	if err := cfg.cluster.VIPsErr(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return cfg, 1, true
	}
	return cfg, 0, false
}

func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port number %q (1-65535)", s)
	}
	return n, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// runNotify runs this program as sm-notify and waits for it, as rpc.statd
// does before it loads its monitor list: with -d in the foreground (so
// statd waits until every peer answered or the deadline), else it returns
// once sm-notify has put itself in the background.
func runNotify(cfg config, log *slog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot run sm-notify", "err", err)
		return 1
	}
	args := []string{"--db", cfg.db}
	if cfg.stateDir != "/var/lib/nfs" {
		args = append(args, "-P", cfg.stateDir) // a non-default -P skips the once-per-boot guard, as in nfs-utils
	}
	if cfg.foreground {
		args = append(args, "-d")
	}
	if cfg.outPort != 0 {
		args = append(args, "-p", strconv.Itoa(cfg.outPort))
	}
	if cfg.name != "" {
		args = append(args, "-v", cfg.name)
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = nsm.NotifyName
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Warn("sm-notify did not notify every peer", "err", err)
		return 1
	}
	return 0
}
