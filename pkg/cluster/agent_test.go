//go:build !noetcd

package cluster_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
)

// node is one simulated knfsd head: its agent and its v4_end_grace file.
type node struct {
	id      string
	endFile string
	stop    context.CancelFunc
	done    chan struct{} // closed when the agent's Run returned
	err     error
	log     *testenv.SyncBuffer
}

// saw reports whether the agent logged a line containing every part.
func (n *node) saw(parts ...string) bool {
	for _, line := range strings.Split(n.log.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

func startAgent(t *testing.T, ec *etcdtest.Cluster, id string, needFor time.Duration) *node {
	t.Helper()
	n := &node{id: id, endFile: filepath.Join(t.TempDir(), "v4_end_grace"), done: make(chan struct{}), log: &testenv.SyncBuffer{}}
	if err := os.WriteFile(n.endFile, []byte("N\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ec.Endpoints(), "/t/agents/")
	a := &cluster.Agent{Client: c, Node: id, NeedFor: needFor, EndGrace: []string{n.endFile},
		LeaseTTL: 2 * time.Second, Log: slog.New(slog.NewTextHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { n.err = a.Run(ctx); close(n.done) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

func (n *node) ended() bool {
	b, _ := os.ReadFile(n.endFile)
	return strings.TrimSpace(string(b)) == "Y"
}

// TestClusterGrace: three heads restart together. Two finish their own
// grace quickly; the third still needs grace, so neither of the others
// ends its local grace until the third clears NEED. Then the third dies
// while needing grace in a new epoch, and "grace remove" of the dead node
// lets the others lift.
func TestClusterGrace(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	admin := dial(t, ec.Endpoints(), "/t/agents/")
	ctx := context.Background()
	if _, err := admin.UpdateGrace(ctx, grace.Add, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, ec, "a", 200*time.Millisecond)
	b := startAgent(t, ec, "b", 200*time.Millisecond)
	c := startAgent(t, ec, "c", 0) // needs grace until lifted by hand
	needsOnly := func(want ...string) func() bool {
		return func() bool {
			db, _, err := admin.ReadGrace(ctx)
			return err == nil && db.InGrace() && strings.Join(db.Needing(), ",") == strings.Join(want, ",")
		}
	}
	if !testenv.WaitFor(20*time.Second, needsOnly("c")) {
		db, _, _ := admin.ReadGrace(ctx)
		t.Fatalf("a and b never cleared NEED while c holds grace: %+v", db)
	}
	// Wait until a and b have seen that value, then they must still be in grace.
	if !testenv.WaitFor(20*time.Second, func() bool {
		return a.saw("cluster still in grace", "[c]") && b.saw("cluster still in grace", "[c]")
	}) {
		t.Fatalf("a and b never saw that only c needs grace:\na: %s\nb: %s", a.log, b.log)
	}
	if a.ended() || b.ended() || c.ended() {
		t.Fatalf("local grace ended while c needs grace: a=%v b=%v c=%v", a.ended(), b.ended(), c.ended())
	}
	if _, err := admin.UpdateGrace(ctx, grace.Lift, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if !testenv.WaitFor(20*time.Second, func() bool { return a.ended() && b.ended() && c.ended() }) {
		t.Fatalf("grace lifted but local grace not ended: a=%v b=%v c=%v", a.ended(), b.ended(), c.ended())
	}
	if !testenv.WaitFor(20*time.Second, func() bool {
		db, _, err := admin.ReadGrace(ctx)
		return err == nil && len(db.NotEnforcing()) == 3
	}) {
		db, _, _ := admin.ReadGrace(ctx)
		t.Fatalf("the agents did not clear ENFORCING after the lift: %+v", db)
	}

	// c restarts and dies needing grace; a and b restart too.
	c.stop()
	<-c.done
	c2 := startAgent(t, ec, "c", 0)
	if !testenv.WaitFor(20*time.Second, needsOnly("c")) {
		t.Fatal("c's restart did not start grace")
	}
	c2.stop()
	<-c2.done
	a2 := startAgent(t, ec, "a", 100*time.Millisecond)
	if !testenv.WaitFor(20*time.Second, needsOnly("c")) {
		t.Fatal("a did not clear its NEED")
	}
	alive, err := admin.AliveNodes(ctx)
	if err != nil || alive["c"] || !alive["a"] {
		t.Fatalf("liveness: %v %v (c is dead, a runs)", alive, err)
	}
	if !testenv.WaitFor(20*time.Second, func() bool { return a2.saw("cluster still in grace", "[c]") }) {
		t.Fatalf("a never saw that dead c still needs grace: %s", a2.log)
	}
	if a2.ended() {
		t.Fatal("a ended its grace while dead c still needs grace (NEED must not be lease-bound)")
	}
	if _, err := admin.UpdateGrace(ctx, grace.Remove, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if !testenv.WaitFor(20*time.Second, a2.ended) {
		t.Fatal("removing dead c did not let a end its grace")
	}
}

func TestAgentNotMember(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/notmember/")
	a := &cluster.Agent{Client: c, Node: "ghost", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := a.Run(context.Background()); !errors.Is(err, cluster.ErrNotMember) {
		t.Fatalf("agent for a node never added: %v", err)
	}
}

// TestAgentSetsGraceTime: the agent writes its grace time, in seconds,
// to the kernel's files before it joins (here before it finds the node
// is no member), and skips a missing file.
func TestAgentSetsGraceTime(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/gracetime/")
	dir := t.TempDir()
	v4, nlm := filepath.Join(dir, "nfsv4gracetime"), filepath.Join(dir, "nlm_grace_period")
	os.WriteFile(v4, []byte("90\n"), 0o644)
	os.WriteFile(nlm, []byte("90\n"), 0o644)
	a := &cluster.Agent{Client: c, Node: "ghost", GraceTime: 10 * time.Minute,
		GraceTimeFiles: []string{v4, nlm, filepath.Join(dir, "missing")}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.Run(context.Background())
	for _, f := range []string{v4, nlm} {
		if b, _ := os.ReadFile(f); string(b) != "600\n" {
			t.Errorf("%s: %q, want 600 seconds", f, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("the agent created a grace time file that was not there")
	}
}
