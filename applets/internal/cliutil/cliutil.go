// Package cliutil holds what the applets' urfave/cli commands share.
package cliutil

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// NoArgs is a command's Before for commands that take options only: an
// extra argument is an error that names it, never silently ignored.
func NoArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (it takes options only; see --help)", c.Command.Name, c.Args().First())
	}
	return nil
}

// The help layout every applet uses, as the getopt-based ones print it:
// "Usage:", what it does, then "Commands:" and "Options:" indented by two.
const (
	appHelp = `Usage: {{if .UsageText}}{{.UsageText}}{{else}}{{.HelpName}}{{if .VisibleFlags}} [options]{{end}}{{if .Commands}} COMMAND [options]{{end}}{{end}}

{{.Usage}}
{{- if .Description}}

{{.Description}}{{end}}
{{- if .VisibleCommands}}

Commands:
{{range .VisibleCommands}}  {{join .Names ", "}}{{"\t"}}{{.Usage}}
{{end}}{{end}}
{{- if .VisibleFlags}}

Options:
{{range .VisibleFlags}}  {{.}}
{{end}}{{end}}`
	commandHelp = `Usage: {{.HelpName}}{{if .VisibleFlags}} [options]{{end}}{{if .ArgsUsage}} {{.ArgsUsage}}{{end}}

{{.Usage}}
{{- if .Description}}

{{.Description}}{{end}}
{{- if .VisibleFlags}}

Options:
{{range .VisibleFlags}}  {{.}}
{{end}}{{end}}`
)

// Style gives an app and all its commands the shared help layout and
// hides urfave's "help" command (--help works everywhere).
func Style(app *cli.App) *cli.App {
	app.CustomAppHelpTemplate = appHelp
	app.HideHelpCommand = true
	for _, c := range app.Commands {
		c.CustomHelpTemplate = commandHelp
	}
	return app
}

// SetIn returns the context, the command's or one it was called under,
// where the flag name was given, or nil: options may stand before or after
// a command, and a command's own default must not hide a value given
// before it.
func SetIn(c *cli.Context, name string) *cli.Context {
	for _, cc := range c.Lineage() {
		if cc.IsSet(name) {
			return cc
		}
	}
	return nil
}

// DBPath returns how a command finds the database: --db given after the
// command or before it, else store.Locate's rule (confDir is the state
// directory nfs.conf gives, if the applet has one).
func DBPath(lookupEnv func(string) (string, bool), conf *nfsconf.Config, confDir string) func(*cli.Context) string {
	return func(c *cli.Context) string {
		var flag string
		if cc := SetIn(c, "db"); cc != nil {
			flag = cc.String("db")
		}
		p, _ := store.Locate(store.Where{DB: flag, ConfDir: confDir}, lookupEnv, conf)
		return p
	}
}

// PushPull are the "push" and "pull" commands that move an applet's
// records between the database (dbFlag) and etcd; --force replaces what
// the target already holds.
func PushPull(pushUsage, pullUsage string, dbFlag cli.Flag, push, pull func(c *cli.Context, force bool) error) []*cli.Command {
	move := func(name, usage string, do func(*cli.Context, bool) error) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, Before: NoArgs,
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "replace what the target already holds"}, dbFlag},
			Action: func(c *cli.Context) error { return do(c, c.Bool("force")) }}
	}
	return []*cli.Command{move("push", pushUsage, push), move("pull", pullUsage, pull)}
}
