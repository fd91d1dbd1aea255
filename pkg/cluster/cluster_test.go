//go:build !noetcd

package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
)

func TestMain(m *testing.M) { os.Exit(testenv.Isolate(m.Run)) }

// dial connects to the test cluster. Its time limit is generous: these
// tests are about outcomes, not latency, and etcd's fsyncs on a loaded CI
// machine can take seconds (a 3 s limit once failed TestNoLostUpdates).
func dial(t *testing.T, endpoints []string, prefix string) *cluster.Client {
	t.Helper()
	return dialWithin(t, endpoints, prefix, 60*time.Second)
}

// dialWithin is dial with a time limit for each request.
func dialWithin(t *testing.T, endpoints []string, prefix string, limit time.Duration) *cluster.Client {
	t.Helper()
	c, err := cluster.Dial(context.Background(), cluster.Config{
		Endpoints: endpoints, Prefix: prefix, RequestTimeout: limit, DialTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConfigRefuses(t *testing.T) {
	ctx := context.Background()
	cases := map[string]cluster.Config{
		"no endpoints":             {},
		"cert alone":               {Endpoints: []string{"http://127.0.0.1:1"}, Cert: "c.pem"},
		"password only":            {Endpoints: []string{"http://127.0.0.1:1"}, Password: "x"},
		"unreadable password file": {Endpoints: []string{"http://127.0.0.1:1"}, Username: "u", PasswordFile: "/nonexistent/pw"},
	}
	for name, cfg := range cases {
		if _, err := cluster.Dial(ctx, cfg); err == nil {
			t.Errorf("%s: Dial accepted %+v", name, cfg)
		}
	}
	pw := cluster.Config{Endpoints: []string{"http://127.0.0.1:1"}, Username: "u", PasswordFile: "/nonexistent/pw"}
	if _, err := cluster.Dial(ctx, pw); !errors.Is(err, cluster.ErrBadConfig) || !strings.Contains(err.Error(), "/nonexistent/pw") {
		t.Errorf("unreadable password file: %v, want ErrBadConfig naming the file", err)
	}
	if _, err := cluster.Dial(ctx, cluster.Config{}); !errors.Is(err, cluster.ErrNoEndpoints) {
		t.Errorf("no endpoints: %v, want ErrNoEndpoints", err)
	}
}

// TestGraceLifecycle walks the three-node scenario of ganesha's design
// through etcd: a node restarts and starts grace, the others join its
// enforcement, and grace lifts only when the last NEED clears; a node that
// died needing grace keeps it in force until it is removed.
func TestGraceLifecycle(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	c := dial(t, ec.Endpoints(), "/t/lifecycle/")
	ctx := context.Background()
	step := func(op grace.Op, ids ...string) grace.DB {
		t.Helper()
		db, err := c.UpdateGrace(ctx, op, ids)
		if err != nil {
			t.Fatalf("%v: %v", ids, err)
		}
		return db
	}
	db, rev, err := c.ReadGrace(ctx)
	if err != nil || rev != 0 || db.Current != 1 || db.Recovery != 0 {
		t.Fatalf("fresh cluster: %+v rev %d %v; want cur=1 rec=0, never written", db, rev, err)
	}
	step(grace.Add, "a", "b", "c")
	step(grace.NoEnforce, "a", "b", "c")
	db = step(grace.Start, "b") // b restarts
	if db.Current != 2 || db.Recovery != 1 || db.AllEnforcing("b") {
		t.Fatalf("after start b: %+v", db)
	}
	step(grace.Enforce, "a", "c")
	if db = step(grace.Lift, "a"); !db.InGrace() {
		t.Fatalf("lift of a node without NEED ended grace: %+v", db)
	}
	db = step(grace.Start, "c") // c crashes too and joins
	if db.Current != 2 || db.Recovery != 1 {
		t.Fatalf("a second start opened a new epoch: %+v", db)
	}
	if db = step(grace.Lift, "b"); !db.InGrace() {
		t.Fatalf("grace lifted while c still needs it: %+v", db)
	}
	if db = step(grace.Remove, "c"); db.InGrace() {
		t.Fatalf("removing the dead node c did not lift grace: %+v", db)
	}
	if _, err := c.UpdateGrace(ctx, grace.Member, []string{"c"}); !errors.Is(err, grace.ErrNoNode) {
		t.Fatalf("member c after remove: %v", err)
	}
	got, _, err := c.ReadGrace(ctx)
	if err != nil || got.Current != 2 || got.Recovery != 0 || len(got.Nodes) != 2 {
		t.Fatalf("final: %+v %v", got, err)
	}
}

// TestNoLostUpdates: many clients, each on its own endpoint, change the one
// record at once; compare-and-swap must keep every change.
func TestNoLostUpdates(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	const workers, rounds = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		c := dial(t, []string{ec.Endpoints()[w%3]}, "/t/lost/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("n%d", w)
			ctx := context.Background()
			if _, err := c.UpdateGrace(ctx, grace.Add, []string{id}); err != nil {
				errs <- err
				return
			}
			for r := 0; r < rounds; r++ {
				op := grace.Start
				if r%2 == 1 {
					op = grace.Lift
				}
				if _, err := c.UpdateGrace(ctx, op, []string{id}); err != nil {
					errs <- fmt.Errorf("%s round %d: %w", id, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db, _, err := dial(t, ec.Endpoints(), "/t/lost/").ReadGrace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Nodes) != workers {
		t.Fatalf("%d members, want %d: an add was lost: %+v", len(db.Nodes), workers, db)
	}
	// Each worker ends on a start (rounds is odd: start, lift, ..., start),
	// Whatever the interleaving, each node's last change is its own.
	for id, f := range db.Nodes {
		if f&grace.Need == 0 {
			t.Errorf("%s: its last change (start) was lost: flags %q", id, f)
		}
	}
}

func TestWatchGrace(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/watch/")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.WatchGrace(ctx)
	if db := <-ch; db.Current != 1 || len(db.Nodes) != 0 {
		t.Fatalf("first value: %+v", db)
	}
	if _, err := c.UpdateGrace(ctx, grace.Add, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateGrace(ctx, grace.Start, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case db := <-ch:
			if db.InGrace() && db.Nodes["x"] == grace.Need|grace.Enforcing {
				return
			}
		case <-deadline:
			t.Fatal("the watch never showed x starting grace")
		}
	}
}

func TestAliveLease(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/alive/")
	ctx, cancel := context.WithCancel(context.Background())
	done, err := c.Alive(ctx, "node1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	alive, err := c.AliveNodes(context.Background())
	if err != nil || !alive["node1"] {
		t.Fatalf("alive: %v %v", alive, err)
	}
	cancel()
	<-done
	alive, err = c.AliveNodes(context.Background())
	if err != nil || alive["node1"] {
		t.Fatalf("after the agent stopped: %v %v", alive, err)
	}
	if h := c.Health(context.Background()); len(h) != 1 || !h[0].Healthy {
		t.Fatalf("health: %+v", h)
	}
}
