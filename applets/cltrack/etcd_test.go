//go:build !noetcd && !nosqlite

package cltrack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
)

// etcdRecords is ours's record set on etcd, seen through the same code.
type etcdRecords struct{ r *cluster.CltrackRecords }

func (e etcdRecords) rows(t *testing.T) []row {
	t.Helper()
	cs, err := e.r.Clients()
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for _, c := range cs {
		rows = append(rows, row{ID: strings.ToUpper(fmt.Sprintf("%x", c.ID)), Time: c.Time, Session: c.HasSession.String()})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

func (e etcdRecords) setTime(t *testing.T, hexID string, tm int64) {
	t.Helper()
	var id []byte
	fmt.Sscanf(hexID, "%x", &id)
	c, ok, err := e.r.Lookup(id)
	if err != nil || !ok {
		t.Fatalf("setTime: client %s: %v", hexID, err)
	}
	c.Time = tm
	if err := e.r.Put(c); err != nil {
		t.Fatal(err)
	}
}

// newPairEtcd pairs the real nfsdcltrack with ours on backend = etcd, in
// a server scope of its own on ec.
func newPairEtcd(t *testing.T, ec *etcdtest.Cluster, extra ...string) *pair {
	t.Helper()
	p := newPair(t, extra...)
	scope := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	p.ours.conf = filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(p.ours.conf, []byte(fmt.Sprintf("[nfsrecover]\nbackend = etcd\netcd-endpoints = %s\netcd-prefix = /t/cltrack/\nv4-scope = %s\n",
		strings.Join(ec.Endpoints(), ","), scope)), 0o644)
	c, err := cluster.Dial(context.Background(), cluster.Config{Endpoints: ec.Endpoints(), Prefix: "/t/cltrack/", RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p.ours.etcd = etcdRecords{&cluster.CltrackRecords{Client: c, Scope: scope}}
	return p
}

// TestDifferentialEtcd: on the etcd backend our nfsdcltrack answers every
// scenario and random sequence with the real nfsdcltrack's exit statuses,
// and its record set (on etcd) matches the real one's (in SQLite) after
// every step.
func TestDifferentialEtcd(t *testing.T) {
	needOracle(t)
	ec := etcdtest.Start(t, 3)
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			var extra []string
			if s.compat {
				extra = []string{"--compat"}
			}
			s.steps(newPairEtcd(t, ec, extra...))
		})
	}
	randomRuns(t, 4, func(t *testing.T) *pair { return newPairEtcd(t, ec, "--compat") })
}

// TestEtcdDownFailsInit: with etcd unreachable, init fails with EACCES
// (nfsdcltrack's init maps every database failure to it, and the kernel
// then falls back), a create fails, and nothing is recorded locally.
func TestEtcdDownFailsInit(t *testing.T) {
	s := newOurs(t)
	s.conf = filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(s.conf, []byte("[nfsrecover]\nbackend = etcd\netcd-endpoints = http://127.0.0.1:9\netcd-timeout = 1s\n"), 0o644)
	if code := s.run(t, nil, "init"); code != 243 {
		t.Errorf("init with etcd down: exit %d, want 243 (EACCES, as nfsdcltrack for an unusable database)", code)
	}
	if code := s.run(t, nil, "create", "41"); code == 0 {
		t.Errorf("create with etcd down succeeded")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "nfsrecover.db")); err == nil {
		t.Errorf("a local database was created on the etcd backend")
	}
}
