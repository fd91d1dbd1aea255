//go:build noetcd

package cltrack

import (
	"nfsrecover/pkg/cltrack"
	"nfsrecover/pkg/cluster"
)

// etcdOpener refuses: this build has no etcd client.
func etcdOpener(config, bool) func() (cltrack.DB, error) {
	return func() (cltrack.DB, error) { return nil, cluster.ErrNotBuilt }
}
