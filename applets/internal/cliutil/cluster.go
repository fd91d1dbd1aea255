//go:build !noetcd

package cliutil

import (
	"context"
	"time"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
)

// ClusterView gathers the cluster's view when nfs.conf names etcd
// endpoints; nil when it names none.
func ClusterView(ctx context.Context, conf *nfsconf.Config) (*cluster.View, error) {
	cc, err := cluster.FromNFSConf(conf)
	if err != nil {
		return nil, err
	}
	if len(cc.Endpoints) == 0 {
		return nil, nil
	}
	cc.RequestTimeout, cc.DialTimeout = 3*time.Second, 3*time.Second
	c, err := cluster.Dial(ctx, cc)
	if err != nil {
		return &cluster.View{Err: err.Error()}, nil
	}
	defer c.Close()
	v := c.Gather(ctx)
	return &v, nil
}
