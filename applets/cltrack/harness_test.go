package cltrack_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/store"

	"nfsrecover/internal/testenv"
)

// bin is nfsrecover, built once for this package's tests.
var bin string

const realTool = "/usr/sbin/nfsdcltrack"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nfsrecover-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "nfsrecover")
	tags := "urfave_cli_no_docs"
	if !cltracksql.Available {
		tags += ",nosqlite" // test the binary this test run was built as
	}
	build := exec.Command("go", "build", "-tags", tags, "-o", bin, "nfsrecover")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building nfsrecover: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needOracle returns the real nfsdcltrack, skipping when it is missing
// outside CI and failing inside CI (CI=true).
func needOracle(t *testing.T) string {
	t.Helper()
	why := ""
	if _, err := os.Stat(realTool); err != nil {
		why = "real nfsdcltrack not installed (apt-get install nfs-kernel-server, or make deps)"
	} else if os.Geteuid() != 0 {
		why = "the real nfsdcltrack must run as root (it drops capabilities)"
	}
	if why != "" {
		testenv.Unavailable(t, "oracle: %s", why)
	}
	return realTool
}

func needSQLite(t *testing.T) {
	if !cltracksql.Available {
		t.Skip("built with -tags nosqlite")
	}
}

// side is one implementation under test with its own storage directory.
type side struct {
	name  string
	exe   string   // what the kernel would exec
	extra []string // options before the command (ours: --compat)
	dir   string   // -s storage directory
	root  string   // scratch tree for legacy directories
	conf  string   // nfs.conf for ours ("" = none: the kernel's empty environment)
	// etcd, when set, is where ours keeps its records (backend = etcd).
	etcd etcdStore
}

// etcdStore reads and edits ours's records on etcd for the harness.
type etcdStore interface {
	rows(t *testing.T) []row
	setTime(t *testing.T, hexID string, tm int64)
}

func newReal(t *testing.T) *side {
	exe := needOracle(t)
	d := t.TempDir()
	return &side{name: "real", exe: exe, dir: filepath.Join(d, "store"), root: d}
}

func newOurs(t *testing.T, extra ...string) *side {
	d := t.TempDir()
	link := filepath.Join(d, "sbin", "nfsdcltrack")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return &side{name: "ours", exe: link, extra: extra, dir: filepath.Join(d, "store"), root: d}
}

// expand replaces $ROOT in environment values with the side's scratch tree.
func (s *side) expand(env []string) []string {
	out := make([]string, len(env))
	for i, e := range env {
		out[i] = strings.ReplaceAll(e, "$ROOT", s.root)
	}
	return out
}

// run execs the program as the kernel does: only env, cwd "/".
func (s *side) run(t *testing.T, env []string, args ...string) int {
	t.Helper()
	argv := append(append(append([]string{}, s.extra...), "-s", s.dir), args...)
	cmd := exec.Command(s.exe, argv...)
	cmd.Env, cmd.Dir = s.expand(env), "/"
	if s.conf != "" {
		cmd.Env = append(cmd.Env, "NFSRECOVER_NFS_CONF="+s.conf)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s %v: %v %s", s.name, args, err, stderr.String())
	return -1
}

// row is the canonical form both sides are compared in.
type row struct {
	ID      string // uppercase hex
	Time    int64
	Session string // NULL, 0 or 1
}

func (s *side) rows(t *testing.T) []row {
	t.Helper()
	if s.name == "real" {
		return realRows(t, filepath.Join(s.dir, "main.sqlite"))
	}
	if s.etcd != nil {
		return s.etcd.rows(t)
	}
	return ourRows(t, filepath.Join(s.dir, "nfsrecover.db"))
}

func realRows(t *testing.T, path string) []row {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(`SELECT hex(id), time, quote(has_session) FROM clients ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.ID, &r.Time, &r.Session); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// ourRows reads our database through "nfsrecover db dump --json", the way
// an operator would.
func ourRows(t *testing.T, path string) []row {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	out, err := exec.Command(bin, "db", "dump", "--json", "--db", path).Output()
	if err != nil {
		t.Fatalf("db dump: %v", err)
	}
	var d struct {
		Cltrack struct {
			Clients []struct {
				ID         string `json:"id"`
				Time       int64  `json:"time"`
				HasSession *int   `json:"has_session"`
			} `json:"clients"`
		} `json:"cltrack"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("db dump output: %v\n%s", err, out)
	}
	var rows []row
	for _, c := range d.Cltrack.Clients {
		r := row{ID: strings.ToUpper(c.ID), Time: c.Time, Session: "NULL"}
		if c.HasSession != nil {
			r.Session = fmt.Sprint(*c.HasSession)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

// sameRows compares client sets; times within 2 s count as equal ("now").
func sameRows(a, b []row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		d := a[i].Time - b[i].Time
		if a[i].ID != b[i].ID || a[i].Session != b[i].Session || d < -2 || d > 2 {
			return false
		}
	}
	return true
}

// setTime forces a client's time on one side (spec §14: "force time=5").
func (s *side) setTime(t *testing.T, hexID string, tm int64) {
	t.Helper()
	if s.name == "real" {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, "main.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE clients SET time = ? WHERE hex(id) = ?`, tm, strings.ToUpper(hexID)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if s.etcd != nil {
		s.etcd.setTime(t, hexID, tm)
		return
	}
	db, err := store.Open(filepath.Join(s.dir, "nfsrecover.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		var id []byte
		fmt.Sscanf(hexID, "%x", &id)
		c, ok, err := tx.Client(id)
		if err != nil || !ok {
			return fmt.Errorf("setTime: client %s: %v", hexID, err)
		}
		c.Time = tm
		return tx.PutClient(c)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pair runs every step on both sides and compares.
type pair struct {
	t           *testing.T
	real, ours  *side
	steps       []string
	checkStates bool
}

func newPair(t *testing.T, oursExtra ...string) *pair {
	return &pair{t: t, real: newReal(t), ours: newOurs(t, oursExtra...), checkStates: true}
}

// do runs one command on both and fails on any difference; it returns
// the (common) exit status.
func (p *pair) do(env []string, args ...string) int {
	p.t.Helper()
	a := p.real.run(p.t, env, args...)
	b := p.ours.run(p.t, env, args...)
	p.steps = append(p.steps, fmt.Sprintf("%v %q -> real %d ours %d", env, args, a, b))
	if a != b {
		p.t.Fatalf("exit status differs\n%s", strings.Join(p.steps, "\n"))
	}
	if p.checkStates {
		ra, rb := p.real.rows(p.t), p.ours.rows(p.t)
		if !sameRows(ra, rb) {
			p.t.Fatalf("client sets differ\nreal: %v\nours: %v\n%s", ra, rb, strings.Join(p.steps, "\n"))
		}
	}
	return a
}

func (p *pair) setTime(hexID string, tm int64) {
	p.t.Helper()
	p.real.setTime(p.t, hexID, tm)
	p.ours.setTime(p.t, hexID, tm)
	p.steps = append(p.steps, fmt.Sprintf("set time of %s to %d", hexID, tm))
}

// both applies fn to each side's scratch tree (legacy directories).
func (p *pair) both(fn func(root string)) {
	fn(p.real.root)
	fn(p.ours.root)
}
