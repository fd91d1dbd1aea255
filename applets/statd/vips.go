//go:build !noetcd

package statd

import (
	"context"
	"fmt"
	"log/slog"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/statd"
)

// vipRecorder connects to etcd when floating IPs are configured: statd
// then records each monitor against every one of them this node holds.
func vipRecorder(cc cluster.Config, log *slog.Logger) (statd.VIPRecorder, func(), error) {
	if len(cc.FloatingIPs) == 0 {
		return nil, func() {}, nil
	}
	c, err := cluster.Dial(context.Background(), cc)
	if err != nil {
		return nil, nil, fmt.Errorf("floating-ips needs etcd: %w", err)
	}
	log.Info("recording monitors per floating IP on etcd", "floating_ips", cc.FloatingIPs, "etcd", cc.Endpoints)
	rec := &cluster.NSMRecorder{Client: c, VIPs: func() ([]string, error) { return cluster.HostedVIPs(cc.FloatingIPs) }}
	return rec, func() { c.Close() }, nil
}
