//go:build !noetcd

// Package grace is the "nfsrecover grace" applet: the cluster-wide grace
// database on etcd, with ganesha-rados-grace's commands, and the agent
// each knfsd head runs to take part in cluster grace. Semantics live in
// pkg/grace (the database) and pkg/cluster (etcd and the agent).
package grace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
	"nfsrecover/pkg/logging"
	"nfsrecover/pkg/nfsconf"
)

// Exit statuses.
const (
	ExitOK = 0
	// ExitRefused: the command does not apply (not a member, already a
	// member, a bad node id), or the command line or the etcd settings
	// are wrong.
	ExitRefused = 1
	// ExitUnavailable: etcd could not be reached, or a change was sent
	// but its outcome is unknown (run dump to see).
	ExitUnavailable = 2
)

const description = `The grace database is one record on etcd: the current epoch C, the recovery
epoch R (0: no cluster grace period) and, per member node, the flags N (needs
grace: it has clients that may reclaim) and E (enforces grace: it grants no
new state). Grace is lifted only when no member needs it; NEED outlives the
node's lease, so a crashed node keeps the cluster in grace until it comes
back or is removed.

etcd: --etcd-endpoints, else nfs.conf [nfsrecover] etcd-endpoints (and
etcd-prefix, etcd-cacert, etcd-cert, etcd-key, etcd-username,
etcd-password-file).

Exit status: 0 done; 1 refused (not a member, already a member, bad node id,
bad usage); 2 etcd unreachable, or the change's outcome unknown.`

// etcdFlags are accepted before the command and after it.
func etcdFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "etcd-endpoints", Usage: "etcd client `URLS`, comma-separated (default: nfs.conf)"},
		&cli.StringFlag{Name: "etcd-prefix", Usage: "key `PREFIX` of this cluster (default: nfs.conf, else " + cluster.DefaultPrefix + ")"},
		&cli.DurationFlag{Name: "timeout", Value: cluster.DefaultRequestTimeout, Usage: "give up on etcd after `D`"},
	}
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	status := ExitOK
	fail := func(code int, err error) error {
		status = code
		return err
	}
	app := &cli.App{
		Name:           "nfsrecover grace",
		Usage:          "show and change the cluster-wide grace period database on etcd (as ganesha-rados-grace)",
		UsageText:      "nfsrecover grace [options] COMMAND [NODEID ...]",
		Description:    description,
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Flags:          etcdFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fail(ExitRefused, fmt.Errorf("unknown command %q (see --help)", c.Args().First()))
			}
			return fail(ExitRefused, errors.New("a command is needed (see --help)"))
		},
	}
	app.Commands = append(app.Commands, dumpCommand(conf, stdout, fail))
	for _, gc := range grace.Commands {
		app.Commands = append(app.Commands, opCommand(gc, conf, fail))
	}
	app.Commands = append(app.Commands, agentCommand(conf, stderr, fail))
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover grace"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover grace: %v\n", err)
		if status == ExitOK {
			status = ExitRefused // a usage error from the parser
		}
	}
	return status
}

// connect dials etcd with the command line's settings over nfs.conf's.
func connect(c *cli.Context, conf *nfsconf.Config) (*cluster.Client, error) {
	cfg, err := cluster.FromNFSConf(conf)
	if err != nil {
		return nil, err
	}
	if cc := cliutil.SetIn(c, "etcd-endpoints"); cc != nil {
		cfg.Endpoints = cluster.SplitEndpoints(cc.String("etcd-endpoints"))
	}
	if cc := cliutil.SetIn(c, "etcd-prefix"); cc != nil {
		cfg.Prefix = cc.String("etcd-prefix")
	}
	if cc := cliutil.SetIn(c, "timeout"); cc != nil {
		cfg.RequestTimeout = cc.Duration("timeout")
		cfg.DialTimeout = min(cfg.RequestTimeout, cluster.DefaultDialTimeout)
	}
	return cluster.Dial(c.Context, cfg)
}

// exitFor maps an error to the exit status the help promises.
func exitFor(err error) int {
	if grace.Refused(err) || errors.Is(err, cluster.ErrNotMember) || errors.Is(err, cluster.ErrBadConfig) {
		return ExitRefused
	}
	return ExitUnavailable
}

func opCommand(gc grace.Command, conf *nfsconf.Config, fail func(int, error) error) *cli.Command {
	return &cli.Command{
		Name:      gc.Name,
		Usage:     gc.Summary,
		ArgsUsage: "NODEID ...",
		Flags:     etcdFlags(),
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if len(ids) == 0 {
				return fail(ExitRefused, fmt.Errorf("%s: %w", gc.Name, grace.ErrNoNodes))
			}
			cl, err := connect(c, conf)
			if err != nil {
				return fail(exitFor(err), err)
			}
			defer cl.Close()
			if _, err := cl.UpdateGrace(c.Context, gc.Op, ids); err != nil {
				return fail(exitFor(err), fmt.Errorf("%s: %w", gc.Name, err))
			}
			return nil
		},
	}
}

// report is "dump --json".
type report struct {
	Current  uint64             `json:"current"`
	Recovery uint64             `json:"recovery"`
	InGrace  bool               `json:"in_grace"`
	Nodes    []nodeReport       `json:"nodes"`
	Etcd     []cluster.Endpoint `json:"etcd"`
}

type nodeReport struct {
	ID        string `json:"id"`
	Need      bool   `json:"need"`
	Enforcing bool   `json:"enforcing"`
	Alive     bool   `json:"alive"`
}

func dumpCommand(conf *nfsconf.Config, stdout io.Writer, fail func(int, error) error) *cli.Command {
	return &cli.Command{
		Name:   "dump",
		Usage:  "print the epochs and every member's flags, as ganesha-rados-grace dump does",
		Before: cliutil.NoArgs,
		Flags:  append(etcdFlags(), &cli.BoolFlag{Name: "json", Usage: "also show liveness and etcd health, as JSON"}),
		Action: func(c *cli.Context) error {
			cl, err := connect(c, conf)
			if err != nil {
				return fail(exitFor(err), err)
			}
			defer cl.Close()
			db, _, err := cl.ReadGrace(c.Context)
			if err != nil {
				return fail(ExitUnavailable, err)
			}
			if !c.Bool("json") {
				return grace.Dump(stdout, db)
			}
			alive, err := cl.AliveNodes(c.Context)
			if err != nil {
				return fail(ExitUnavailable, err)
			}
			r := report{Current: db.Current, Recovery: db.Recovery, InGrace: db.InGrace(), Nodes: []nodeReport{}, Etcd: cl.Health(c.Context)}
			for _, id := range db.Members() {
				f := db.Nodes[id]
				r.Nodes = append(r.Nodes, nodeReport{ID: id, Need: f&grace.Need != 0, Enforcing: f&grace.Enforcing != 0, Alive: alive[id]})
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		},
	}
}

// DefaultGraceTime is the agent's kernel grace time: long enough for the
// whole cluster to finish reclaiming, since knfsd ends grace on its own
// when it passes; the agent ends it as soon as the cluster lifts.
const DefaultGraceTime = 10 * time.Minute

// graceTime is the agent's default --grace-time: the admin's nfs.conf
// [nfsd] grace-time (which rpc.nfsd writes too) if set.
func graceTime(conf *nfsconf.Config) time.Duration {
	if s := conf.Int("nfsd", "grace-time", 0); s > 0 {
		return time.Duration(s) * time.Second
	}
	return DefaultGraceTime
}

func agentCommand(conf *nfsconf.Config, stderr io.Writer, fail func(int, error) error) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "take part in cluster grace for this knfsd head until SIGTERM (start it with nfsd)",
		Description: `Records NEED and ENFORCING for --node (a new cluster epoch, or the one in
force), clears NEED after --need-for, and ends the local grace period (writes
Y to each --end-grace-file) only once no member needs grace. Holds the node's
liveness key on an etcd lease meanwhile. Runs in the foreground.`,
		Before: cliutil.NoArgs,
		Flags: append(etcdFlags(),
			&cli.StringFlag{Name: "node", Required: true, Usage: "this head's node `ID` (as added with grace add)"},
			&cli.DurationFlag{Name: "need-for", Value: 90 * time.Second, Usage: "how long this head's clients may reclaim; 0: until grace lift NODE"},
			&cli.StringSliceFlag{Name: "end-grace-file", Value: cli.NewStringSlice("/proc/fs/nfsd/v4_end_grace", "/proc/fs/lockd/nlm_end_grace"), Usage: "`FILE`s that end local grace when Y is written"},
			&cli.DurationFlag{Name: "lease-ttl", Value: 10 * time.Second, Usage: "liveness lease time to live"},
			&cli.DurationFlag{Name: "grace-time", Value: graceTime(conf), Usage: "set the kernel's grace time (nfsv4gracetime, nlm_grace_period) to `D` first, the longest grace lasts without the agent; 0 leaves it (default: nfs.conf [nfsd] grace-time, else 10m)"},
			&cli.StringSliceFlag{Name: "grace-time-file", Value: cli.NewStringSlice(cluster.DefaultGraceTimeFiles...), Usage: "`FILE`s that take the grace time"},
			&cli.BoolFlag{Name: "debug", Aliases: []string{"d"}, Usage: "log debug messages"},
		),
		Action: func(c *cli.Context) error {
			if d := c.Duration("grace-time"); d != 0 && (d < 10*time.Second || d > time.Hour) {
				return fail(ExitRefused, fmt.Errorf("--grace-time %s: nfsd takes 10s to 1h", d))
			}
			cl, err := connect(c, conf)
			if err != nil {
				return fail(exitFor(err), err)
			}
			defer cl.Close()
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			a := &cluster.Agent{
				Client: cl, Node: c.String("node"), NeedFor: c.Duration("need-for"),
				EndGrace: c.StringSlice("end-grace-file"), LeaseTTL: c.Duration("lease-ttl"),
				GraceTime: c.Duration("grace-time"), GraceTimeFiles: c.StringSlice("grace-time-file"),
				Log: logging.New(logging.Options{Tag: "nfsrecover-grace", Debug: c.Bool("debug"), Writer: stderr}),
			}
			if err := a.Run(ctx); err != nil {
				return fail(exitFor(err), err)
			}
			return nil
		},
	}
}
