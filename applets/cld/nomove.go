//go:build noetcd

package cld

import (
	"context"
	"io"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
)

func push(context.Context, io.Writer, *nfsconf.Config, string, bool) error {
	return cluster.ErrNotBuilt
}

func pull(context.Context, io.Writer, *nfsconf.Config, string, bool) error {
	return cluster.ErrNotBuilt
}
