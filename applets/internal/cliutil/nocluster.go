//go:build noetcd

package cliutil

import (
	"context"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
)

// ClusterView says, when nfs.conf names etcd endpoints, that this build
// cannot read them.
func ClusterView(_ context.Context, conf *nfsconf.Config) (*cluster.View, error) {
	if _, ok := conf.Get("nfsrecover", "etcd-endpoints"); !ok {
		return nil, nil
	}
	return &cluster.View{Err: cluster.ErrNotBuilt.Error()}, nil
}
