// Package cliutil holds what the applets' urfave/cli commands share.
package cliutil

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// NoArgs is a command's Before for commands that take options only: an
// extra argument is an error that names it, never silently ignored.
func NoArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (it takes options only; see --help)", c.Command.Name, c.Args().First())
	}
	return nil
}
