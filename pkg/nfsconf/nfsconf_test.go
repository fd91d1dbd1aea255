package nfsconf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseValues(t *testing.T) {
	src := `# comment
; also comment
[nfsdcltrack]
 storagedir = /var/lib/x   # trailing comment
Debug=1
[ NFSRecover ]
db = "/a b/c.db"   ignored after quote
quoted = 'single # kept'
semi = v;after
empty =
cont = one \
two
[statd "host1"]
port = 99
[Statd]
port = 1
port = 2
`
	c := Parse("t.conf", []byte(src))
	cases := []struct{ sec, sub, tag, want string }{
		{"nfsdcltrack", "", "storagedir", "/var/lib/x"},
		{"NFSDCLTRACK", "", "DEBUG", "1"},
		{"nfsrecover", "", "db", "/a b/c.db"},
		{"nfsrecover", "", "quoted", "single # kept"},
		{"nfsrecover", "", "semi", "v"},
		{"nfsrecover", "", "cont", "one   two"},
		{"statd", "HOST1", "port", "99"},
		{"statd", "", "port", "2"},
	}
	for _, k := range cases {
		got, ok := c.GetSub(k.sec, k.sub, k.tag)
		if !ok || got != k.want {
			t.Errorf("[%s %q] %s = %q,%v want %q", k.sec, k.sub, k.tag, got, ok, k.want)
		}
	}
	if _, ok := c.Get("nfsrecover", "empty"); ok {
		t.Errorf("empty value must be ignored")
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("unexpected warnings %v", c.Warnings())
	}
}

func TestWarnings(t *testing.T) {
	src := "key = before section\n[open\nx = 1\n[s]\njunk line\n= novalue\nq = \"unterminated\n[t \"sub]\ny = 2\nlast = unterminated"
	c := Parse("w.conf", []byte(src))
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.String())
	}
	// The words and their order are compared with nfs-utils' nfsconf in
	// TestAgainstRealNfsconf (testdata/nfsconf/warnings.conf is this file).
	if len(got) != 8 {
		t.Errorf("%d warnings, want 8:\n%s", len(got), strings.Join(got, "\n"))
	}
	// A subsection with an unmatched quote falls back to the plain section.
	if v, _ := c.Get("t", "y"); v != "2" {
		t.Errorf("[t] y = %q", v)
	}
	if _, ok := c.Get("s", "last"); ok {
		t.Errorf("unterminated last line must be ignored")
	}
}

func TestBoolIntEnv(t *testing.T) {
	c := Parse("b.conf", []byte("[s]\na=Yes\nb=off\nc=maybe\nn= 42abc\nm=-3\nz=x\ne=$NFSCONF_T\nf=$MISSING\n[environment]\nMISSING=fromsection\n"))
	c.Getenv = func(k string) string {
		if k == "NFSCONF_T" {
			return "fromenv"
		}
		return ""
	}
	if !c.Bool("s", "a", false) || c.Bool("s", "b", true) || !c.Bool("s", "c", true) || c.Bool("s", "c", false) {
		t.Errorf("bool parsing wrong")
	}
	if !c.Bool("s", "unset", true) {
		t.Errorf("unset bool must give default")
	}
	if c.Int("s", "n", 0) != 42 || c.Int("s", "m", 0) != -3 || c.Int("s", "z", 7) != 0 || c.Int("s", "unset", 7) != 7 {
		t.Errorf("int parsing wrong: %d %d %d", c.Int("s", "n", 0), c.Int("s", "m", 0), c.Int("s", "z", 7))
	}
	if v, _ := c.Get("s", "e"); v != "fromenv" {
		t.Errorf("$ENV: %q", v)
	}
	if v, _ := c.Get("s", "f"); v != "fromsection" {
		t.Errorf("$ENV fallback to [environment]: %q", v)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDropInsAndIncludes(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "nfs.conf")
	write(t, main, "[a]\nx = main\ny = main\ninclude = sub/inc.conf\ninclude = -missing.conf\ninclude = also-missing.conf\n")
	write(t, filepath.Join(dir, "sub/inc.conf"), "z = included\n[b]\nw = inc\n")
	write(t, main+".d/10-late.conf", "[a]\nx = ten\n")
	write(t, main+".d/9-early.conf", "[a]\nx = nine\ny = nine\n")
	write(t, main+".d/.hidden.conf", "[a]\nx = hidden\n")
	write(t, main+".d/notconf.txt", "[a]\nx = txt\n")
	write(t, main+".d/self.conf", "[c]\ninclude = self.conf\n")
	c := Load(main)
	for _, k := range [][3]string{{"a", "x", "ten"}, {"a", "y", "nine"}, {"a", "z", "included"}, {"b", "w", "inc"}} {
		if v, _ := c.Get(k[0], k[1]); v != k[2] {
			t.Errorf("[%s] %s = %q, want %q", k[0], k[1], v, k[2])
		}
	}
	var msgs []string
	for _, w := range c.Warnings() {
		msgs = append(msgs, w.String())
	}
	all := strings.Join(msgs, "\n")
	// One warning, in nfs-utils' words (which do not name the file): the
	// required include warns, the optional one (-path) does not.
	if n := strings.Count(all, "error loading included config"); n != 1 {
		t.Errorf("%d warnings for a missing required and a missing optional include, want 1:\n%s", n, all)
	}
	if !strings.Contains(all, "nested too deeply") {
		t.Errorf("self-include must be bounded:\n%s", all)
	}
}

func TestMainFiles(t *testing.T) {
	if got := MainFiles("/etc/nfs.conf"); !reflect.DeepEqual(got, []string{"/usr/etc/nfs.conf", "/etc/nfs.conf"}) {
		t.Errorf("MainFiles = %v", got)
	}
	if got := MainFiles("/tmp/x.conf"); !reflect.DeepEqual(got, []string{"/tmp/x.conf"}) {
		t.Errorf("MainFiles = %v", got)
	}
}

func TestVersionCompare(t *testing.T) {
	// The order glibc documents for strverscmp, plus drop-in style names.
	want := []string{"000", "00", "01", "010", "09", "0", "1", "9", "10",
		"a", "a1", "a2", "a10", "a10b", "b"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, VersionCompare)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	for _, s := range want {
		if VersionCompare(s, s) != 0 {
			t.Errorf("%q != itself", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/fuzz/nfsconf/*.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[s \"x\"]\nk = \"v\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Parse("/nonexistent/fuzz.conf", data)
		for _, w := range c.Warnings() {
			if !w.Plain && !strings.HasPrefix(w.String(), "config error at ") {
				t.Fatalf("bad warning %q", w)
			}
		}
		for k := range c.values {
			if c.values[k] == "" {
				t.Fatalf("empty value stored for %v", k)
			}
		}
		// Round trip: the settings written out as a file read back the same.
		text, ok := render(c.Entries())
		if !ok {
			return
		}
		back := Parse("/nonexistent/again.conf", []byte(text)).Entries()
		if fmt.Sprint(back) != fmt.Sprint(c.Entries()) {
			t.Fatalf("round trip:\n%q\n->\n%q", c.Entries(), back)
		}
	})
}

func FuzzVersionCompare(f *testing.F) {
	f.Add("10-a.conf", "9-b.conf")
	f.Fuzz(func(t *testing.T, a, b string) {
		if x, y := VersionCompare(a, b), VersionCompare(b, a); x != -y {
			t.Fatalf("not antisymmetric: %q %q -> %d %d", a, b, x, y)
		}
	})
}

// render writes entries as an nfs.conf file, values quoted; ok is false
// for names and values no quoting can carry.
func render(entries []Entry) (string, bool) {
	var b strings.Builder
	var sec, sub string
	for i, e := range entries {
		if strings.ContainsAny(e.Section, "]\"\n\\ \t") || strings.ContainsAny(e.Sub, "\"]\n\\") ||
			strings.ContainsAny(e.Tag, "=\n\\\"'") || strings.ContainsAny(e.Value, "\n\\") ||
			strings.Contains(e.Value, "\"") && strings.Contains(e.Value, "'") || strings.EqualFold(e.Tag, "include") {
			return "", false
		}
		if i == 0 || e.Section != sec || e.Sub != sub {
			sec, sub = e.Section, e.Sub
			if sub == "" {
				fmt.Fprintf(&b, "[%s]\n", sec)
			} else {
				fmt.Fprintf(&b, "[%s \"%s\"]\n", sec, sub)
			}
		}
		q := "\""
		if strings.Contains(e.Value, q) {
			q = "'"
		}
		fmt.Fprintf(&b, "%s = %s%s%s\n", e.Tag, q, e.Value, q)
	}
	return b.String(), true
}
