package notify

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
)

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	os.WriteFile(conf, []byte("[sm-notify]\nretry-time = 2\nupdate-state = n\nlift-grace = no\noutgoing-port = 700\n[statd]\nstate-directory-path = /srv/nfs\n"), 0o644)
	env := testenv.Lookup(map[string]string{"NFSRECOVER_NFS_CONF": conf})
	var out, errb bytes.Buffer
	cfg, _, done := configure([]string{"sm-notify"}, &out, &errb, env)
	if done || cfg.retry != 2*time.Minute || !cfg.noUpdate || cfg.liftGrace || cfg.port != 700 || cfg.stateDir != "/srv/nfs" || cfg.defaultDir {
		t.Errorf("nfs.conf: %+v", cfg)
	}
	cfg, _, _ = configure([]string{"sm-notify", "-dfn", "-m", "0", "-p", "900", "-v", "me.example", "-P", "/x"}, &out, &errb, env)
	if !cfg.foreground || !cfg.force || !cfg.noUpdate || cfg.retry != 0 || cfg.port != 900 || cfg.name != "me.example" || cfg.stateDir != "/x" {
		t.Errorf("command line: %+v", cfg)
	}
	for _, bad := range [][]string{{"sm-notify", "extra"}, {"sm-notify", "-p", "0"}, {"sm-notify", "-m", "x"}, {"sm-notify", "-q"}} {
		out.Reset()
		if _, code, done := configure(bad, &out, &errb, env); !done || code != 1 || !strings.HasPrefix(out.String(), "Usage: sm-notify") {
			t.Errorf("%v: done=%v code=%d", bad, done, code)
		}
	}
}

func TestOncePerBootGuard(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	pid := filepath.Join(t.TempDir(), "sm-notify.pid")
	cfg := config{pidFile: pid, defaultDir: true}
	if !onceThisBoot(cfg, log) {
		t.Fatal("first run refused")
	}
	if b, _ := os.ReadFile(pid); !strings.HasSuffix(string(b), "\n") {
		t.Errorf("guard file %q", b)
	}
	if onceThisBoot(cfg, log) {
		t.Error("second run in the same boot allowed")
	}
	for _, c := range []config{
		{pidFile: pid, defaultDir: true, force: true},
		{pidFile: pid, defaultDir: true, noUpdate: true},
		{pidFile: pid, defaultDir: false},
	} {
		if !onceThisBoot(c, log) {
			t.Errorf("%+v must bypass the guard (-f, -n, non-default -P)", c)
		}
	}
}

// When the state advances, as nfs-utils' sm-notify decides it: every run
// outside the once-per-boot guard (-f, or a non-default -P) advances it,
// -n never does.
func TestPrepareOptions(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	cases := []struct {
		args        []string
		bump, force bool
	}{
		{[]string{"sm-notify"}, true, false},
		{[]string{"sm-notify", "-f"}, true, true},
		{[]string{"sm-notify", "-P", "/srv/ha/statd"}, true, true},
		{[]string{"sm-notify", "-P", "/var/lib/nfs"}, true, false}, // the default, named: guarded
		{[]string{"sm-notify", "-P", "/var/lib/nfs/"}, true, true}, // another spelling: not
		{[]string{"sm-notify", "-n", "-P", "/srv/ha/statd"}, false, true},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		cfg, _, done := configure(c.args, &out, &errb, env)
		if done {
			t.Fatalf("%v: %s %s", c.args, out.String(), errb.String())
		}
		if o := prepareOptions(cfg, "boot"); o.Bump != c.bump || o.Force != c.force {
			t.Errorf("%v: bump %v force %v, want %v %v", c.args, o.Bump, o.Force, c.bump, c.force)
		}
	}
}

// TestBadFloatingIPs: sm-notify reads floating-ips only to tell whether
// -v names a floating IP (then it notifies that IP's clients from etcd).
// Without -v a bad list is not its concern and it starts; with -v it
// cannot tell which list to notify and refuses, naming the setting,
// before it touches the state directory or the guard.
func TestBadFloatingIPs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	os.WriteFile(conf, []byte("[nfsrecover]\nfloating-ips = 192.0.2.10/24\n"), 0o644)
	env := testenv.Lookup(map[string]string{"NFSRECOVER_NFS_CONF": conf})
	var out, errb bytes.Buffer
	cfg, code, done := configure([]string{"sm-notify", "-f", "-P", dir}, &out, &errb, env)
	if done || code != 0 {
		t.Fatalf("without -v a bad floating-ips stopped sm-notify: code %d %s", code, errb.String())
	}
	cfg, _, done = configure([]string{"sm-notify", "-f", "-v", "127.0.0.1", "-P", dir}, &out, &errb, env)
	if done {
		t.Fatalf("configure refused: %s", errb.String())
	}
	cfg.pidFile, cfg.db = filepath.Join(dir, "guard.pid"), filepath.Join(dir, "never.db")
	var logs bytes.Buffer
	if code := run(cfg, []string{"sm-notify"}, slog.New(slog.NewTextHandler(&logs, nil)), env, &errb); code != 1 {
		t.Fatalf("-v with a bad floating-ips: exit %d, want 1", code)
	}
	if !strings.Contains(logs.String(), "floating-ips") {
		t.Errorf("the refusal does not name floating-ips: %s", logs.String())
	}
	for _, f := range []string{cfg.db, filepath.Join(dir, "sm.bak")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s was created (%v)", f, err)
		}
	}
}
