//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
)

// TestMakeInstallUninstall: make install honours DESTDIR and PREFIX and
// puts the binary, every applet's name, the man page and the units where
// they belong; make uninstall removes all of it.
func TestMakeInstallUninstall(t *testing.T) {
	testenv.NeedTools(t, "make")
	dest := t.TempDir()
	make := func(target string) {
		t.Helper()
		cmd := exec.Command("make", "-C", "..", target, "DESTDIR="+dest, "PREFIX=/opt/nfsr")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	make("install")
	sbin := filepath.Join(dest, "opt/nfsr/sbin")
	for _, f := range []string{"sbin/nfsrecover", "sbin/rpc.statd", "sbin/sm-notify", "sbin/nfsdcltrack", "sbin/nfsdcld",
		"share/man/man8/nfsrecover-cltrack.8", "share/nfsrecover/systemd/rpc-statd.service"} {
		if _, err := os.Stat(filepath.Join(dest, "opt/nfsr", f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	out, err := exec.Command(filepath.Join(sbin, "rpc.statd"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nfsrecover") {
		t.Errorf("installed rpc.statd --version: %v %s", err, out)
	}
	make("uninstall")
	var left []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after uninstall: %q", left)
	}
}
