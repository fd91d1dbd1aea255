package nfsconf

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
)

// realNfsconf runs nfs-utils' nfsconf --dump on path and returns its
// warnings (without the "nfsconf: " prefix) and its settings as Entries.
func realNfsconf(t *testing.T, path string) ([]string, []Entry) {
	t.Helper()
	cmd := exec.Command("nfsconf", "--file", path, "--dump")
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("nfsconf --file %s --dump: %v %s", path, err, errb.String())
	}
	var warns []string
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if l != "" {
			warns = append(warns, strings.TrimPrefix(l, "nfsconf: "))
		}
	}
	header := regexp.MustCompile(`^\[([^ "\]]+)(?: "([^"]*)")?\]$`)
	var entries []Entry
	var sec, sub string
	for _, l := range strings.Split(out.String(), "\n") {
		if m := header.FindStringSubmatch(l); m != nil {
			sec, sub = strings.ToLower(m[1]), strings.ToLower(m[2])
			continue
		}
		if tag, val, ok := strings.Cut(strings.TrimPrefix(l, " "), " = "); ok {
			entries = append(entries, Entry{sec, sub, strings.ToLower(tag), val})
		}
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Section, b.Section), cmp.Compare(a.Sub, b.Sub), cmp.Compare(a.Tag, b.Tag))
	})
	return warns, entries
}

// TestAgainstRealNfsconf parses every file in testdata/nfsconf with ours
// and with nfs-utils' nfsconf: the same warnings, word for word and in
// order, and the same settings.
func TestAgainstRealNfsconf(t *testing.T) {
	testenv.NeedTools(t, "nfsconf")
	files, _ := filepath.Glob("../../testdata/nfsconf/*.conf")
	if len(files) < 5 {
		t.Fatalf("only %d test files", len(files))
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		data, err := os.ReadFile(abs)
		if err != nil {
			t.Fatal(err)
		}
		wantWarns, wantEntries := realNfsconf(t, abs)
		c := Parse(abs, data)
		var gotWarns []string
		for _, w := range c.Warnings() {
			gotWarns = append(gotWarns, w.String())
		}
		if fmt.Sprint(gotWarns) != fmt.Sprint(wantWarns) {
			t.Errorf("%s: warnings\n ours: %q\n real: %q", filepath.Base(f), gotWarns, wantWarns)
		}
		if got := c.Entries(); fmt.Sprint(got) != fmt.Sprint(wantEntries) {
			t.Errorf("%s: settings\n ours: %q\n real: %q", filepath.Base(f), got, wantEntries)
		}
	}
}
