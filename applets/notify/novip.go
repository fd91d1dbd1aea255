//go:build noetcd

package notify

import (
	"io"
	"log/slog"
	"net/netip"

	"nfsrecover/pkg/cluster"
)

// runVIP refuses: notifying a floating IP's clients needs etcd.
func runVIP(_ config, _ []string, vip netip.Addr, _ string, log *slog.Logger, _ func(string) (string, bool), _ io.Writer) int {
	log.Error("cannot notify the floating IP's clients", "vip", vip, "err", cluster.ErrNotBuilt)
	return 1
}
