// Package stablerestart is the "nfsrecover stablerestart" applet: inspect,
// verify, repair, compact, import and export FreeBSD's nfs-stablerestart
// file. The format and the kernel's rules live in pkg/stablerestart.
package stablerestart

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/nfsconf"
	sr "nfsrecover/pkg/stablerestart"
	"nfsrecover/pkg/store"
)

// Defaults, as hard-coded in FreeBSD's nfsd.
const (
	DefaultFile    = "/var/db/nfs-stablerestart"
	DefaultPidfile = "/var/run/nfsd.pid"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1 // error, or verify: the kernel rejects the file
	exitDanger   = 2 // verify: accepted, but dangerous or odd content
	exitRefused  = 3 // a write refused because nfsd is running
	exitNotFound = 4 // import/export: nothing stored under that name
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func exitf(code int, format string, args ...any) error {
	return &exitError{code, fmt.Errorf(format, args...)}
}

// env is what every command needs.
type env struct {
	stdout io.Writer
	file   string
	bak    string
	arch   string
	db     string
	pidf   string
	force  bool
	now    time.Time
	// running reports a live nfsd; tests replace it.
	running func(pidfile string) (bool, error)
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return run(args, stdout, stderr, lookupEnv, nfsdRunning)
}

func nfsdRunning(pidfile string) (bool, error) {
	if alive, err := daemon.PidfileAlive(pidfile); alive || err != nil {
		return alive, err
	}
	return daemon.ProcessRunning("nfsd")
}

func run(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool), running func(string) (bool, error)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	e := &env{stdout: stdout, now: time.Now(), running: running}
	common := []cli.Flag{
		&cli.StringFlag{Name: "file", Value: DefaultFile, Usage: "the live stable restart `FILE`", Destination: &e.file},
		&cli.StringFlag{Name: "bak", Usage: "the backup (default: FILE.bak)", Destination: &e.bak},
		&cli.StringFlag{Name: "arch", Value: "auto", Usage: "layout: auto, amd64, arm64, riscv64, armv7, powerpc64, powerpc64le, powerpc or i386 (4-byte time_t)", Destination: &e.arch},
	}
	writeFlags := []cli.Flag{
		&cli.BoolFlag{Name: "force", Usage: "write even if nfsd seems to be running (the kernel keeps the old file open)", Destination: &e.force},
		&cli.StringFlag{Name: "nfsd-pidfile", Value: DefaultPidfile, Usage: "pid file that marks a running nfsd", Destination: &e.pidf},
	}
	dbFlag := &cli.StringFlag{Name: "db", Usage: store.PathHelp, Destination: &e.db}
	var bakGiven bool
	locate := func(c *cli.Context) error {
		bakGiven = e.bak != ""
		return nil
	}
	// cmd gives a command the same options after the verb as before it,
	// an optional positional FILE, and refuses extra arguments.
	cmd := func(name, usage string, needFile bool, flags []cli.Flag, act func(*cli.Context) error) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, ArgsUsage: "[FILE]", Flags: append(flags, sameFlags()...),
			Action: func(c *cli.Context) error {
				if err := e.takeArgs(c, &bakGiven, needFile); err != nil {
					return err
				}
				e.db, _ = store.Locate(store.Where{DB: e.db}, lookupEnv, conf)
				return act(c)
			}}
	}
	app := &cli.App{
		Name:           "nfsrecover stablerestart",
		Usage:          "inspect, verify and repair FreeBSD's NFSv4 stable restart file (" + DefaultFile + ")",
		Description:    "Exit status: 0 ok; 1 error (verify: the kernel rejects the file); 2 verify: accepted but dangerous or odd;\n3 write refused because nfsd runs; 4 nothing stored in the database under that name.",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Before:         locate,
		Flags:          append(append([]cli.Flag{}, common...), dbFlag),
		Commands: []*cli.Command{
			cmd("inspect", "show the header, boot times, records and each client's verdict at next boot", true,
				[]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
				func(c *cli.Context) error { return e.inspect(c.Bool("json")) }),
			cmd("verify", "apply the kernel's acceptance rules; exit 0 accepted, 1 rejected, 2 dangerous or odd", true, nil,
				func(*cli.Context) error { return e.verify() }),
			cmd("repair", "restore the live file from a valid .bak, or keep its longest valid prefix (a missing file is fine: nfsd creates it)", false,
				append([]cli.Flag{
					&cli.BoolFlag{Name: "if-needed", Usage: "quiet unless something is repaired (rc.d nfsd_prestart hook)"},
					&cli.BoolFlag{Name: "dry-run", Usage: "say what would be done, change nothing"},
				}, writeFlags...),
				func(c *cli.Context) error { return e.repair(c.Bool("if-needed"), c.Bool("dry-run")) }),
			cmd("compact", "rewrite with one NEWSTATE record per client that may reclaim (as at the end of grace)", true,
				append([]cli.Flag{&cli.BoolFlag{Name: "dry-run", Usage: "print the result's summary, change nothing"}}, writeFlags...),
				func(c *cli.Context) error { return e.compact(c.Bool("dry-run")) }),
			cmd("import", "store the file (or, with --json, an edited JSON document) in the database", true,
				[]cli.Flag{&cli.StringFlag{Name: "json", Usage: "read this JSON `DOCUMENT` (as written by export --json) instead of the file"}},
				func(c *cli.Context) error { return e.importCmd(c.String("json")) }),
			cmd("export", "write the stored file back, byte for byte (or as JSON with --json)", false,
				append([]cli.Flag{
					&cli.StringFlag{Name: "to", Usage: "write here instead of --file (\"-\" with --json: stdout)"},
					&cli.BoolFlag{Name: "json", Usage: "write the editable JSON document"},
				}, writeFlags...),
				func(c *cli.Context) error { return e.export(c.String("to"), c.Bool("json")) }),
		},
	}
	err := cliutil.Style(app).Run(append([]string{"nfsrecover stablerestart"}, args[1:]...))
	if err == nil {
		return exitOK
	}
	var x *exitError
	if errors.As(err, &x) {
		if x.err.Error() != "" {
			fmt.Fprintf(stderr, "nfsrecover stablerestart: %v\n", x.err)
		}
		return x.code
	}
	fmt.Fprintf(stderr, "nfsrecover stablerestart: %v\n", err)
	return exitFailed
}

// sameFlags are the options every command also takes after the verb. They
// have no defaults or destinations of their own, so that one given before
// the verb is not reset; takeArgs copies those given after it.
func sameFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "file", Usage: "the live stable restart `FILE` (default " + DefaultFile + ")"},
		&cli.StringFlag{Name: "bak", Usage: "the backup (default: FILE.bak)"},
		&cli.StringFlag{Name: "arch", Usage: "layout (default auto)"},
		&cli.StringFlag{Name: "db", Usage: store.PathHelp},
	}
}

// takeArgs applies the options given after the verb and the positional
// FILE, refuses extra arguments, and, where the command reads the file,
// a missing one.
func (e *env) takeArgs(c *cli.Context, bakGiven *bool, needFile bool) error {
	for name, dst := range map[string]*string{"file": &e.file, "bak": &e.bak, "arch": &e.arch, "db": &e.db} {
		if c.IsSet(name) {
			*dst = c.String(name)
		}
	}
	if c.IsSet("bak") {
		*bakGiven = true
	}
	switch c.NArg() {
	case 0:
	case 1:
		if c.IsSet("file") {
			return &exitError{exitFailed, fmt.Errorf("%s: give the file once, as --file or as FILE", c.Command.Name)}
		}
		e.file = c.Args().First()
	default:
		return &exitError{exitFailed, fmt.Errorf("%s: unexpected argument %q (usage: %s [options] [FILE])", c.Command.Name, c.Args().Get(1), c.Command.Name)}
	}
	if !*bakGiven {
		e.bak = e.file + ".bak"
	}
	if c.Command.Name == "import" && c.IsSet("json") {
		needFile = false // the document is read instead
	}
	if _, err := os.Stat(e.file); needFile && errors.Is(err, os.ErrNotExist) {
		return &exitError{exitFailed, fmt.Errorf("%s: no such file", e.file)}
	}
	return nil
}

// layout picks the layout for data: --arch, or autodetection.
func (e *env) layout(data []byte) (sr.Layout, string, error) {
	if e.arch != "auto" {
		l, err := sr.Arch(e.arch)
		return l, "", err
	}
	d := sr.Detect(data)
	return d.Layout, d.Ambiguous, nil
}

// read loads and decodes a file; a missing file reads as empty, as nfsd
// creates it.
func (e *env) read(path string) (*sr.File, []byte, string, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, "", err
	}
	l, ambiguous, err := e.layout(data)
	if err != nil {
		return nil, nil, "", err
	}
	return sr.Decode(data, l), data, ambiguous, nil
}

// guardWrite refuses to replace files under a running nfsd.
func (e *env) guardWrite() error {
	if e.force {
		return nil
	}
	running, err := e.running(e.pidf)
	if err != nil {
		return exitf(exitRefused, "%v; refusing to write (use --force if nfsd is stopped)", err)
	}
	if running {
		return exitf(exitRefused, "nfsd is running: it holds the stable restart file open and would keep writing to the old one; stop nfsd or use --force")
	}
	return nil
}

// install atomically replaces path with data (mode 0600, fsync, rename).
func install(path string, data []byte) error {
	return fileutil.WriteAtomic(path, true, 0o600, func(tmp string) error {
		return os.WriteFile(tmp, data, 0o600)
	})
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
