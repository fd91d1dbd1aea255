//go:build !noetcd

package grace

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
)

var bin string

func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

func noConf(name string) (string, bool) {
	if name == "NFSRECOVER_NFS_CONF" {
		return "/nonexistent", true
	}
	return "", false
}

func run(t *testing.T, endpoints []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"nfsrecover grace", "--etcd-endpoints", strings.Join(endpoints, ","), "--etcd-prefix", "/t/applet/", "--timeout", "60s"}, args...)
	code := Main(full, nil, &out, &errb, noConf)
	return code, out.String(), errb.String()
}

// expect renders what ganesha-rados-grace's dump shows for a database.
func expect(cur, rec uint64, nodes map[string]grace.Flags) string {
	var b bytes.Buffer
	grace.Dump(&b, grace.DB{Current: cur, Recovery: rec, Nodes: nodes})
	return b.String()
}

func TestCommands(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	eps := ec.Endpoints()
	E, NE := grace.Enforcing, grace.Need|grace.Enforcing
	steps := []struct {
		args []string
		code int
		dump string // "" to skip
	}{
		{[]string{"dump"}, ExitOK, "cur=1 rec=0\n" + strings.Repeat("=", 54) + "\n"},
		{[]string{"add", "a", "b", "c"}, ExitOK, expect(1, 0, map[string]grace.Flags{"a": E, "b": E, "c": E})},
		{[]string{"add", "b"}, ExitRefused, ""},
		{[]string{"add"}, ExitRefused, ""},
		{[]string{"add", "bad id"}, ExitRefused, ""},
		{[]string{"noenforce", "a", "b", "c"}, ExitOK, expect(1, 0, map[string]grace.Flags{"a": 0, "b": 0, "c": 0})},
		{[]string{"join", "a"}, ExitOK, expect(1, 0, map[string]grace.Flags{"a": 0, "b": 0, "c": 0})},
		{[]string{"start", "b"}, ExitOK, expect(2, 1, map[string]grace.Flags{"a": 0, "b": NE, "c": 0})},
		{[]string{"join", "a"}, ExitOK, expect(2, 1, map[string]grace.Flags{"a": NE, "b": NE, "c": 0})},
		{[]string{"enforce", "c"}, ExitOK, ""},
		{[]string{"lift", "a"}, ExitOK, expect(2, 1, map[string]grace.Flags{"a": E, "b": NE, "c": E})},
		{[]string{"member", "a", "b"}, ExitOK, ""},
		{[]string{"member", "a", "zz"}, ExitRefused, ""},
		{[]string{"lift", "zz"}, ExitRefused, expect(2, 1, map[string]grace.Flags{"a": E, "b": NE, "c": E})},
		{[]string{"remove", "b"}, ExitOK, expect(2, 0, map[string]grace.Flags{"a": E, "c": E})},
		{[]string{"bogus"}, ExitRefused, ""},
		{[]string{"dump", "extra"}, ExitRefused, ""},
	}
	for _, s := range steps {
		code, _, stderr := run(t, eps, s.args...)
		if code != s.code {
			t.Fatalf("grace %v: exit %d, want %d (stderr %q)", s.args, code, s.code, stderr)
		}
		if code != ExitOK && stderr == "" {
			t.Errorf("grace %v failed without a message", s.args)
		}
		if s.dump == "" {
			continue
		}
		_, out, _ := run(t, eps, "dump")
		if out != s.dump {
			t.Fatalf("after grace %v dump:\n%s\nwant:\n%s", s.args, out, s.dump)
		}
	}
	code, out, _ := run(t, eps, "dump", "--json")
	var r report
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
		t.Fatalf("dump --json: %d %v\n%s", code, err, out)
	}
	if r.Current != 2 || r.InGrace || len(r.Nodes) != 2 || len(r.Etcd) != 3 || !r.Etcd[0].Healthy {
		t.Fatalf("dump --json: %+v", r)
	}
}

func TestUnreachable(t *testing.T) {
	code, _, stderr := run(t, []string{"http://127.0.0.1:9"}, "--timeout", "1s", "add", "a")
	if code != ExitUnavailable || !strings.Contains(stderr, "127.0.0.1:9") {
		t.Fatalf("etcd down: exit %d, stderr %q", code, stderr)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"nfsrecover grace", "dump"}, nil, &out, &errb, noConf); code != ExitRefused || !strings.Contains(errb.String(), "etcd-endpoints") {
		t.Fatalf("no endpoints: exit %d, stderr %q", code, errb.String())
	}
	conf := filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(conf, []byte("[nfsrecover]\netcd-endpoints = http://127.0.0.1:9\netcd-cert = /c.pem\n"), 0o644)
	withConf := func(name string) (string, bool) { return conf, name == "NFSRECOVER_NFS_CONF" }
	errb.Reset()
	if code := Main([]string{"nfsrecover grace", "dump"}, nil, &out, &errb, withConf); code != ExitRefused || !strings.Contains(errb.String(), "etcd-key") {
		t.Fatalf("a cert without its key: exit %d, stderr %q", code, errb.String())
	}
}

// TestAgentPausedPastLease stops the real agent process (SIGSTOP) for
// longer than its lease: its liveness key expires, but its NEED stays (NEED
// is not lease-bound) and grace stays in force; once it runs again it
// holds a new lease.
func TestAgentPausedPastLease(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	eps := ec.Endpoints()
	if code, _, stderr := run(t, eps, "add", "n1"); code != 0 {
		t.Fatal(stderr)
	}
	end := filepath.Join(t.TempDir(), "v4_end_grace")
	os.WriteFile(end, []byte("N\n"), 0o644)
	var logs testenv.SyncBuffer
	cmd := exec.Command(bin, "grace", "agent", "--etcd-endpoints", strings.Join(eps, ","), "--etcd-prefix", "/t/applet/",
		"--node", "n1", "--need-for", "0", "--lease-ttl", "2s", "--end-grace-file", end)
	cmd.Env = append(os.Environ(), "NFSRECOVER_NFS_CONF=/nonexistent")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	c, err := cluster.Dial(context.Background(), cluster.Config{Endpoints: eps, Prefix: "/t/applet/"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alive := func() bool { a, err := c.AliveNodes(context.Background()); return err == nil && a["n1"] }
	needs := func() bool {
		db, _, err := c.ReadGrace(context.Background())
		return err == nil && db.InGrace() && db.Nodes["n1"]&grace.Need != 0
	}
	if !testenv.WaitFor(20*time.Second, func() bool { return alive() && needs() }) {
		t.Fatalf("the agent never joined grace: %s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGSTOP)
	if !testenv.WaitFor(20*time.Second, func() bool { return !alive() }) {
		t.Fatal("the paused agent's lease never expired")
	}
	if !needs() {
		t.Fatal("NEED went with the lease: a paused or dead node must keep grace in force")
	}
	cmd.Process.Signal(syscall.SIGCONT)
	if !testenv.WaitFor(30*time.Second, alive) {
		t.Fatalf("the agent did not renew its liveness after the pause: %s", logs.String())
	}
	if code, _, stderr := run(t, eps, "lift", "n1"); code != 0 {
		t.Fatal(stderr)
	}
	if !testenv.WaitFor(20*time.Second, func() bool { b, _ := os.ReadFile(end); return strings.TrimSpace(string(b)) == "Y" }) {
		t.Fatalf("after the lift the agent did not end local grace: %s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent on SIGTERM: %v\n%s", err, logs.String())
	}
}
