package applets

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestEveryHelpGolden pins every applet's --help (and nfsrecover's), the
// text the man pages are generated from: a change to an option shows up
// here for review.
func TestEveryHelpGolden(t *testing.T) {
	t.Setenv("NFSRECOVER_NFS_CONF", "/nonexistent") // defaults, not this host's nfs.conf
	for _, a := range Table {
		var out bytes.Buffer
		dispatch([]string{"nfsrecover", a.Name, "--help"}, host{goos: "linux"}, nil, &out, &out)
		golden(t, "help-"+a.Name+".txt", out.String())
	}
}
