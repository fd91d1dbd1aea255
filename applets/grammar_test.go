package applets

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrammarAcrossApplets: the same command-line rules everywhere (issue
// "one grammar"): options before or after the verb, unknown options and
// commands named, a missing file said once, --version everywhere.
func TestGrammarAcrossApplets(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	cases := []struct {
		args []string
		want int
		out  []string // each must appear in stdout+stderr
		once string   // must appear exactly once
	}{
		{[]string{"nfsrecover", "statd", "--bogus"}, 0, []string{"--bogus", "Usage:"}, ""}, // nfs-utils exits 0 here
		{[]string{"nfsrecover", "cltrack", "--db", missing, "export", "--to", dir}, 1, []string{"no such file"}, missing},
		{[]string{"nfsrecover", "cld", "--db", missing, "export", "--to", dir}, 1, []string{"no such file"}, missing},
		{[]string{"nfsrecover", "statd", "--db", missing, "import", "--from", filepath.Join(dir, "nope")}, 1, []string{"nope", "no such file"}, ""},
		{[]string{"nfsrecover", "db", "--db", missing, "dump"}, 1, []string{"no such file"}, missing},
		{[]string{"nfsrecover", "db", "dump", "--db", missing}, 1, []string{"no such file"}, missing},
		{[]string{"nfsrecover", "db", "bogus"}, 1, []string{`unknown command "bogus"`}, ""},
		{[]string{"nfsrecover", "db", "dump", "--db", missing, "extra"}, 1, []string{`unexpected argument "extra"`}, ""},
		{[]string{"nfsrecover", "cld", "export", "--to", dir, "--db", missing, "extra"}, 1, []string{`unexpected argument "extra"`}, ""},
		{[]string{"nfsrecover", "cltrack", "import", "--db", missing, "extra"}, 1, []string{`unexpected argument "extra"`}, ""},
		{[]string{"nfsrecover", "statd", "export", "--to", dir, "--db", missing, "extra"}, 1, []string{`unexpected argument "extra"`}, ""},
		{[]string{"nfsrecover", "status", "--db", missing, "extra"}, 1, []string{`unexpected argument "extra"`}, ""},
		{[]string{"nfsrecover", "notify", "--help"}, 0, []string{"[-dfn]"}, ""},
		{[]string{"nfsrecover", "cltrack", "import", "--from", "testdata", "--db", missing}, 1, []string{"does not look like a v4recovery directory"}, ""},
		{[]string{"nfsrecover", "cld", "import", "--from", "testdata", "--format", "v4recovery", "--db", missing}, 1, []string{"does not look like a v4recovery directory"}, ""},
	}
	defer func() {
		if _, err := os.Stat(missing); err == nil {
			t.Error("a refused command created the database")
		}
	}()
	for _, c := range cases {
		var out bytes.Buffer
		code := dispatch(c.args, host{goos: "linux"}, nil, &out, &out)
		all := out.String()
		ok := code == c.want && (c.once == "" || strings.Count(all, c.once) == 1)
		for _, w := range c.out {
			ok = ok && strings.Contains(all, w)
		}
		if !ok {
			t.Errorf("%q: exit %d (want %d), output:\n%s", c.args, code, c.want, all)
		}
	}
}

// TestVersionEverywhere: --version answers for every applet and link.
func TestVersionEverywhere(t *testing.T) {
	for _, a := range Table {
		for _, argv := range append([][]string{{"nfsrecover", a.Name, "--version"}}, links(a)...) {
			var out bytes.Buffer
			code := dispatch(argv, host{goos: "linux"}, nil, &out, &out)
			if code != 0 || !strings.Contains(out.String(), "nfsrecover") {
				t.Errorf("%q: exit %d, %q", argv, code, out.String())
			}
		}
	}
}

func links(a Applet) [][]string {
	var out [][]string
	for _, l := range a.Links {
		out = append(out, []string{"/usr/sbin/" + l, "--version"})
	}
	return out
}
