//go:build noetcd

package cltrack

import (
	"io"

	"github.com/urfave/cli/v2"

	"nfsrecover/pkg/nfsconf"
)

// moveCommands: none in a build without etcd.
func moveCommands(io.Writer, *nfsconf.Config, cli.Flag, func(*cli.Context) string) []*cli.Command {
	return nil
}
