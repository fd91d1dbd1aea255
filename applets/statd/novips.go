//go:build noetcd

package statd

import (
	"fmt"
	"log/slog"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/statd"
)

// vipRecorder refuses floating IPs: this build has no etcd client.
func vipRecorder(cc cluster.Config, _ *slog.Logger) (statd.VIPRecorder, func(), error) {
	if len(cc.FloatingIPs) > 0 {
		return nil, nil, fmt.Errorf("floating-ips: %w", cluster.ErrNotBuilt)
	}
	return nil, func() {}, nil
}
