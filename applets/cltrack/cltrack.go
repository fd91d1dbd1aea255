// Package cltrack is the nfsdcltrack applet: the kernel's NFSv4
// client-tracking upcall (nfsdcltrack [-d] [-f] [-s dir] cmd [arg]) and
// the import/export management commands. Semantics live in pkg/cltrack.
package cltrack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"nfsrecover/pkg/cltrack"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/getopt"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// LegacyName is the name the kernel execs (basename of cltrack_prog).
const LegacyName = "nfsdcltrack"

// EnvNFSConf names an alternative nfs.conf (tests, chroots); the kernel
// passes no environment, so in production /etc/nfs.conf is read.
const EnvNFSConf = nfsconf.EnvPath

var options = []getopt.Option{
	{Short: 'h', Long: "help"},
	{Short: 'd', Long: "debug"},
	{Short: 'f', Long: "foreground"},
	{Short: 's', Long: "storagedir", HasArg: true},
	{Long: "db", HasArg: true},
	{Long: "compat"},
	{Long: "end-grace-file", HasArg: true},
}

// Usage is the help text. Its first six lines are nfsdcltrack's own.
const Usage = `Usage: %[1]s [ -hfd ] [ -s dir ] < cmd > < arg >
Where < cmd > is one of the following and takes the following < arg >:
    init
    create <nfs_client_id4>
    remove <nfs_client_id4>
    check  <nfs_client_id4>
    gracedone <epoch time>

nfsrecover's drop-in nfsdcltrack. The kernel runs it for every NFSv4
client-tracking event; records live in the nfsrecover database.

Options:
  -d, --debug            log debug messages
  -f, --foreground       log to stderr instead of syslog
  -s, --storagedir DIR   use DIR/nfsrecover.db as the database
      --db PATH          use the database file PATH
      --compat           reproduce nfsdcltrack's bugs exactly (see below)
      --end-grace-file F write "Y" to F, not /proc/fs/nfsd/v4_end_grace,
                         when grace can end early (for tests)
  -h, --help             show this help

Database: --db, then -s DIR, then $NFSRECOVER_DB, then nfs.conf
[nfsrecover] db, then /var/lib/nfs/nfsrecover.db.
nfs.conf: [nfsdcltrack] debug, [nfsrecover] db, [nfsrecover] cltrack-compat;
[nfsrecover] backend = etcd keeps the records on etcd for server scope v4-scope.

Exit status: 0 success; 255 check: client may not reclaim; 243 init: no
database; 234 bad hex id, missing command or argument, bad or negative
gracedone time, unknown database schema; 151 id over 1024 bytes; 218
unknown command; 222 gracedone time out of range; 135 database write
failed; 26 not a database; 240 database busy for 10 s; 1 bad option.

Fixed nfsdcltrack bugs (old behaviour with --compat or cltrack-compat=y):
  gracedone -- -1 (a negative time) deleted every record: now refused (234).
  A check that took a client over from its legacy v4recovery directory
  failed (255) when that directory could not be removed: now succeeds.

Management (as "nfsrecover cltrack"):
  nfsrecover cltrack import --from DIR|FILE   nfsdcltrack main.sqlite or v4recovery
  nfsrecover cltrack export --to DIR          main.sqlite (or --format v4recovery)
  nfsrecover cltrack push                     the database's records -> this node's scope on etcd
  nfsrecover cltrack pull                     this node's scope on etcd -> the database
`

// config is everything one invocation decided from flags, env and nfs.conf.
type config struct {
	debug, foreground, compat bool
	dbPath, dbSource          string
	endGrace                  string
	help                      bool
	operands                  []string
	log                       *slog.Logger
	cluster                   cluster.Config // backend = etcd: the records of cluster.V4Scope on etcd
}

// Main is the applet entry point used by the applet table: unlike run in
// tests, it drops all capabilities once the database is open.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return run(args, stdout, stderr, lookupEnv, true)
}

func run(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool), dropCaps bool) int {
	prog := filepath.Base(args[0])
	if hoisted, ok := getopt.HoistVerb(args, "import", "export", "push", "pull"); ok && prog != LegacyName {
		return manage(hoisted, stdout, stderr, lookupEnv)
	}
	cfg, err := configure(args, stderr, lookupEnv)
	if err != nil || cfg.help {
		fmt.Fprintf(stdout, Usage, prog)
		if cfg.help && prog != LegacyName {
			return 0
		}
		return 1 // nfsdcltrack: -h and bad options both exit 1
	}
	t := &cltrack.Tracker{
		Open:         opener(cfg, dropCaps),
		StorageDir:   filepath.Dir(cfg.dbPath),
		Env:          cltrack.EnvFrom(lookupEnv),
		EndGraceFile: cfg.endGrace,
		Compat:       cfg.compat,
		Log:          cfg.log,
	}
	err = t.Run(cfg.operands)
	status := cltrack.ExitStatus(err)
	if err != nil && !(len(cfg.operands) > 0 && cfg.operands[0] == "check" && status == 255) {
		cfg.log.Error("command failed", "args", strings.Join(cfg.operands, " "), "err", err)
	}
	return status
}

// configure reads nfs.conf, then the command line, which wins.
func configure(args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) (config, error) {
	var cfg config
	conf := nfsconf.LoadEnv(lookupEnv)
	cfg.debug = conf.Int("nfsdcltrack", "debug", 0) > 0
	cfg.compat = conf.Bool("nfsrecover", "cltrack-compat", false)
	parsed, operands, err := getopt.Parse(args[1:], options)
	var flagDB, flagStorage string
	for _, p := range parsed {
		switch p.Key() {
		case "help":
			cfg.help = true
		case "debug":
			cfg.debug = true
		case "foreground":
			cfg.foreground = true
		case "storagedir":
			flagStorage = p.Arg
		case "db":
			flagDB = p.Arg
		case "compat":
			cfg.compat = true
		case "end-grace-file":
			cfg.endGrace = p.Arg
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", filepath.Base(args[0]), err)
		return cfg, err
	}
	cfg.operands = operands
	cfg.dbPath, cfg.dbSource = store.Locate(store.Where{DB: flagDB, Dir: flagStorage}, lookupEnv, conf)
	cfg.cluster = cluster.Read(conf)
	if err := cfg.cluster.RecordsErr(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", filepath.Base(args[0]), err)
		return cfg, err
	}
	opts := logging.Options{Tag: filepath.Base(args[0]), Debug: cfg.debug}
	if cfg.foreground {
		opts.Writer = stderr
	}
	cfg.log = logging.New(opts)
	for _, w := range conf.Warnings() {
		cfg.log.Warn(w.String())
	}
	cfg.cluster.WarnUnused(cfg.log)
	cfg.log.Debug("configuration", "nfs.conf", conf.Files(), "db", cfg.dbPath, "db_from", cfg.dbSource)
	return cfg, nil
}

// opener opens the store for one command and then, in production, drops
// every capability, as nfsdcltrack does. Opening first lets the database
// file belong to the statd user (see pkg/store's locking rule).
func opener(cfg config, dropCaps bool) func() (cltrack.DB, error) {
	if cfg.cluster.Backend == cluster.BackendEtcd {
		return etcdOpener(cfg, dropCaps)
	}
	return func() (cltrack.DB, error) {
		db, err := store.Open(cfg.dbPath, nil)
		if err != nil {
			return nil, err
		}
		if dropCaps {
			if err := daemon.DropAllCapabilities(); errors.Is(err, daemon.ErrCapsUnsupported) {
				cfg.log.Warn("capabilities kept", "err", err)
			} else if err != nil {
				db.Close()
				return nil, err
			}
		}
		return cltrack.FromStore(db), nil
	}
}
