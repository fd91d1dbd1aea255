package cld

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/legacy/cldsql"
	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/legacy/v4recovery"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// DefaultStorage is nfsdcld's storage directory.
const DefaultStorage = "/var/lib/nfs/nfsdcld"

// manage runs "nfsrecover cld import|export ...".
func manage(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	dbFlag := &cli.StringFlag{Name: "db", Usage: store.PathHelp}
	dbPath := cliutil.DBPath(lookupEnv, conf, "")
	app := &cli.App{
		Name:           "nfsrecover cld",
		Usage:          "move nfsdcld's client records and grace epochs between its main.sqlite and the nfsrecover database",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:   "import",
				Before: cliutil.NoArgs,
				Usage:  "load nfsdcld's main.sqlite (schema 3 or 4), or nfsdcltrack's main.sqlite or a v4recovery directory into the current epoch; all or nothing, the source is only read",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", Usage: "`PATH`: main.sqlite, its storage directory, or a v4recovery directory (default: nfs.conf [nfsdcld] storagedir, else " + DefaultStorage + ")"},
					&cli.StringFlag{Name: "format", Value: "auto", Usage: "auto, nfsdcld, nfsdcltrack or v4recovery"},
					dbFlag,
				},
				Action: func(c *cli.Context) error {
					from := c.String("from")
					if from == "" {
						from = conf.String("nfsdcld", "storagedir", DefaultStorage)
					}
					return importCmd(stdout, stderr, dbPath(c), from, c.String("format"))
				},
			},
			{
				Name:   "export",
				Before: cliutil.NoArgs,
				Usage:  "write the grace epochs and their clients as nfsdcld's main.sqlite (schema 4)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Required: true, Usage: "`PATH`: a directory (main.sqlite is written inside it) or a file ending in .sqlite"},
					&cli.BoolFlag{Name: "force", Usage: "replace an existing main.sqlite (atomically)"},
					dbFlag,
				},
				Action: func(c *cli.Context) error {
					return exportCmd(stdout, dbPath(c), c.String("to"), c.Bool("force"))
				},
			},
		},
	}
	app.Commands = append(app.Commands, moveCommands(stdout, conf, dbFlag, dbPath)...)
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover cld"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover cld %s: %v\n", args[1], err)
		return 1
	}
	return 0
}

// source is what an import reads, decided from --from and --format.
type source struct {
	path, format string
}

func findSource(from, format string) (source, error) {
	st, err := os.Stat(from)
	if err != nil {
		return source{}, err
	}
	sqlitePath := from
	if st.IsDir() {
		sqlitePath = filepath.Join(from, cldsql.FileName)
	}
	switch format {
	case "nfsdcld", "nfsdcltrack":
		return source{sqlitePath, format}, nil
	case "v4recovery":
		return source{from, format}, nil
	case "auto":
		if _, err := os.Stat(sqlitePath); err != nil {
			return source{from, "v4recovery"}, nil
		}
		return source{sqlitePath, "auto"}, nil
	}
	return source{}, fmt.Errorf("unknown --format %q (want auto, nfsdcld, nfsdcltrack or v4recovery)", format)
}

func importCmd(stdout, stderr io.Writer, dbPath, from, format string) error {
	src, err := findSource(from, format)
	if err != nil {
		return err
	}
	if src.format == "nfsdcld" || src.format == "auto" {
		snap, err := cldsql.Read(src.path)
		if err == nil {
			return importCld(stdout, dbPath, src.path, snap)
		}
		if src.format == "nfsdcld" || !errors.Is(err, cldsql.ErrNotCld) {
			return err
		}
		src.format = "nfsdcltrack"
	}
	recs, err := readLegacy(stdout, stderr, src)
	if err != nil {
		return err
	}
	return importCurrent(stdout, dbPath, recs)
}

// readLegacy reads nfsdcltrack's records as nfsdcld's first start does.
func readLegacy(stdout, stderr io.Writer, src source) ([]store.CldRecord, error) {
	var recs []store.CldRecord
	if src.format == "nfsdcltrack" {
		snap, err := cltracksql.Read(src.path)
		if err != nil {
			return nil, err
		}
		for _, c := range snap.Clients {
			recs = append(recs, store.CldRecord{ID: c.ID})
		}
		fmt.Fprintf(stdout, "read %d clients from %s (nfsdcltrack schema %d)\n", len(recs), src.path, snap.Version)
		return recs, nil
	}
	scan, err := v4recovery.Read(src.path)
	if err != nil {
		return nil, err
	}
	if len(scan.Names) == 0 && len(scan.Skipped) > 0 {
		return nil, fmt.Errorf("%s does not look like a v4recovery directory: none of its %d entries is a client directory (32 hex digits); nothing imported", src.path, len(scan.Skipped))
	}
	for _, s := range scan.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", filepath.Join(src.path, s.Name), s.Reason)
	}
	for _, n := range scan.Names {
		recs = append(recs, store.CldRecord{ID: append([]byte("hash:"+n), 0)})
	}
	fmt.Fprintf(stdout, "read %d client directories from %s\n", len(recs), src.path)
	return recs, nil
}

func importCld(stdout io.Writer, dbPath, from string, snap cldsql.Snapshot) error {
	for _, t := range snap.Stale {
		fmt.Fprintf(stdout, "ignored table %q: its epoch is neither current nor recovery (nfsdcld never reads it)\n", t)
	}
	fmt.Fprintf(stdout, "read %s (nfsdcld schema %d): current epoch %d (%d clients), recovery epoch %d (%d clients)\n",
		from, snap.Version, snap.Epochs.Current, len(snap.Records[snap.Epochs.Current]),
		snap.Epochs.Recovery, len(snap.Records[snap.Epochs.Recovery]))
	err := update(dbPath, func(tx *store.Tx) error { return tx.PutCldState(snap.Epochs, snap.Records) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported into %s\n", dbPath)
	return nil
}

// importCurrent replaces the current epoch's clients, as nfsdcld's
// one-time import of nfsdcltrack's records does.
func importCurrent(stdout io.Writer, dbPath string, recs []store.CldRecord) error {
	var e store.Epochs
	err := update(dbPath, func(tx *store.Tx) error {
		var err error
		if e, _, err = tx.CldStart(); err != nil {
			return err
		}
		return tx.ReplaceCldEpoch(e.Current, recs)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d clients into the current epoch (%d) of %s\n", len(recs), e.Current, dbPath)
	return nil
}

func update(dbPath string, fn func(*store.Tx) error) error {
	db, err := store.Open(dbPath, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		return fmt.Errorf("import into %s (nothing written): %w", dbPath, err)
	}
	return nil
}

func exportCmd(stdout io.Writer, dbPath, to string, force bool) error {
	contents, err := store.DumpFile(dbPath)
	if err != nil {
		return err
	}
	if contents.Cld == nil {
		return fmt.Errorf("%s has no nfsdcld state: the cld applet never ran on it (nothing written)", dbPath)
	}
	path := to
	if !strings.HasSuffix(to, ".sqlite") {
		if err := os.Mkdir(to, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		path = filepath.Join(to, cldsql.FileName)
	}
	snap := cldsql.Snapshot{Version: 4, Epochs: contents.Cld.Epochs, Records: contents.Cld.Records}
	if err := cldsql.Write(path, snap, force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote current epoch %d (%d clients) and recovery epoch %d (%d clients) to %s\n",
		snap.Epochs.Current, len(snap.Records[snap.Epochs.Current]), snap.Epochs.Recovery, len(snap.Records[snap.Epochs.Recovery]), path)
	return nil
}
