// Package cld is the nfsdcld applet: options, nfs.conf keys and process
// wiring around pkg/cld, plus the import and export commands.
package cld

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/getopt"
	"nfsrecover/pkg/legacy/cldsql"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// LinkName is the daemon's name as nfs-utils installs it, and the name
// its processes show.
const LinkName = "nfsdcld"

// DefaultPipefs is nfs-utils' rpc_pipefs mount point.
const DefaultPipefs = "/var/lib/nfs/rpc_pipefs"

// Exit statuses, nfsdcld's.
const (
	exitFatal    = 1   // L_FATAL: the pipe directory is missing, the database unusable
	exitEINVAL   = 234 // not root, or a database schema we do not know
	exitENOTDIR  = 236 // the storage directory is a file
	exitOK       = 0
	exitUsageErr = 0 // nfsdcld prints usage and exits 0 on a bad option
)

var options = []getopt.Option{
	{Short: 'h', Long: "help"},
	{Short: 'F', Long: "foreground"},
	{Short: 'd', Long: "debug"},
	{Short: 'p', Long: "pipefsdir", HasArg: true},
	{Short: 's', Long: "storagedir", HasArg: true},
	{Long: "db", HasArg: true},
}

// Usage is the help text; its first line is nfsdcld's.
const Usage = `Usage: %[1]s [ -hFd ] [ -p pipefsdir ] [ -s storagedir ]

nfsrecover's drop-in nfsdcld: answers the kernel's NFSv4 client-tracking
upcalls on <pipefsdir>/nfsd/cld from the nfsrecover database.

Options:
  -F, --foreground       stay in the foreground and log to stderr
  -d, --debug            log debug messages
  -p, --pipefsdir DIR    rpc_pipefs mount point (default ` + DefaultPipefs + `)
  -s, --storagedir DIR   use DIR/nfsrecover.db as the database
      --db PATH          use the database file PATH
  -h, --help             show this help

Database: --db, then -s DIR, then $NFSRECOVER_DB, then nfs.conf
[nfsrecover] db, then /var/lib/nfs/nfsrecover.db. The first start adopts
nfsdcld's own database (DIR/main.sqlite, else [nfsdcld] storagedir, else
/var/lib/nfs/nfsdcld/main.sqlite; read only) if there is one, and copies
nfsdcltrack's records (kept by the cltrack applet in the same database)
into the current epoch, as nfsdcld does.
nfs.conf: [nfsdcld] debug, [general] pipefs-directory; [nfsrecover] backend = etcd keeps
the records on etcd instead, for server scope v4-scope (default: the host name), with
etcd-endpoints and the other etcd-* settings.

Exit status: 0 stopped by SIGTERM or SIGINT, or bad option (as nfsdcld);
1 <pipefsdir>/nfsd missing or database unusable; 234 not root or unknown
database schema; 236 storage directory is not a directory.

Management (as "nfsrecover cld"):
  nfsrecover cld import --from DIR|FILE   nfsdcld or nfsdcltrack main.sqlite, v4recovery
  nfsrecover cld export --to DIR          nfsdcld main.sqlite (schema 4)
  nfsrecover cld push                     the database's state -> this node's scope on etcd
  nfsrecover cld pull                     this node's scope on etcd -> the database
`

type config struct {
	foreground, debug bool
	pipefs            string
	storageDir        string
	nfsdcldDB         string // nfsdcld's own main.sqlite, adopted at the first start
	dbPath, dbSource  string
	cluster           cluster.Config // backend = etcd: the records of cluster.V4Scope on etcd
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	prog := filepath.Base(args[0])
	if hoisted, ok := getopt.HoistVerb(args, "import", "export", "push", "pull"); ok && prog != LinkName {
		return manage(hoisted, stdout, stderr, lookupEnv)
	}
	cfg, done := configure(args, stdout, stderr, lookupEnv)
	if done {
		return exitUsageErr
	}
	opts := logging.Options{Tag: prog, Debug: cfg.debug}
	if cfg.foreground {
		opts.Writer = stderr
	}
	return run(cfg, args, logging.New(opts), lookupEnv)
}

// configure reads nfs.conf, then the command line, which wins. done
// means usage was printed (help or a bad option: nfsdcld exits 0).
func configure(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (cfg config, done bool) {
	prog := filepath.Base(args[0])
	conf := nfsconf.LoadEnv(lookupEnv)
	cfg.debug = conf.Int("nfsdcld", "debug", 0) > 0
	cfg.pipefs = conf.String("general", "pipefs-directory", DefaultPipefs)
	parsed, operands, err := getopt.Parse(args[1:], options)
	if err != nil || len(operands) > 0 {
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		}
		fmt.Fprintf(stdout, Usage, prog)
		return cfg, true
	}
	var flagDB string
	for _, p := range parsed {
		switch p.Key() {
		case "help":
			fmt.Fprintf(stdout, Usage, prog)
			return cfg, true
		case "foreground":
			cfg.foreground = true
		case "debug":
			cfg.debug = true
		case "pipefsdir":
			cfg.pipefs = p.Arg
		case "storagedir":
			cfg.storageDir = p.Arg
		case "db":
			flagDB = p.Arg
		}
	}
	cfg.dbPath, cfg.dbSource = store.Locate(store.Where{DB: flagDB, Dir: cfg.storageDir}, lookupEnv, conf)
	legacy := cfg.storageDir
	if legacy == "" {
		legacy = conf.String("nfsdcld", "storagedir", DefaultStorage)
	}
	cfg.nfsdcldDB = filepath.Join(legacy, cldsql.FileName)
	cfg.cluster = cluster.Read(conf)
	return cfg, false
}

// run checks everything that can fail before it detaches, so that a
// failed start shows in the starting command's exit status.
func run(cfg config, args []string, log *slog.Logger, lookupEnv func(string) (string, bool)) int {
	if os.Geteuid() != 0 {
		log.Error("must run as root")
		return exitEINVAL
	}
	if err := cfg.cluster.RecordsErr(); err != nil {
		log.Error("bad cluster settings", "err", err)
		return exitFatal
	}
	cfg.cluster.WarnUnused(log)
	if cfg.cluster.Backend == cluster.BackendEtcd {
		return runEtcd(cfg, args, log, lookupEnv)
	}
	if code := checkStorage(cfg, log); code != exitOK {
		return code
	}
	watch, err := cld.Watch(cfg.pipefs)
	if err != nil {
		log.Error("cannot watch for the pipe", "err", err)
		return exitFatal
	}
	defer watch.Close()
	// The background child finds the start-up done by its parent.
	kept, code := prepareDB(cfg, log, !daemon.IsChild(lookupEnv))
	if code != exitOK {
		return code
	}
	defer kept.Close()
	ready, code := detach(cfg, args, log, lookupEnv)
	if ready == nil {
		return code
	}
	return serveLocal(cfg, log, watch, kept, ready, lookupEnv)
}

// detach drops every capability and, unless in the foreground, goes to
// the background. A nil ready means return code now (the parent, or a
// failed start).
func detach(cfg config, args []string, log *slog.Logger, lookupEnv func(string) (string, bool)) (ready func(), code int) {
	if err := daemon.DropAllCapabilities(); err != nil {
		log.Warn("capabilities kept", "err", err)
	}
	ready, parent, err := daemon.Detach(cfg.foreground, LinkName, args, lookupEnv)
	switch {
	case err != nil:
		log.Error("cannot start in the background", "err", err)
		return nil, exitFatal
	case parent:
		return nil, exitOK
	}
	return ready, exitOK
}

// checkStorage refuses a storage directory that is a file (ENOTDIR).
func checkStorage(cfg config, log *slog.Logger) int {
	dir := filepath.Dir(cfg.dbPath)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		log.Error("storage directory is not a directory", "path", dir)
		return exitENOTDIR
	}
	return exitOK
}

// prepareDB opens the database, runs nfsdcld's start-up (adopting
// nfsdcld's database, first-time import of cltrack's records) when
// startup is set, and returns a descriptor kept open so the daemon can
// reopen the file for each commit after dropping its capabilities.
func prepareDB(cfg config, log *slog.Logger, startup bool) (*os.File, int) {
	db, err := store.Open(cfg.dbPath, nil)
	if err != nil {
		log.Error("cannot open the database", "path", cfg.dbPath, "from", cfg.dbSource, "err", err)
		return nil, dbExit(err)
	}
	defer db.Close()
	if startup {
		if code := startEpochs(db, cfg, log); code != exitOK {
			return nil, code
		}
	}
	f, err := os.OpenFile(cfg.dbPath, os.O_RDWR, 0)
	if err != nil {
		log.Error("cannot open the database", "path", cfg.dbPath, "err", err)
		return nil, exitFatal
	}
	return f, exitOK
}

// startEpochs adopts nfsdcld's database if there is one and runs
// nfsdcld's start-up on the epochs.
func startEpochs(db *store.DB, cfg config, log *slog.Logger) int {
	if code := adoptNfsdcld(db, cfg, log); code != exitOK {
		return code
	}
	var e store.Epochs
	var imported int
	err := db.Update(func(tx *store.Tx) error {
		var err error
		e, imported, err = tx.CldStartHashes(legacyTracking())
		return err
	})
	if err != nil {
		log.Error("cannot prepare the grace epochs", "path", cfg.dbPath, "err", err)
		return exitFatal
	}
	log.Info("database ready", "path", cfg.dbPath, "current_epoch", e.Current, "recovery_epoch", e.Recovery)
	if e.FirstTime {
		log.Info("copied nfsdcltrack's records into the current epoch", "records", imported)
	}
	return exitOK
}

// adoptNfsdcld imports nfsdcld's own database at our first start (no
// epochs yet), so a host that moves from nfsdcld keeps its clients. A
// database that cannot be read stops the start: starting empty would
// lose every client's right to reclaim.
func adoptNfsdcld(db *store.DB, cfg config, log *slog.Logger) int {
	var started bool
	if err := db.View(func(tx *store.Tx) (err error) { _, started, err = tx.CldEpochs(); return err }); err != nil || started {
		return exitOK
	}
	if _, err := os.Stat(cfg.nfsdcldDB); err != nil {
		return exitOK
	}
	snap, err := cldsql.Read(cfg.nfsdcldDB)
	if err != nil {
		log.Error("cannot adopt nfsdcld's database; import it with \"nfsrecover cld import\" or move it away", "path", cfg.nfsdcldDB, "err", err)
		return exitFatal
	}
	err = db.Update(func(tx *store.Tx) error { return tx.PutCldState(snap.Epochs, snap.Records) })
	if err != nil {
		log.Error("cannot adopt nfsdcld's database", "path", cfg.nfsdcldDB, "err", err)
		return exitFatal
	}
	log.Info("adopted nfsdcld's database (it is left as it was)", "path", cfg.nfsdcldDB,
		"current_epoch", snap.Epochs.Current, "recovery_epoch", snap.Epochs.Recovery)
	return exitOK
}

// legacyTracking reports whether the kernel still has legacy client
// tracking (CONFIG_NFSD_LEGACY_CLIENT_TRACKING): only then can imported
// "hash:" rows ever match. nfsv4recoverydir is absent or unreadable
// (EINVAL) without it.
func legacyTracking() bool {
	_, err := os.ReadFile("/proc/fs/nfsd/nfsv4recoverydir")
	return err == nil
}

func dbExit(err error) int {
	switch {
	case errors.Is(err, store.ErrSchemaTooNew):
		return exitEINVAL
	case errors.Is(err, syscall.ENOTDIR):
		return exitENOTDIR
	}
	return exitFatal
}

// serveLocal answers upcalls from the local database.
func serveLocal(cfg config, log *slog.Logger, watch *cld.DirOpener, kept *os.File, ready func(), lookupEnv func(string) (string, bool)) int {
	c := store.NewCommitter(func() (*store.DB, error) {
		return store.Open(cfg.dbPath, &store.Options{File: kept})
	})
	cctx, cstop := context.WithCancel(context.Background())
	defer cstop()
	go c.Run(cctx)
	recs := &cld.DBRecords{DB: c, Log: log}
	if daemon.KernelBefore(4, 20) {
		recs.EndGraceFile = "/proc/fs/nfsd/v4_end_grace" // no GraceStart from these kernels
		log.Info("kernel before 4.20: watching v4_end_grace for grace periods it does not announce")
	}
	return serve(log, watch, recs, ready, lookupEnv)
}

// serve answers upcalls from recs until SIGTERM or SIGINT; a second
// signal exits at once.
func serve(log *slog.Logger, watch *cld.DirOpener, recs cld.Records, ready func(), lookupEnv func(string) (string, bool)) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGTERM, syscall.SIGINT)
		<-again
		log.Warn("second signal: exiting at once")
		os.Exit(exitOK)
	}()
	daemon.SdNotify(lookupEnv, "READY=1")
	ready()
	log.Info("waiting for upcalls", "pipe", watch.Path())
	s := &cld.Server{Records: recs, Log: log}
	if err := s.Serve(ctx, watch); err != nil {
		log.Error("stopped", "err", err)
		return exitFatal
	}
	log.Info("exiting on signal")
	return exitOK
}
