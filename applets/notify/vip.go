//go:build !noetcd

package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/smnotify"
	"nfsrecover/pkg/store"
)

// runVIP is sm-notify -v VIP for a configured floating IP: the peers are
// the monitors recorded against VIP on etcd by whichever node held it,
// and the state is VIP's own, advanced on etcd, so peers see one reboot
// per move whichever node sends it. Nothing local is read or changed
// (not the state directory, the database or the kernel's NSM state).
// Each peer's record is deleted once it answered, unless it was recorded
// again meanwhile.
func runVIP(cfg config, args []string, addr netip.Addr, name string, log *slog.Logger, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	// Only the child talks to etcd: a parent that prepared and a child
	// that prepared again would advance the state twice.
	ready, parent, err := daemon.Detach(cfg.foreground, LinkName, args, lookupEnv)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "sm-notify: %v\n", err)
		return 1
	case parent:
		return 0
	}
	vip := addr.String()
	ctx := context.Background()
	c, err := cluster.Dial(ctx, cfg.cluster)
	if err != nil {
		log.Error("cannot reach etcd for the floating IP's clients", "vip", vip, "err", err)
		return 1
	}
	defer c.Close()
	peers, err := c.VIPMonitors(ctx, vip)
	if err != nil {
		log.Error("cannot read the floating IP's clients", "vip", vip, "err", err)
		return 1
	}
	if len(peers) == 0 {
		log.Info("no hosts to notify", "vip", vip)
		ready()
		return 0
	}
	next := smnotify.NextState
	if cfg.noUpdate {
		next = smnotify.Current
	}
	state, err := c.AdvanceVIPState(ctx, vip, next)
	if err != nil {
		log.Error("cannot advance the floating IP's NSM state", "vip", vip, "err", err)
		return 1
	}
	conn, err := socket(addr, cfg.port)
	if err != nil {
		log.Error("cannot create the sending socket", "err", err)
		return 1
	}
	defer conn.Close()
	log.Info("notifying the floating IP's peers", "vip", vip, "peers", len(peers), "state", state)
	ready()
	revs := make(map[string]cluster.VIPMonitor, len(peers))
	monitors := make([]store.Monitor, len(peers))
	for i, p := range peers {
		revs[cluster.VIPMonitorKey("", vip, p.Monitor)] = p
		monitors[i] = p.Monitor
	}
	return notifyPeers(cfg, monitors, state, name, conn, log, func(ctx context.Context, m store.Monitor) error {
		return c.VIPNotified(ctx, vip, revs[cluster.VIPMonitorKey("", vip, m)])
	})
}
