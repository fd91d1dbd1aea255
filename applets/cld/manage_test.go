//go:build linux

package cld

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"nfsrecover/internal/testenv"
)

// streamOf boots a daemon on storage and returns the GraceStart stream
// (every downcall of the boot, as describe shows them).
func streamOf(t *testing.T, kind, storage string) []string {
	t.Helper()
	r := newRigAt(t, kind, storage)
	out := r.transcript(boot)
	r.stop(syscall.SIGTERM)
	return out
}

func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	code, out := exitOf(t, exec.Command(argv[0], argv[1:]...))
	if code != 0 {
		t.Fatalf("%q: exit %d\n%s", argv, code, out)
	}
	return out
}

// TestRoundTripThroughRealNfsdcld: the real nfsdcld's database, imported
// and exported again, makes the real nfsdcld stream the same clients; our
// daemon on the imported state streams them too. The source is never
// changed.
func TestRoundTripThroughRealNfsdcld(t *testing.T) {
	needRig(t)
	src := t.TempDir()
	real := newRigAt(t, "real", src)
	steps := seq(boot)
	for i := range 1100 {
		steps = append(steps, call(create(2, "rt-client-"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i), byte(i >> 8)}),
			map[bool]string{true: "princ"}[i%2 == 0])))
	}
	steps = append(steps, call(graceDone(2)), call(create(2, "after-grace", "")))
	real.transcript(steps)
	real.stop(syscall.SIGTERM)
	srcDB := filepath.Join(src, "main.sqlite")
	sum := fileSum(t, srcDB)
	backup := filepath.Join(t.TempDir(), "main.sqlite")
	copyFile(t, srcDB, backup)

	ours := t.TempDir()
	db := filepath.Join(ours, "nfsrecover.db")
	mustRun(t, bin, "cld", "import", "--from", src, "--db", db)
	if fileSum(t, srcDB) != sum {
		t.Fatal("import changed the source database")
	}
	exported := t.TempDir()
	mustRun(t, bin, "cld", "export", "--to", exported, "--db", db)

	want := streamOf(t, "real", filepath.Dir(backup))
	if len(want) < 1100 {
		t.Fatalf("the original streams only %d downcalls", len(want))
	}
	if got := streamOf(t, "real", exported); !slices.Equal(got, want) {
		t.Errorf("nfsdcld on the exported database streams %d downcalls, on the original %d; first difference at %d",
			len(got), len(want), firstDiffIndex(got, want))
	}
	if got := streamOf(t, "ours", ours); !slices.Equal(got, want) {
		t.Errorf("ours on the imported database streams %d downcalls, nfsdcld on the original %d; first difference at %d",
			len(got), len(want), firstDiffIndex(got, want))
	}
}

// TestImportRefusesNfsdcltrackAsNfsdcld: nfsdcld 2.6.2 rewrites an
// nfsdcltrack database into one neither tool opens; we refuse, or import
// it as nfsdcltrack's, and never touch it.
func TestImportRefusesNfsdcltrackAsNfsdcld(t *testing.T) {
	needRig(t)
	ct := nfsdcltrackDB(t, "636c69656e7431", "6332")
	sum := fileSum(t, filepath.Join(ct, "main.sqlite"))
	db := filepath.Join(t.TempDir(), "nfsrecover.db")
	code, out := exitOf(t, exec.Command(bin, "cld", "import", "--format", "nfsdcld", "--from", ct, "--db", db))
	if code == 0 || !strings.Contains(out, "nfsdcltrack") {
		t.Errorf("--format nfsdcld on an nfsdcltrack database: exit %d\n%s", code, out)
	}
	mustRun(t, bin, "cld", "import", "--from", ct, "--db", db)
	if fileSum(t, filepath.Join(ct, "main.sqlite")) != sum {
		t.Error("import changed the nfsdcltrack database")
	}
	dump := mustRun(t, bin, "db", "dump", "--db", db)
	for _, id := range []string{"636c69656e7431", "6332"} {
		if !strings.Contains(dump, id) {
			t.Errorf("db dump lacks client %s:\n%s", id, dump)
		}
	}
}

// TestMigrationFromNfsdcltrack: a host whose kernel moves from
// nfsdcltrack to nfsdcld keeps its clients. The real nfsdcld, pointed at
// an nfsdcltrack database through nfs.conf, and ours, on a database the
// cltrack applet filled, stream the same clients at the first boot.
func TestMigrationFromNfsdcltrack(t *testing.T) {
	needRig(t)
	ids := []string{"636c69656e7431", "6332", "7a7a7a7a"}
	ct := nfsdcltrackDB(t, ids...)
	overrideNFSConf(t, "[nfsdcltrack]\nstoragedir="+ct+"\n")
	want := streamOf(t, "real", t.TempDir())

	ours := t.TempDir()
	db := filepath.Join(ours, "nfsrecover.db")
	mustRun(t, bin, "cltrack", "import", "--from", nfsdcltrackDB(t, ids...), "--db", db)
	got := streamOf(t, "ours", ours)
	if len(want) != len(ids)+2 || !slices.Equal(got, want) {
		t.Fatalf("first boot after nfsdcltrack:\nours:\n%s\nnfsdcld:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// nfsdcltrackDB makes an nfsdcltrack database with the real nfsdcltrack.
func nfsdcltrackDB(t *testing.T, hexIDs ...string) string {
	t.Helper()
	dir := t.TempDir()
	mustRun(t, "/usr/sbin/nfsdcltrack", "-f", "-s", dir, "init")
	for _, id := range hexIDs {
		mustRun(t, "/usr/sbin/nfsdcltrack", "-f", "-s", dir, "create", id)
	}
	return dir
}

// overrideNFSConf bind-mounts a file over /etc/nfs.conf for this test
// (the package runs in a mount namespace of its own), because nfsdcld
// reads only that file.
func overrideNFSConf(t *testing.T, content string) {
	t.Helper()
	if !testenv.Isolated() {
		testenv.Unavailable(t, "overriding /etc/nfs.conf needs the test's own mount namespace (root)")
		return
	}
	f := filepath.Join(t.TempDir(), "nfs.conf")
	os.WriteFile(f, []byte(content), 0o644)
	if err := syscall.Mount(f, "/etc/nfs.conf", "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount nfs.conf: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount("/etc/nfs.conf", 0) })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func firstDiffIndex(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFirstStartAdoptsNfsdcld: started with -s on nfsdcld's storage
// directory, ours adopts its main.sqlite at the first start and streams
// the same clients as nfsdcld would; the file is left as it was.
func TestFirstStartAdoptsNfsdcld(t *testing.T) {
	needRig(t)
	storage := t.TempDir()
	real := newRigAt(t, "real", storage)
	real.transcript(seq(boot, []step{call(create(2, "kept-1", "p")), call(create(2, "kept-2", "")), call(graceDone(2))}))
	real.stop(syscall.SIGTERM)
	sum := fileSum(t, filepath.Join(storage, "main.sqlite"))
	backup := t.TempDir()
	copyFile(t, filepath.Join(storage, "main.sqlite"), filepath.Join(backup, "main.sqlite"))
	want := streamOf(t, "real", backup)
	got := streamOf(t, "ours", storage)
	if len(want) != 4 || !slices.Equal(got, want) {
		t.Fatalf("first boot on nfsdcld's directory:\nours:\n%s\nnfsdcld:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fileSum(t, filepath.Join(storage, "main.sqlite")) != sum {
		t.Error("adopting changed nfsdcld's database")
	}
}
