package statd

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// manage runs "nfsrecover statd import|export ...".
func manage(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	dbFlag := &cli.StringFlag{Name: "db", Usage: store.PathHelp}
	dbPath := cliutil.DBPath(lookupEnv, conf, conf.String("statd", "state-directory-path", ""))
	defDir := conf.String("statd", "state-directory-path", "/var/lib/nfs")
	app := &cli.App{
		Name:           "nfsrecover statd",
		Usage:          "move statd's monitor list between nfs-utils' state directory and the nfsrecover database",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:   "import",
				Before: cliutil.NoArgs,
				Usage:  "load sm/ (monitor list), sm.bak/ (notify list) and state; all or nothing. Restart statd afterwards.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Value: defDir, Usage: "state `DIR`"},
					&cli.BoolFlag{Name: "replace", Usage: "delete the database's monitor and notify lists first (default: merge)"},
					dbFlag,
				},
				Action: func(c *cli.Context) error {
					return importDir(stdout, stderr, dbPath(c), c.String("from"), c.Bool("replace"))
				},
			},
			{
				Name:   "export",
				Before: cliutil.NoArgs,
				Usage:  "write sm/, sm.bak/ and state exactly as nfs-utils does, for rpc.statd and sm-notify",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Required: true, Usage: "state `DIR`"},
					&cli.BoolFlag{Name: "force", Usage: "replace non-empty sm/ and sm.bak/"},
					dbFlag,
				},
				Action: func(c *cli.Context) error { return exportDir(stdout, dbPath(c), c.String("to"), c.Bool("force")) },
			},
		},
	}
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover statd"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover statd %s: %v\n", args[1], err)
		return 1
	}
	return 0
}

func importDir(stdout, stderr io.Writer, dbPath, from string, replace bool) error {
	d, err := smdir.Read(from)
	if err != nil {
		return fmt.Errorf("%w (nothing written)", err)
	}
	for _, s := range d.Skipped {
		fmt.Fprintf(stderr, "skipped %s\n", s)
	}
	db, err := store.Open(dbPath, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		if replace {
			if err := tx.ClearMonitorLists(); err != nil {
				return err
			}
		}
		if err := tx.PutMonitorLists(d.Monitors, d.Notify); err != nil {
			return err
		}
		cur, ok, err := tx.NSMState()
		if err != nil || !d.HasState || ok && cur >= d.State {
			return err // the state number never goes backwards
		}
		return tx.PutNSMState(d.State)
	})
	if err != nil {
		return fmt.Errorf("import into %s (nothing written): %w", dbPath, err)
	}
	fmt.Fprintf(stdout, "imported %d monitors, %d peers to notify (state %d) from %s into %s\n", len(d.Monitors), len(d.Notify), d.State, from, dbPath)
	return nil
}

func exportDir(stdout io.Writer, dbPath, to string, force bool) error {
	c, err := store.DumpFile(dbPath)
	if err != nil {
		return err
	}
	db, err := store.Open(dbPath, &store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	var d smdir.Dir
	err = db.View(func(tx *store.Tx) (err error) { d.State, d.HasState, err = tx.NSMState(); return err })
	db.Close()
	if err != nil {
		return err
	}
	d.Monitors, d.Notify = c.Monitors, c.Notify
	if err := smdir.Write(to, d, force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d monitors, %d peers to notify (state %d) to %s\n", len(d.Monitors), len(d.Notify), d.State, to)
	return nil
}
