package lazyfs

import (
	"os"
	"path/filepath"
	"testing"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/fileutil"
)

// mounted mounts a fresh file system and returns it with a function that
// cuts the power: unmount, cut, mount again.
func mounted(t *testing.T) (*FS, string, func()) {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Unavailable(t, "/dev/fuse: %v", err)
	}
	f := New()
	dir := t.TempDir()
	m, err := f.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount() })
	cut := func() {
		t.Helper()
		if err := m.Unmount(); err != nil {
			t.Fatal(err)
		}
		f.Cut()
		if m, err = f.Mount(dir); err != nil {
			t.Fatal(err)
		}
	}
	return f, dir, cut
}

func write(t *testing.T, path, data string, fsync bool) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if fsync {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	if err := fileutil.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

func content(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + filepath.Base(path) + " missing>"
	}
	return string(b)
}

// The rules of durability, one case each, each in a directory of its own
// (a directory fsync makes all of that directory's entries durable).
func TestCutKeepsOnlyWhatWasSynced(t *testing.T) {
	_, dir, cut := mounted(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, d := range []string{"overwrite", "new-file", "new-entry", "rename", "atomic"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(t, dir)
	// Contents synced, then overwritten without a sync.
	write(t, p("overwrite/f"), "v1", true)
	syncDir(t, p("overwrite"))
	write(t, p("overwrite/f"), "v2 unsynced", false)
	// A new file whose data was synced but whose directory was not.
	write(t, p("new-file/f"), "data", true)
	// A new file with its directory synced but not its data.
	write(t, p("new-entry/f"), "data", false)
	syncDir(t, p("new-entry"))
	// A rename over a durable file, the directory not synced.
	write(t, p("rename/f"), "old", true)
	syncDir(t, p("rename"))
	write(t, p("rename/f.tmp"), "new", true)
	if err := os.Rename(p("rename/f.tmp"), p("rename/f")); err != nil {
		t.Fatal(err)
	}
	// The durable way: temporary file, fsync, rename, directory fsync.
	if err := fileutil.WriteAtomic(p("atomic/f"), true, 0o600, func(tmp string) error {
		return os.WriteFile(tmp, []byte("atomic"), 0o600)
	}); err != nil {
		t.Fatal(err)
	}
	cut()
	want := map[string]string{
		"overwrite/f": "v1",
		"new-file/f":  "<f missing>",
		"new-entry/f": "",
		"rename/f":    "old",
		"atomic/f":    "atomic",
	}
	for name, w := range want {
		if got := content(p(name)); got != w {
			t.Errorf("%s after the cut: %q, want %q", name, got, w)
		}
	}
	if left, _ := filepath.Glob(p("atomic/.f.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files after the cut: %v", left)
	}
}

// With IgnoreSync nothing written after the mount survives: the switch
// the power-cut tests use to prove they can fail.
func TestIgnoreSyncLosesEverything(t *testing.T) {
	f, dir, cut := mounted(t)
	f.IgnoreSync(true)
	write(t, filepath.Join(dir, "f"), "data", true)
	syncDir(t, dir)
	cut()
	if _, err := os.Stat(filepath.Join(dir, "f")); !os.IsNotExist(err) {
		t.Errorf("a file written with IgnoreSync survived the cut: %v", err)
	}
	if f.Syncs() < 2 {
		t.Errorf("%d syncs counted, want the file's and the directory's", f.Syncs())
	}
}

// Hard links, truncation and removal through the mount behave as on a
// disk, and a removal that was not made durable is undone by a cut.
func TestLinkTruncateRemove(t *testing.T) {
	_, dir, cut := mounted(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	write(t, p("a"), "0123456789", true)
	if err := os.Link(p("a"), p("b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p("b"), 4); err != nil {
		t.Fatal(err)
	}
	if got := content(p("a")); got != "0123" {
		t.Errorf("truncating a link: %q", got)
	}
	syncDir(t, dir)
	os.Remove(p("a"))
	cut()
	if got := content(p("a")); got != "0123456789" {
		t.Errorf("after the cut, a = %q: the unsynced removal and truncation must be undone", got)
	}
	if got := content(p("b")); got != "0123456789" {
		t.Errorf("after the cut, b = %q", got)
	}
}
