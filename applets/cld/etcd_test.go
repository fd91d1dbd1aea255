//go:build linux && !noetcd && !nosqlite

package cld

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/etcdtest"
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
