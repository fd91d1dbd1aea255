package cltrack

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

var noConf = map[string]string{EnvNFSConf: "/nonexistent/nfs.conf"}

func call(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, testenv.Lookup(noConf), false)
	return out.String(), errb.String(), code
}

func TestHelpGolden(t *testing.T) {
	for _, c := range []struct {
		argv0, flag string
		code        int
	}{
		{"/sbin/nfsdcltrack", "-h", 1}, // nfsdcltrack's contract
		{"cltrack", "--help", 0},
	} {
		out, _, code := call(c.argv0, c.flag)
		if code != c.code {
			t.Errorf("%s %s: exit %d, want %d", c.argv0, c.flag, code, c.code)
		}
		name := "help-" + filepath.Base(c.argv0) + ".txt"
		path := filepath.Join("testdata", name)
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(path, []byte(out), 0o644)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil || string(want) != out {
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", c.argv0, path, out)
		}
	}
	if out, _, code := call("nfsdcltrack", "--bogus"); code != 1 || !strings.HasPrefix(out, "Usage: nfsdcltrack") {
		t.Errorf("unknown option: %d %q", code, out)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	os.WriteFile(conf, []byte("[nfsrecover]\ndb = "+dir+"/fromconf.db\ncltrack-compat = y\n[nfsdcltrack]\ndebug = 1\n"), 0o644)
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{EnvNFSConf: conf}, nil, dir + "/fromconf.db"},
		{map[string]string{EnvNFSConf: conf, store.EnvPath: dir + "/env.db"}, nil, dir + "/env.db"},
		{map[string]string{EnvNFSConf: conf, store.EnvPath: dir + "/env.db"}, []string{"-s", dir + "/sdir"}, dir + "/sdir/nfsrecover.db"},
		{map[string]string{EnvNFSConf: conf}, []string{"-s", dir + "/sdir", "--db", dir + "/flag.db"}, dir + "/flag.db"},
		{map[string]string{EnvNFSConf: conf}, []string{"--db", dir + "/flag.db", "-s", dir + "/sdir"}, dir + "/flag.db"},
		{map[string]string{EnvNFSConf: "/nonexistent"}, nil, store.DefaultPath},
	}
	for _, c := range cases {
		var errb bytes.Buffer
		cfg, err := configure(append([]string{"nfsdcltrack"}, append(c.args, "init")...), &errb, testenv.Lookup(c.env))
		if err != nil || cfg.dbPath != c.want {
			t.Errorf("%v %v: db %q (%v), want %q", c.env, c.args, cfg.dbPath, err, c.want)
		}
	}
	cfg, _ := configure([]string{"nfsdcltrack", "init"}, &bytes.Buffer{}, testenv.Lookup(map[string]string{EnvNFSConf: conf}))
	if !cfg.compat || !cfg.debug {
		t.Errorf("nfs.conf cltrack-compat/debug not honoured: %+v", cfg)
	}
}

func needSQLite(t *testing.T) {
	if !cltracksql.Available {
		t.Skip("built with -tags nosqlite")
	}
}

func TestImportWithoutSQLite(t *testing.T) {
	if cltracksql.Available {
		t.Skip("SQLite is built in")
	}
	f := filepath.Join(t.TempDir(), "main.sqlite")
	os.WriteFile(f, []byte("x"), 0o644)
	_, errs, code := call("cltrack", "import", "--db", filepath.Join(t.TempDir(), "x.db"), "--from", f)
	if code != 1 || !strings.Contains(errs, "without SQLite support") {
		t.Errorf("nosqlite import: %d %q", code, errs)
	}
}

func TestImportBadSQLiteWritesNothing(t *testing.T) {
	needSQLite(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "nfsrecover.db")
	good := filepath.Join(dir, "good", "main.sqlite")
	os.MkdirAll(filepath.Dir(good), 0o700)
	if err := cltracksql.Write(good, []store.Client{{ID: []byte("a"), Time: 1, HasSession: store.SessionYes}}, false); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := call("cltrack", "import", "--db", db, "--from", filepath.Dir(good)); code != 0 {
		t.Fatalf("good import: %s", errs)
	}
	bad := filepath.Join(dir, "bad.sqlite")
	os.WriteFile(bad, bytes.Repeat([]byte("x"), 4096), 0o644)
	before, _ := os.ReadFile(db)
	_, errs, code := call("cltrack", "import", "--db", db, "--from", bad, "--replace")
	if code == 0 || !strings.Contains(errs, bad) {
		t.Errorf("bad import: exit %d, stderr %q must name the file", code, errs)
	}
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Errorf("failed import changed the database")
	}
}

func TestV4RecoveryImportExport(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "v4recovery")
	os.MkdirAll(filepath.Join(rec, "900150983cd24fb0d6963f7d28e17f72"), 0o700)
	os.MkdirAll(filepath.Join(rec, "short"), 0o700)
	db := filepath.Join(dir, "nfsrecover.db")
	out, errs, code := call("cltrack", "import", "--db", db, "--from", rec)
	if code != 0 || !strings.Contains(out, "1 hash-only") || !strings.Contains(errs, "short") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	// main.sqlite cannot hold hash-only records: refused, nothing written.
	_, errs, code = call("cltrack", "export", "--db", db, "--to", filepath.Join(dir, "out"))
	if code == 0 || !strings.Contains(errs, "hash-only") {
		t.Errorf("sqlite export with hash-only records: %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "main.sqlite")); err == nil {
		t.Errorf("refused export left a file")
	}
	// The check of the client whose md5 matches ("abc") turns it into a record.
	var o, e bytes.Buffer
	if c := run([]string{"nfsdcltrack", "--db", db, "check", "616263"}, &o, &e, testenv.Lookup(noConf), false); c != 0 {
		t.Fatalf("check via hash: %d %s", c, e.String())
	}
	back := filepath.Join(dir, "back")
	if _, errs, code := call("cltrack", "export", "--db", db, "--to", back, "--format", "v4recovery"); code != 0 {
		t.Fatalf("v4recovery export: %s", errs)
	}
	if _, err := os.Stat(filepath.Join(back, "900150983cd24fb0d6963f7d28e17f72")); err != nil {
		t.Errorf("exported dir missing: %v", err)
	}
}

// TestUnusedClusterSettingNeverStopsUpcalls: a typo in a setting that
// cltrack does not use on its backend (here floating-ips, which only
// statd and sm-notify read) is a warning, not a failed upcall: the kernel
// would otherwise lose every client record on a node that does not even
// keep them on etcd. A typo in backend itself still refuses, and writes
// nothing, since the records' home is unknown.
func TestUnusedClusterSettingNeverStopsUpcalls(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	upcall := func(body string, args ...string) (string, int) {
		t.Helper()
		os.WriteFile(conf, []byte("[nfsrecover]\n"+body), 0o644)
		var out, errb bytes.Buffer
		code := run(append([]string{"nfsdcltrack", "-f", "-s", dir + "/state"}, args...), &out, &errb, testenv.Lookup(map[string]string{EnvNFSConf: conf}), false)
		return errb.String(), code
	}
	bad := "floating-ips = 192.0.2.10/24\netcd-timeout = 10\n"
	for _, args := range [][]string{{"init"}, {"create", "4142"}, {"check", "4142"}} {
		stderr, code := upcall(bad, args...)
		if code != 0 {
			t.Fatalf("%v with an unused bad setting: exit %d, want 0: %s", args, code, stderr)
		}
		for _, name := range []string{"floating-ips", "etcd-timeout"} {
			if !strings.Contains(stderr, name) {
				t.Errorf("%v: no warning naming %s: %s", args, name, stderr)
			}
		}
	}
	other := t.TempDir()
	os.WriteFile(conf, []byte("[nfsrecover]\nbackend = ectd\n"), 0o644)
	var out, errb bytes.Buffer
	code := run([]string{"nfsdcltrack", "-f", "-s", other, "init"}, &out, &errb, testenv.Lookup(map[string]string{EnvNFSConf: conf}), false)
	if code == 0 || !strings.Contains(errb.String(), "backend") {
		t.Errorf("backend typo: exit %d, stderr %q; want a refusal naming backend", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(other, store.FileName)); !os.IsNotExist(err) {
		t.Errorf("backend typo created the database (%v)", err)
	}
}
