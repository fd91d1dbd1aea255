package applets

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MaxSmall is the most "make build-small" may weigh, stripped: 6 MiB, for
// embedded and initramfs images.
const MaxSmall = 6 << 20

// TestBuildSmallSize runs "make build-small" (no SQLite, no etcd client)
// and checks the stripped binary's size, and that the grace applet of that
// build says what it lacks.
func TestBuildSmallSize(t *testing.T) {
	out := filepath.Join(t.TempDir(), "nfsrecover-small")
	cmd := exec.Command("make", "-s", "-C", "..", "build-small", "BIN="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-small: %v\n%s", err, b)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build-small: %d bytes (limit %d)", st.Size(), MaxSmall)
	if st.Size() > MaxSmall {
		t.Fatalf("build-small is %d bytes, over the %d-byte (6 MiB) limit", st.Size(), MaxSmall)
	}
	b, err := exec.Command(out, "grace", "dump").CombinedOutput()
	if err == nil || !strings.Contains(string(b), "without etcd support") {
		t.Fatalf("grace in build-small: %v %q", err, b)
	}
}
