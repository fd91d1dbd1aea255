//go:build noetcd

package cld

import (
	"log/slog"

	"nfsrecover/pkg/cluster"
)

// runEtcd refuses: this build has no etcd client.
func runEtcd(_ config, _ []string, log *slog.Logger, _ func(string) (string, bool)) int {
	log.Error("backend = etcd", "err", cluster.ErrNotBuilt)
	return exitFatal
}
