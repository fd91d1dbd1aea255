package stablerestart

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"nfsrecover/pkg/daemon"
	sr "nfsrecover/pkg/stablerestart"
)

// loadHex reads an annotated golden file (see testdata/stablerestart).
func loadHex(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../testdata/stablerestart", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sr.ParseAnnotatedHex(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

type fixture struct {
	t       *testing.T
	dir     string
	live    string
	db      string
	running bool
}

func newFixture(t *testing.T) *fixture {
	d := t.TempDir()
	return &fixture{t: t, dir: d, live: filepath.Join(d, "nfs-stablerestart"), db: filepath.Join(d, "nfsrecover.db")}
}

func (f *fixture) write(name string, data []byte) {
	f.t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) call(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	argv := append([]string{"stablerestart", "--file", f.live, "--db", f.db}, args...)
	lookup := func(k string) (string, bool) {
		if k == "NFSRECOVER_NFS_CONF" {
			return "/nonexistent", true
		}
		return "", false
	}
	code := run(argv, &out, &errb, lookup, func(string) (bool, error) { return f.running, nil })
	return out.String(), errb.String(), code
}

func TestVerifyExitCodes(t *testing.T) {
	cases := []struct {
		file string
		arch string
		want int
	}{
		{"s1-example-amd64.hex", "auto", 0},
		{"s1-example-i386.hex", "auto", 0},  // autodetected
		{"s1-example-i386.hex", "amd64", 1}, // misread as amd64: rejected, see below
		{"s3-trailing-1-byte.hex", "auto", 1},
		{"s4-len0-trailing.hex", "auto", 1},
		{"s2-empty.hex", "auto", 1},
		{"s6-memory-only-flags.hex", "auto", 2},
	}
	for _, c := range cases {
		f := newFixture(t)
		f.write(f.live, loadHex(t, c.file))
		out, _, code := f.call("--arch", c.arch, "verify")
		if code != c.want {
			t.Errorf("%s (--arch %s): exit %d, want %d\n%s", c.file, c.arch, code, c.want, out)
		}
	}
	f := newFixture(t)
	f.write(f.live, loadHex(t, "s1-example-i386.hex"))
	if out, _, _ := f.call("--arch", "amd64", "verify"); !strings.Contains(out, "implausible: wrong --arch") {
		t.Errorf("an i386 file read as amd64 must be reported as such: %q", out)
	}
	f = newFixture(t)
	f.write(f.live, loadHex(t, "s3-len-exceeds-rest.hex"))
	if out, _, _ := f.call("verify"); !strings.Contains(out, "offset 16") {
		t.Errorf("verify must name the offset: %q", out)
	}
}

// T-S8.
func TestRepair(t *testing.T) {
	good := loadHex(t, "s1-reinstated-amd64.hex")
	cases := []struct {
		name       string
		live, bak  []byte
		want       []byte // nil: live unchanged
		keptDamage bool
	}{
		{"live empty + bak valid", []byte{}, good, good, false},
		{"live truncated + bak valid", good[:len(good)-2], good, good, true},
		{"both corrupt: salvage prefix", good[:len(good)-2], good[:len(good)-1], good[:len(good)-6], true},
		{"live valid: no-op", good, nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.write(f.live, c.live)
			if c.bak != nil {
				f.write(f.live+".bak", c.bak)
			}
			out, errs, code := f.call("repair")
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, errs)
			}
			got, _ := os.ReadFile(f.live)
			want := c.want
			if want == nil {
				want = c.live
			}
			if !bytes.Equal(got, want) {
				t.Errorf("live = %x, want %x (%s)", got, want, out)
			}
			if st, _ := os.Stat(f.live); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", st.Mode())
			}
			kept, _ := filepath.Glob(f.live + ".damaged-*")
			if (len(kept) == 1) != c.keptDamage {
				t.Errorf("damaged copies %v", kept)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(f.dir, ".*tmp*")); len(leftovers) != 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
	f := newFixture(t)
	f.write(f.live, good)
	if out, _, code := f.call("repair", "--if-needed"); code != 0 || out != "" {
		t.Errorf("--if-needed on a valid file must be silent: %d %q", code, out)
	}
}

// T-S10.
func TestRefusesWhileNfsdRuns(t *testing.T) {
	f := newFixture(t)
	f.write(f.live, []byte{})
	f.write(f.live+".bak", loadHex(t, "s1-example-amd64.hex"))
	f.running = true
	if _, errs, code := f.call("repair"); code != exitRefused || !strings.Contains(errs, "nfsd is running") {
		t.Errorf("repair under nfsd: %d %q", code, errs)
	}
	if got, _ := os.ReadFile(f.live); len(got) != 0 {
		t.Errorf("refused repair wrote the file")
	}
	if _, _, code := f.call("repair", "--force"); code != 0 {
		t.Errorf("--force: %d", code)
	}
	// The production check: a pid file naming a live process.
	pidfile := filepath.Join(t.TempDir(), "nfsd.pid")
	os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if alive, err := daemon.PidfileAlive(pidfile); !alive || err != nil {
		t.Errorf("own pid not seen alive: %v", err)
	}
	if alive, _ := nfsdRunning(pidfile); !alive {
		t.Errorf("nfsdRunning ignores a live pid file")
	}
}

// T-S9: file -> DB -> file is byte-identical; JSON edits are validated.
func TestImportExportRoundTrip(t *testing.T) {
	for _, name := range []string{"s1-example-amd64.hex", "s5-len1024-i386.hex", "s7-many-boots.hex", "s4-len0-middle.hex"} {
		f := newFixture(t)
		orig := loadHex(t, name)
		f.write(f.live, orig)
		if _, errs, code := f.call("import"); code != 0 {
			t.Fatalf("%s import: %s", name, errs)
		}
		out := filepath.Join(f.dir, "exported")
		if _, errs, code := f.call("export", "--to", out); code != 0 {
			t.Fatalf("%s export: %s", name, errs)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, orig) {
			t.Errorf("%s: round trip changed the bytes", name)
		}
	}
	f := newFixture(t)
	f.write(f.live, loadHex(t, "s3-trailing-1-byte.hex"))
	if _, errs, code := f.call("import"); code != exitFailed || !strings.Contains(errs, "nothing written") {
		t.Errorf("corrupt import: %d %q", code, errs)
	}
	if _, err := os.Stat(f.db); err == nil {
		t.Errorf("a refused import created the database")
	}
	if _, _, code := f.call("export"); code != exitFailed && code != exitNotFound {
		t.Errorf("export with nothing stored: %d", code)
	}
}

func TestJSONEditing(t *testing.T) {
	f := newFixture(t)
	f.write(f.live, loadHex(t, "s1-example-amd64.hex"))
	f.call("import")
	doc := filepath.Join(f.dir, "doc.json")
	if _, errs, code := f.call("export", "--json", "--to", doc); code != 0 {
		t.Fatalf("export --json: %s", errs)
	}
	raw, _ := os.ReadFile(doc)
	// Edit: drop the REVOKE record (cl1 may reclaim again).
	edited := strings.Replace(string(raw), `"flag": 2`, `"flag": 1`, 1)
	os.WriteFile(doc, []byte(edited), 0o600)
	if _, errs, code := f.call("import", "--json", doc); code != 0 {
		t.Fatalf("import --json: %s", errs)
	}
	if _, errs, code := f.call("export"); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	out, _, _ := f.call("inspect")
	if !strings.Contains(out, `may reclaim 636c31 "cl1"`) {
		t.Errorf("edited file:\n%s", out)
	}
	bad := strings.Replace(string(raw), `"flag": 2`, `"flag": 8`, 1)
	os.WriteFile(doc, []byte(bad), 0o600)
	if _, errs, code := f.call("import", "--json", doc); code != exitFailed || !strings.Contains(errs, "flag 0x08 refused") {
		t.Errorf("memory-only flag accepted: %d %q", code, errs)
	}
}

func TestCompactCommand(t *testing.T) {
	f := newFixture(t)
	f.write(f.live, loadHex(t, "s6-flags.hex"))
	if out, errs, code := f.call("compact"); code != 0 {
		t.Fatalf("compact: %s %s", out, errs)
	}
	out, _, code := f.call("verify")
	if code != 0 || !strings.Contains(out, "3 records") {
		t.Errorf("after compact: %d %s", code, out)
	}
}

func TestInspectGoldenJSON(t *testing.T) {
	f := newFixture(t)
	f.write(f.live, loadHex(t, "s1-example-amd64.hex"))
	out, _, code := f.call("inspect", "--json")
	want, _ := os.ReadFile("../../testdata/stablerestart/s1-example-amd64.json")
	if code != 0 || out != string(want) {
		t.Errorf("inspect --json differs from the golden report:\n%s", out)
	}
}
