package cltrack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/cltrack"
	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/legacy/v4recovery"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// manage runs "nfsrecover cltrack import|export ...".
func manage(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	dbFlag := &cli.StringFlag{Name: "db", Usage: store.PathHelp}
	dbPath := cliutil.DBPath(lookupEnv, conf, "")
	app := &cli.App{
		Name:           "nfsrecover cltrack",
		Usage:          "move NFSv4 client-tracking records between nfsdcltrack's formats and the nfsrecover database",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // we print and choose the status
		Commands: []*cli.Command{
			{
				Name:   "import",
				Before: cliutil.NoArgs,
				Usage:  "load records from nfsdcltrack's main.sqlite or a v4recovery directory (all or nothing)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Usage: "`PATH`: main.sqlite, its storage directory, or a v4recovery directory (default: nfs.conf [nfsdcltrack] storagedir, else /var/lib/nfs/nfsdcltrack)"},
					&cli.StringFlag{Name: "format", Value: "auto", Usage: "auto, sqlite or v4recovery"},
					&cli.BoolFlag{Name: "replace", Usage: "delete the database's existing client records first (default: merge; imported ids replace equal ids)"},
					dbFlag,
				},
				Action: func(c *cli.Context) error {
					from := c.String("from")
					if from == "" {
						from = conf.String("nfsdcltrack", "storagedir", "/var/lib/nfs/nfsdcltrack")
					}
					return importCmd(stdout, stderr, dbPath(c), from, c.String("format"), c.Bool("replace"))
				},
			},
			{
				Name:   "export",
				Before: cliutil.NoArgs,
				Usage:  "write the database's records as nfsdcltrack's main.sqlite or as a v4recovery directory",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Required: true, Usage: "`PATH`: a directory (main.sqlite is written inside it) or a file ending in .sqlite; for v4recovery, the directory"},
					&cli.StringFlag{Name: "format", Value: "sqlite", Usage: "sqlite or v4recovery"},
					&cli.BoolFlag{Name: "force", Usage: "replace an existing main.sqlite (atomically)"},
					&cli.BoolFlag{Name: "skip-hash-only", Usage: "sqlite: leave out hash-only (v4recovery) records, which main.sqlite cannot hold"},
					dbFlag,
				},
				Action: func(c *cli.Context) error {
					return exportCmd(stdout, dbPath(c), c.String("to"), c.String("format"), c.Bool("force"), c.Bool("skip-hash-only"))
				},
			},
		},
	}
	app.Commands = append(app.Commands, moveCommands(stdout, conf, dbFlag, dbPath)...)
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover cltrack"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover cltrack %s: %v\n", args[1], err)
		return 1
	}
	return 0
}

// sourceFormat decides what --from names when --format is auto.
func sourceFormat(from, format string) (string, string, error) {
	switch format {
	case "sqlite", "v4recovery":
	case "auto":
		st, err := os.Stat(from)
		if err != nil {
			return "", "", err
		}
		format = "v4recovery"
		if !st.IsDir() {
			format = "sqlite"
		} else if _, err := os.Stat(filepath.Join(from, cltracksql.FileName)); err == nil {
			format = "sqlite"
		}
	default:
		return "", "", fmt.Errorf("unknown --format %q (want auto, sqlite or v4recovery)", format)
	}
	if format == "sqlite" {
		if st, err := os.Stat(from); err == nil && st.IsDir() {
			from = filepath.Join(from, cltracksql.FileName)
		}
	}
	return from, format, nil
}

func importCmd(stdout, stderr io.Writer, dbPath, from, format string, replace bool) error {
	from, format, err := sourceFormat(from, format)
	if err != nil {
		return err
	}
	var clients []store.Client
	var hashes []string
	switch format {
	case "sqlite":
		snap, err := cltracksql.Read(from)
		if err != nil {
			return err
		}
		clients = snap.Clients
		fmt.Fprintf(stdout, "read %d clients from %s (nfsdcltrack schema %d)\n", len(clients), from, snap.Version)
	case "v4recovery":
		scan, err := v4recovery.Read(from)
		if err != nil {
			return err
		}
		if len(scan.Names) == 0 && len(scan.Skipped) > 0 {
			return fmt.Errorf("%s does not look like a v4recovery directory: none of its %d entries is a client directory (32 hex digits); nothing imported", from, len(scan.Skipped))
		}
		for _, s := range scan.Skipped {
			fmt.Fprintf(stderr, "skipped %s: %s\n", filepath.Join(from, s.Name), s.Reason)
		}
		hashes = scan.Names
		fmt.Fprintf(stdout, "read %d client directories from %s (%d entries skipped)\n", len(hashes), from, len(scan.Skipped))
	}
	db, err := store.Open(dbPath, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		if replace {
			if err := tx.DeleteAllClients(); err != nil {
				return err
			}
			if err := tx.DeleteAllHashes(); err != nil {
				return err
			}
		}
		for _, c := range clients {
			if err := tx.PutClient(c); err != nil {
				return fmt.Errorf("client %x: %w", c.ID, err)
			}
		}
		for _, h := range hashes {
			if err := tx.PutHash(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import into %s (nothing written): %w", dbPath, err)
	}
	fmt.Fprintf(stdout, "imported %d clients and %d hash-only records into %s\n", len(clients), len(hashes), dbPath)
	return nil
}

func exportCmd(stdout io.Writer, dbPath, to, format string, force, skipHashes bool) error {
	contents, err := store.DumpFile(dbPath)
	if err != nil {
		return err
	}
	switch format {
	case "sqlite":
		return exportSQLite(stdout, contents, to, force, skipHashes)
	case "v4recovery":
		names := slices.Clone(contents.Hashes)
		for _, c := range contents.Clients {
			names = append(names, cltrack.LegacyName(c.ID))
		}
		slices.Sort(names)
		names = slices.Compact(names)
		if err := v4recovery.Write(to, names); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d client directories to %s\n", len(names), to)
		return nil
	}
	return fmt.Errorf("unknown --format %q (want sqlite or v4recovery)", format)
}

func exportSQLite(stdout io.Writer, contents store.Contents, to string, force, skipHashes bool) error {
	if n := len(contents.Hashes); n > 0 && !skipHashes {
		return fmt.Errorf("%d hash-only records (from a v4recovery import) cannot be stored in main.sqlite; "+
			"export them with --format v4recovery, or pass --skip-hash-only", n)
	}
	path := to
	if !strings.HasSuffix(to, ".sqlite") {
		if err := os.Mkdir(to, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		path = filepath.Join(to, cltracksql.FileName)
	}
	if err := cltracksql.Write(path, contents.Clients, force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d clients to %s\n", len(contents.Clients), path)
	return nil
}
