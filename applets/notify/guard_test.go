//go:build linux

package notify

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"nfsrecover/internal/testenv"
)

// TestMain runs the package in a mount namespace of its own (testenv), so
// that the oracle test can give both sm-notifys a private /run,
// /var/lib/nfs and nfs.conf.
func TestMain(m *testing.M) { os.Exit(testenv.Isolate(m.Run)) }

// bindOver mounts src over dst in this test's private mount namespace.
func bindOver(t *testing.T, src, dst string) {
	t.Helper()
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s over %s: %v", src, dst, err)
	}
	t.Cleanup(func() { syscall.Unmount(dst, syscall.MNT_DETACH) })
}

// The once-per-boot guard decides as nfs-utils' sm-notify does for each
// spelling of -P: the real tool and ours run on the same private
// /var/lib/nfs and /run, and create /run/sm-notify.pid in the same cases.
func TestGuardAgainstRealSmNotify(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "/usr/sbin/sm-notify")
	if !testenv.Isolated() {
		testenv.Unavailable(t, "needs the private mount namespace of testenv.Isolate")
	}
	varlib := t.TempDir()
	for _, d := range []string{"sm", "sm.bak"} {
		os.Mkdir(filepath.Join(varlib, d), 0o700)
	}
	bindOver(t, varlib, "/var/lib/nfs")
	conf := filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(conf, []byte("[sm-notify]\nlift-grace = n\n"), 0o644)
	if _, err := os.Stat("/etc/nfs.conf"); err != nil {
		t.Fatalf("/etc/nfs.conf: %v", err)
	}
	bindOver(t, conf, "/etc/nfs.conf")
	other := t.TempDir()
	for _, d := range []string{"sm", "sm.bak"} {
		os.Mkdir(filepath.Join(other, d), 0o700)
	}
	const guard = "/run/sm-notify.pid"
	env := func(k string) (string, bool) { return conf, k == "NFSRECOVER_NFS_CONF" }
	for _, dir := range []string{"/var/lib/nfs", "/var/lib/nfs/", other} {
		os.Remove(guard)
		out, err := exec.Command("/usr/sbin/sm-notify", "-d", "-P", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("real sm-notify -P %s: %v %s", dir, err, out)
		}
		_, realErr := os.Stat(guard)
		os.Remove(guard)
		var stdout, stderr bytes.Buffer
		cfg, _, done := configure([]string{"sm-notify", "-d", "-P", dir}, &stdout, &stderr, env)
		if done {
			t.Fatalf("configure -P %s: %s", dir, stderr.String())
		}
		onceThisBoot(cfg, slog.New(slog.DiscardHandler))
		_, ourErr := os.Stat(guard)
		if (realErr == nil) != (ourErr == nil) {
			t.Errorf("-P %s: the real sm-notify created the guard: %v; ours: %v", dir, realErr == nil, ourErr == nil)
		}
	}
}
