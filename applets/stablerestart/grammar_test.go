package stablerestart

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrammar: options before or after the verb, a positional FILE, extra
// arguments and a missing file, as one table (the CLI grammar every
// applet follows).
func TestGrammar(t *testing.T) {
	good, bad := "s1-example-amd64.hex", "s3-trailing-1-byte.hex"
	cases := []struct {
		name string
		args func(f *fixture, other string) []string // after "stablerestart"
		want int
		out  string // in stdout+stderr
	}{
		{"file before the verb", func(f *fixture, o string) []string { return []string{"--file", o, "verify"} }, 1, ""},
		{"file after the verb", func(f *fixture, o string) []string { return []string{"verify", "--file", o} }, 1, ""},
		{"positional file", func(f *fixture, o string) []string { return []string{"verify", o} }, 1, ""},
		{"arch after the verb", func(f *fixture, o string) []string { return []string{"verify", "--arch", "amd64", o} }, 1, ""},
		{"default file", func(f *fixture, o string) []string { return []string{"--file", f.live, "verify"} }, 0, ""},
		{"extra argument", func(f *fixture, o string) []string { return []string{"verify", o, "extra"} }, 1, `unexpected argument "extra"`},
		{"file twice", func(f *fixture, o string) []string { return []string{"verify", "--file", o, o} }, 1, "give the file once"},
		{"missing file", func(f *fixture, o string) []string { return []string{"verify", o + ".nope"} }, 1, "no such file"},
		{"missing file, inspect", func(f *fixture, o string) []string { return []string{"inspect", o + ".nope"} }, 1, "no such file"},
		{"missing file, import", func(f *fixture, o string) []string { return []string{"import", o + ".nope"} }, 1, "no such file"},
		{"db after the verb", func(f *fixture, o string) []string { return []string{"import", "--db", f.db + "2", f.live} }, 0, f0db2},
		{"unknown option", func(f *fixture, o string) []string { return []string{"verify", "--bogus"} }, 1, "bogus"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.write(f.live, loadHex(t, good))
			other := filepath.Join(f.dir, "other")
			f.write(other, loadHex(t, bad))
			var out, errb bytes.Buffer
			args := append([]string{"stablerestart"}, c.args(f, other)...)
			code := run(args, &out, &errb, func(string) (string, bool) { return "", false }, func(string) (bool, error) { return false, nil })
			all := out.String() + errb.String()
			want := strings.ReplaceAll(c.out, f0db2, f.db+"2")
			if code != c.want || !strings.Contains(all, want) {
				t.Errorf("%q: exit %d, want %d with %q\n%s", args, code, c.want, want, all)
			}
		})
	}
}

// f0db2 stands for the fixture's second database path in expectations.
const f0db2 = "\x00db2"
