//go:build !noetcd && !nosqlite

package cltrack_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/store"
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

// TestPushPull: "cltrack push" moves the database's records to the scope
// on etcd, where ours on backend = etcd lets each pushed client reclaim
// (and a hash-only record be claimed); "cltrack pull" brings them back.
func TestPushPull(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	local := newOurs(t)
	for _, id := range []string{"41", "4242", "434343"} {
		if code := local.run(t, []string{v41}, "create", id); code != 0 {
			t.Fatalf("create %s: exit %d", id, code)
		}
	}
	db := filepath.Join(local.dir, "nfsrecover.db")
	legacy := fmt.Sprintf("%x", md5.Sum([]byte("legacy-client")))
	s, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(func(tx *store.Tx) error { return tx.PutHash(legacy) })
	s.Close()
	conf := filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[nfsrecover]\nbackend = etcd\netcd-endpoints = %s\netcd-prefix = /t/cltrackmove/\nv4-scope = moved\n",
		strings.Join(ec.Endpoints(), ","))), 0o644)
	manage := func(args ...string) (string, int) {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "NFSRECOVER_NFS_CONF="+conf)
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	if out, code := manage("cltrack", "push", "--db", db); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	if out, code := manage("cltrack", "push", "--db", db); code != 1 || !strings.Contains(out, "--force") {
		t.Errorf("a second push: exit %d, want 1 naming --force\n%s", code, out)
	}
	onEtcd := newOurs(t)
	onEtcd.conf = conf
	for _, id := range []string{"41", "4242", "434343"} {
		if code := onEtcd.run(t, []string{v41}, "check", id); code != 0 {
			t.Errorf("check %s on etcd after push: exit %d, want 0 (may reclaim)", id, code)
		}
	}
	if code := onEtcd.run(t, []string{v41}, "check", "4e4f"); code != 255 {
		t.Errorf("check of a client never pushed: exit %d, want 255", code)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	if out, code := manage("cltrack", "pull", "--db", back); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	want, _ := store.DumpFile(db)
	got, err := store.DumpFile(back)
	if err != nil || len(got.Clients) != len(want.Clients) || !slices.Equal(got.Hashes, want.Hashes) {
		t.Fatalf("pulled %+v (%v), want %+v", got, err, want)
	}
	for i := range want.Clients {
		if !bytes.Equal(got.Clients[i].ID, want.Clients[i].ID) || got.Clients[i].Time != want.Clients[i].Time || got.Clients[i].HasSession != want.Clients[i].HasSession {
			t.Errorf("pulled client %+v, pushed %+v", got.Clients[i], want.Clients[i])
		}
	}
	if _, code := manage("cltrack", "pull", "--db", back); code != 1 {
		t.Errorf("a pull over existing records: exit %d, want 1", code)
	}
	// The pushed hash-only record is claimed by the client it names.
	if code := onEtcd.run(t, []string{v41}, "check", fmt.Sprintf("%x", "legacy-client")); code != 0 {
		t.Errorf("check of the pushed hash-only client on etcd: exit %d, want 0", code)
	}
	if hs, err := onEtcd.etcdHashes(t, ec, conf); err != nil || len(hs) != 0 {
		t.Errorf("hash-only records left after the claim: %v %v", hs, err)
	}
}

// etcdHashes lists the scope's hash-only names.
func (s *side) etcdHashes(t *testing.T, ec *etcdtest.Cluster, _ string) ([]string, error) {
	c, err := cluster.Dial(context.Background(), cluster.Config{Endpoints: ec.Endpoints(), Prefix: "/t/cltrackmove/"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return (&cluster.CltrackRecords{Client: c, Scope: "moved"}).Hashes()
}
