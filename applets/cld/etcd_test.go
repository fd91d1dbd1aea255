//go:build linux && !noetcd && !nosqlite

package cld

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// etcdRig is our nfsdcld with backend = etcd, its records under a prefix
// of its own on ec.
func etcdRig(t *testing.T, ec *etcdtest.Cluster, scope string) *rig {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "nfs.conf")
	prefix := "/t/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
	os.WriteFile(conf, []byte(fmt.Sprintf("[nfsrecover]\nbackend = etcd\netcd-endpoints = %s\netcd-prefix = %s\nv4-scope = %s\n",
		strings.Join(ec.Endpoints(), ","), prefix, scope)), 0o644)
	r := newRigConf(t, "ours", t.TempDir(), conf)
	r.name = "ours on etcd"
	return r
}

// TestDifferentialEtcd: on the etcd backend our nfsdcld answers every
// sequence byte for byte as the real nfsdcld does on its SQLite file.
func TestDifferentialEtcd(t *testing.T) {
	needRig(t)
	ec := etcdtest.Start(t, 3)
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) { differentialWith(t, etcdRig(t, ec, "scope1"), c.steps) })
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			differentialWith(t, etcdRig(t, ec, "scope1"), randomSteps(rand.New(rand.NewPCG(seed, 42)), 200))
		})
	}
}

// TestPushPull: "cld push" moves a node's local records to its scope on
// etcd, where nfsdcld on backend = etcd streams them in GraceStart as it
// would from the database; a second push refuses (nothing changed), and
// "cld pull" brings the same state back into a fresh database.
func TestPushPull(t *testing.T) {
	needRig(t)
	ec := etcdtest.Start(t, 1)
	dir := t.TempDir()
	db := filepath.Join(dir, "nfsrecover.db")
	s, err := store.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(func(tx *store.Tx) error {
		if _, _, err := tx.CldStart(); err != nil {
			return err
		}
		for i := range 300 {
			if err := tx.CldCreate(store.CldRecord{ID: []byte(fmt.Sprintf("client-%03d", i)), PrincHash: bytes.Repeat([]byte{byte(i)}, i%33)}); err != nil {
				return err
			}
		}
		_, err := tx.CldGraceStart() // clients of epoch 1 may reclaim
		return err
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.DumpFile(db)
	if err != nil {
		t.Fatal(err)
	}
	rig := etcdRig(t, ec, "moved")
	cmd := func(args ...string) (string, int) {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), nfsconf.EnvPath+"="+rig.conf)
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	rig.stop(syscall.SIGTERM) // the scope's nfsdcld is stopped for the move
	if out, code := cmd("cld", "push", "--db", db); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	if out, code := cmd("cld", "push", "--db", db); code != 1 || !strings.Contains(out, "--force") {
		t.Errorf("a second push: exit %d, want 1 naming --force\n%s", code, out)
	}
	rig.start()
	rig.call(getVersion())
	ds := rig.call(graceStart(2))
	got := map[string]string{}
	for _, d := range ds[:len(ds)-1] {
		m, _ := cld.Decode(d)
		got[string(m.Name)] = fmt.Sprintf("%x", m.PrincHash)
	}
	for _, r := range want.Cld.Records[want.Cld.Epochs.Recovery] {
		if h, ok := got[string(r.ID)]; !ok || h != fmt.Sprintf("%x", r.PrincHash) {
			t.Fatalf("GraceStart on etcd after push: %q missing or with another hash (%q)", r.ID, h)
		}
	}
	if len(got) != 300 {
		t.Fatalf("GraceStart streamed %d clients, want 300", len(got))
	}
	rig.stop(syscall.SIGTERM)
	back := filepath.Join(t.TempDir(), "back.db")
	if out, code := cmd("cld", "pull", "--db", back); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	pulled, err := store.DumpFile(back)
	if err != nil || pulled.Cld == nil {
		t.Fatalf("pulled database: %v", err)
	}
	// The pushed state was already in grace (current 2, recovery 1), so
	// the daemon's GraceStart kept both epochs and emptied the current
	// one, as nfsdcld does; pull brings exactly that back.
	e := pulled.Cld.Epochs
	if e.Current != 2 || e.Recovery != 1 || len(pulled.Cld.Records[1]) != 300 || len(pulled.Cld.Records[2]) != 0 {
		t.Errorf("pulled epochs %+v with %d reclaimable and %d current; want 2/1 with 300 and 0", e, len(pulled.Cld.Records[1]), len(pulled.Cld.Records[2]))
	}
	orig := map[string]string{}
	for _, r := range want.Cld.Records[1] {
		orig[string(r.ID)] = fmt.Sprintf("%x", r.PrincHash)
	}
	for _, r := range pulled.Cld.Records[1] {
		if h, ok := orig[string(r.ID)]; !ok || h != fmt.Sprintf("%x", r.PrincHash) {
			t.Fatalf("pulled %q with hash %x: not as pushed (%q)", r.ID, r.PrincHash, h)
		}
	}
	if out, code := cmd("cld", "pull", "--db", back); code != 1 {
		t.Errorf("a pull over existing state: exit %d, want 1\n%s", code, out)
	}
}
