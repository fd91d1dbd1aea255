//go:build !noetcd

package cld

import (
	"context"
	"log/slog"

	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
)

// runEtcd serves the upcalls from the records of this node's server scope
// on etcd ([nfsrecover] backend = etcd): no local database is opened, and
// the node that takes the scope over finds every client in GraceStart.
// etcd must answer at start-up, or the start fails (exit 1).
func runEtcd(cfg config, args []string, log *slog.Logger, lookupEnv func(string) (string, bool)) int {
	watch, err := cld.Watch(cfg.pipefs)
	if err != nil {
		log.Error("cannot watch for the pipe", "err", err)
		return exitFatal
	}
	defer watch.Close()
	c, err := cluster.Dial(context.Background(), cfg.cluster)
	if err != nil {
		log.Error("cannot connect to etcd", "err", err)
		return exitFatal
	}
	defer c.Close()
	recs := &cluster.ScopeRecords{Client: c, Scope: cfg.cluster.V4Scope}
	e, err := recs.ScopeEpochs(context.Background())
	if err != nil {
		log.Error("cannot read the scope's grace table on etcd", "scope", cfg.cluster.V4Scope, "err", err)
		return exitFatal
	}
	log.Info("client records on etcd", "scope", cfg.cluster.V4Scope, "etcd", cfg.cluster.Endpoints,
		"current_epoch", e.Current, "recovery_epoch", e.Recovery)
	if daemon.KernelBefore(4, 20) {
		log.Warn("kernel before 4.20 sends no GraceStart: the etcd backend cannot track its grace periods")
	}
	ready, code := detach(cfg, args, log, lookupEnv)
	if ready == nil {
		return code
	}
	return serve(log, watch, recs, ready, lookupEnv)
}
