package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"nfsrecover/pkg/grace"
)

// Agent is one knfsd node's part in cluster grace. Run it as nfsd starts
// (knfsd always starts in grace):
//
//  1. it holds the node's liveness key on a lease;
//  2. it records NEED and ENFORCING for the node, opening a new cluster
//     epoch or joining the one in force;
//  3. after NeedFor it clears its NEED (the node's own clients have had
//     their time to reclaim);
//  4. only once no node in the cluster needs grace (R = 0) does it end the
//     local grace period, writing "Y" to each EndGrace file
//     (/proc/fs/nfsd/v4_end_grace, /proc/fs/lockd/nlm_end_grace), and
//     clear its ENFORCING.
//
// While etcd cannot be reached it never ends the local grace period: the
// kernel's own grace time is the limit. knfsd ends grace on its own when
// that time passes, cluster or not, so Run first sets it to GraceTime
// (nfsd reads it when it starts: run the agent before nfsd).
type Agent struct {
	Client *Client
	Node   string
	// NeedFor is how long the node needs grace for its own clients; 0
	// means until someone runs "grace lift NODE".
	NeedFor time.Duration
	// EndGrace are the files that end the local grace period when "Y" is
	// written to them. A missing file is skipped with a log line.
	EndGrace []string
	// LeaseTTL is the liveness lease's time to live; default 10s.
	LeaseTTL time.Duration
	// GraceTime, when not 0, is written in seconds to each GraceTimeFile
	// (nfsd's nfsv4gracetime, lockd's nlm_grace_period) before anything
	// else: the longest the kernel stays in grace without the agent.
	GraceTime      time.Duration
	GraceTimeFiles []string
	Log            *slog.Logger
}

// ErrNotMember: the node was never added to the cluster.
var ErrNotMember = errors.New("this node is not a member of the cluster (add it with: nfsrecover grace add NODE)")

// Run does the agent's work until ctx ends. It returns nil when ctx ends
// and an error when the node cannot join (not a member, etcd down).
func (a *Agent) Run(ctx context.Context) error {
	ttl := a.LeaseTTL
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	a.setGraceTime()
	lost, err := a.Client.Alive(ctx, a.Node, ttl)
	if err != nil {
		return err
	}
	db, err := a.Client.UpdateGrace(ctx, grace.Start, []string{a.Node})
	if errors.Is(err, grace.ErrNoNode) {
		return fmt.Errorf("%s: %w", a.Node, ErrNotMember)
	}
	if err != nil {
		return fmt.Errorf("cluster: start grace for %s: %w", a.Node, err)
	}
	a.Log.Info("in cluster grace", "node", a.Node, "current", db.Current, "recovery", db.Recovery, "needing", db.Needing())
	var needDone, renew <-chan time.Time // nil: never
	if a.NeedFor > 0 {
		needDone = time.After(a.NeedFor)
	}
	ended := false
	watch := a.Client.WatchGrace(ctx)
	for {
		select {
		case <-ctx.Done():
			return waitRevoked(lost)
		case <-lost:
			if ctx.Err() != nil {
				return nil
			}
			a.Log.Warn("liveness lease lost; renewing", "node", a.Node)
			lost, renew = a.renew(ctx, ttl)
		case <-renew:
			lost, renew = a.renew(ctx, ttl)
		case <-needDone:
			needDone = nil
			if _, err := a.Client.UpdateGrace(ctx, grace.Lift, []string{a.Node}); err != nil && ctx.Err() == nil {
				a.Log.Error("could not clear NEED; retrying in 1s", "node", a.Node, "err", err)
				needDone = time.After(time.Second)
			} else if err == nil {
				a.Log.Info("cleared NEED: this node's clients had their grace time", "node", a.Node)
			}
		case db, ok := <-watch:
			if !ok {
				return waitRevoked(lost)
			}
			ended = a.observe(ctx, db, ended)
		}
	}
}

// waitRevoked waits until the liveness lease is given back (revoking it
// is bounded by its TTL), so that an agent that returned is seen as gone.
func waitRevoked(lost <-chan struct{}) error {
	if lost != nil {
		<-lost
	}
	return nil
}

// renew takes a new liveness lease; when that fails it returns a timer to
// try again instead.
func (a *Agent) renew(ctx context.Context, ttl time.Duration) (<-chan struct{}, <-chan time.Time) {
	lost, err := a.Client.Alive(ctx, a.Node, ttl)
	if err != nil {
		if ctx.Err() == nil {
			a.Log.Warn("could not renew the liveness lease; retrying in 1s", "node", a.Node, "err", err)
		}
		return nil, time.After(time.Second)
	}
	return lost, nil
}

// observe acts on one value of the grace database and reports whether the
// local grace period has been ended. Once grace is lifted it clears the
// node's ENFORCING, again on each later value until that has worked.
func (a *Agent) observe(ctx context.Context, db grace.DB, ended bool) bool {
	if db.InGrace() {
		if ended && db.Nodes[a.Node]&grace.Enforcing == 0 {
			a.Log.Warn("a new cluster grace period started, but knfsd cannot re-enter grace without an nfsd restart; this node does not enforce it",
				"recovery", db.Recovery, "needing", db.Needing())
		} else if !ended {
			a.Log.Debug("cluster still in grace", "needing", db.Needing())
		}
		return ended
	}
	if !ended {
		for _, f := range a.EndGrace {
			if err := endGrace(f); err != nil {
				a.Log.Warn("could not end the local grace period", "file", f, "err", err)
			}
		}
		a.Log.Info("cluster grace lifted: local grace period ended", "node", a.Node, "current", db.Current)
	}
	if db.Nodes[a.Node]&grace.Enforcing != 0 {
		if _, err := a.Client.UpdateGrace(ctx, grace.NoEnforce, []string{a.Node}); err != nil && ctx.Err() == nil {
			a.Log.Error("could not clear ENFORCING", "node", a.Node, "err", err)
		}
	}
	return true
}

// endGrace writes "Y" to a kernel file that ends grace, unless it already
// reads "Y" (nfsd's v4_end_grace reads Y once grace is over).
func endGrace(path string) error {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "Y" {
		return nil
	}
	return writeKernel(path, "Y")
}

// writeKernel writes s to an existing kernel control file (never creating
// one where the kernel has none).
func writeKernel(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// DefaultGraceTimeFiles are where knfsd and lockd read their grace time.
var DefaultGraceTimeFiles = []string{"/proc/fs/nfsd/nfsv4gracetime", "/proc/sys/fs/nfs/nlm_grace_period"}

// setGraceTime writes GraceTime to the kernel; nfsd refuses it (EBUSY)
// while it runs, and then it applies from nfsd's next start.
func (a *Agent) setGraceTime() {
	if a.GraceTime <= 0 {
		return
	}
	secs := fmt.Sprint(int(a.GraceTime.Seconds()))
	for _, f := range a.GraceTimeFiles {
		err := writeKernel(f, secs+"\n")
		switch {
		case err == nil:
			a.Log.Info("kernel grace time set", "file", f, "seconds", secs)
		case errors.Is(err, os.ErrNotExist):
			a.Log.Debug("no such grace time file", "file", f)
		case errors.Is(err, syscall.EBUSY):
			a.Log.Warn("nfsd is running: the grace time applies from its next start; start the agent before nfsd", "file", f, "seconds", secs)
		default:
			a.Log.Warn("cannot set the kernel grace time", "file", f, "err", err)
		}
	}
}
