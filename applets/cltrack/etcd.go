//go:build !noetcd

package cltrack

import (
	"context"
	"errors"

	"nfsrecover/pkg/cltrack"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
)

// etcdOpener opens the records of this node's server scope on etcd
// ([nfsrecover] backend = etcd). etcd must answer, or the command fails
// as with an unusable database (init: EACCES, so the kernel falls back).
func etcdOpener(cfg config, dropCaps bool) func() (cltrack.DB, error) {
	return func() (cltrack.DB, error) {
		c, err := cluster.Dial(context.Background(), cfg.cluster)
		if err != nil {
			return nil, err
		}
		r := &cluster.CltrackRecords{Client: c, Scope: cfg.cluster.V4Scope, CloseClient: true}
		if err := r.Ping(); err != nil {
			r.Close()
			return nil, err
		}
		if dropCaps {
			if err := daemon.DropAllCapabilities(); err != nil && !errors.Is(err, daemon.ErrCapsUnsupported) {
				r.Close()
				return nil, err
			}
		}
		return r, nil
	}
}
