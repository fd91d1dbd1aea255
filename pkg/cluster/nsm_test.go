//go:build !noetcd

package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/smnotify"
	"nfsrecover/pkg/store"
)

func monitorFor(peer string, priv byte) store.Monitor {
	m := store.Monitor{MonName: peer, DNSName: peer, MyName: "node.example", Prog: 100021, Vers: 3, Proc: 16, Created: 1}
	m.Priv[0] = priv
	return m
}

func fixedVIPs(vips ...string) func() ([]string, error) {
	return func() ([]string, error) { return vips, nil }
}

// TestVIPRecords: statd's records land under every VIP held, more of them
// than one etcd transaction takes; SM_UNMON removes them from every VIP.
func TestVIPRecords(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/vip/")
	ctx := context.Background()
	rec := &cluster.NSMRecorder{Client: c, VIPs: fixedVIPs("192.0.2.10", "192.0.2.11")}
	const peers = 200 // 400 records: more than etcd's 128 operations per transaction
	var all []store.Monitor
	for i := 0; i < peers; i++ {
		m := monitorFor(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), byte(i))
		all = append(all, m)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*peers)
	for _, m := range all {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- rec.Monitor(ctx, m) }()
	}
	// The same record twice at once (a retried SM_MON) and a record
	// monitored then unmonitored may share a batch; etcd refuses a
	// transaction naming a key twice.
	extra := monitorFor("10.9.9.9", 9)
	for range 2 {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- rec.Monitor(ctx, all[0]) }()
		go func() { defer wg.Done(); errs <- rec.Monitor(ctx, extra) }()
	}
	wg.Wait()
	if err := rec.Unmonitor(ctx, []store.Monitor{extra}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.Commits(); n >= peers {
		t.Errorf("%d transactions for %d concurrent monitors: no group commit", n, peers)
	}
	for _, vip := range []string{"192.0.2.10", "192.0.2.11"} {
		got, err := c.VIPMonitors(ctx, vip)
		if err != nil || len(got) != peers {
			t.Fatalf("%s: %d records, %v; want %d", vip, len(got), err, peers)
		}
		want := map[string]store.Monitor{}
		for _, m := range all {
			want[m.MonName] = m
		}
		for _, g := range got {
			if want[g.MonName] != g.Monitor {
				t.Fatalf("%s: record %+v, want %+v", vip, g.Monitor, want[g.MonName])
			}
		}
	}
	if err := rec.Unmonitor(ctx, all[:10]); err != nil {
		t.Fatal(err)
	}
	for _, vip := range []string{"192.0.2.10", "192.0.2.11"} {
		if got, _ := c.VIPMonitors(ctx, vip); len(got) != peers-10 {
			t.Errorf("%s after unmonitoring 10: %d records", vip, len(got))
		}
	}
	if got, _ := c.VIPMonitors(ctx, "192.0.2.12"); len(got) != 0 {
		t.Errorf("a VIP not held has %d records", len(got))
	}
}

// TestVIPNotifiedKeepsNewRecord: a peer that monitors us again while its
// notification is in flight keeps its (new) record.
func TestVIPNotifiedKeepsNewRecord(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := dial(t, ec.Endpoints(), "/t/vipnotified/")
	ctx := context.Background()
	rec := &cluster.NSMRecorder{Client: c, VIPs: fixedVIPs("192.0.2.10")}
	a, b := monitorFor("10.0.0.1", 1), monitorFor("10.0.0.2", 2)
	for _, m := range []store.Monitor{a, b} {
		if err := rec.Monitor(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	read, err := c.VIPMonitors(ctx, "192.0.2.10")
	if err != nil || len(read) != 2 {
		t.Fatalf("%v %v", read, err)
	}
	b.Priv[0] = 9 // b monitors us anew (a new cookie) before it is notified
	if err := rec.Monitor(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, m := range read {
		if err := c.VIPNotified(ctx, "192.0.2.10", m); err != nil {
			t.Fatal(err)
		}
	}
	left, err := c.VIPMonitors(ctx, "192.0.2.10")
	if err != nil || len(left) != 1 || left[0].Monitor != b {
		t.Fatalf("left %+v %v; want only b's new record", left, err)
	}
}

// TestVIPStateAdvances: concurrent sm-notify runs for one VIP on several
// nodes each get their own state, as nsm_get_state would on one node.
func TestVIPStateAdvances(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	ctx := context.Background()
	const runs = 12
	states := make(chan int32, runs)
	var wg sync.WaitGroup
	for i := 0; i < runs; i++ {
		c := dial(t, []string{ec.Endpoints()[i%3]}, "/t/vipstate/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.AdvanceVIPState(ctx, "192.0.2.10", smnotify.NextState)
			if err != nil {
				t.Error(err)
			}
			states <- s
		}()
	}
	wg.Wait()
	close(states)
	seen := map[int32]bool{}
	for s := range states {
		if seen[s] || s%2 != 1 {
			t.Errorf("state %d handed out twice or even", s)
		}
		seen[s] = true
	}
	// nsm_get_state's sequence from a missing state: 3, 5, 7, ...
	for i := int32(0); i < runs; i++ {
		if !seen[3+2*i] {
			t.Errorf("state %d never handed out: %v", 3+2*i, seen)
		}
	}
}
