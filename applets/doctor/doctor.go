// Package doctor is the doctor applet: flags and nfs.conf around
// pkg/doctor's checks of one host's recovery setup.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/doctor"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// Main is the applet entry point. Exit status: 0 healthy, 1 a problem,
// 2 a warning (and 1 for a bad command line).
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	status := 0
	app := &cli.App{
		Name:            "nfsrecover doctor",
		Usage:           "check this host's NFS recovery setup; every finding comes with its fix",
		UsageText:       "nfsrecover doctor [-P STATEDIR] [--db PATH] [--name NAME]... [--json]",
		Description:     "Exit status: 0 healthy, 1 a problem, 2 a warning.",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state-dir", Aliases: []string{"P"}, Value: conf.String("statd", "state-directory-path", "/var/lib/nfs"), Usage: "statd's state `DIR`"},
			&cli.StringFlag{Name: "db", Usage: store.PathHelp},
			&cli.StringSliceFlag{Name: "name", Usage: "a name or address sm-notify sends (-v, a VIP); repeat it (default: nfs.conf [sm-notify] outgoing-addr, [statd] name)"},
			&cli.StringFlag{Name: "rpcbind", Value: "127.0.0.1:111", Usage: "rpcbind's `HOST:PORT`"},
			&cli.StringFlag{Name: "pipefs", Value: conf.String("general", "pipefs-directory", "/var/lib/nfs/rpc_pipefs"), Usage: "rpc_pipefs mount point"},
			&cli.StringFlag{Name: "nsm-state-file", Value: "/proc/sys/fs/nfs/nsm_local_state", Usage: "the kernel's NSM state"},
			&cli.StringFlag{Name: "nfsd-dir", Value: "/proc/fs/nfsd", Usage: "nfsd's control file system"},
			&cli.BoolFlag{Name: "json", Usage: "print the findings as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			cc := cluster.Read(conf)
			h := doctor.Host{StateDir: c.String("state-dir"), Rpcbind: c.String("rpcbind"), Pipefs: c.String("pipefs"),
				NSMStateFile: c.String("nsm-state-file"), NfsdDir: c.String("nfsd-dir"), Names: names(c, conf, cc.FloatingIPs)}
			if h.Settings = cc.Err(); h.Settings == nil {
				view, err := cliutil.ClusterView(c.Context, conf)
				if err != nil {
					return err
				}
				h.Cluster = view
			}
			h.DB, _ = store.Locate(store.Where{DB: c.String("db"), Dir: dirIfSet(c), ConfDir: conf.String("statd", "state-directory-path", "")}, lookupEnv, conf)
			fs := doctor.Run(c.Context, h)
			status = doctor.Worst(fs)
			if c.Bool("json") {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(fs)
			}
			doctor.Print(stdout, fs)
			return nil
		},
	}
	if err := cliutil.Style(app).RunContext(context.Background(), append([]string{"nfsrecover doctor"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover doctor: %v\n", err)
		return 1
	}
	return status
}

func dirIfSet(c *cli.Context) string {
	if c.IsSet("state-dir") {
		return c.String("state-dir")
	}
	return ""
}

// names are the names to check for reverse DNS: given, else nfs.conf's
// and the floating IPs (sm-notify -v sends each).
func names(c *cli.Context, conf *nfsconf.Config, floating []string) []string {
	if n := c.StringSlice("name"); len(n) > 0 {
		return n
	}
	var out []string
	for _, k := range [][2]string{{"sm-notify", "outgoing-addr"}, {"statd", "name"}} {
		if v, ok := conf.Get(k[0], k[1]); ok && v != "" {
			out = append(out, v)
		}
	}
	return append(out, floating...)
}
