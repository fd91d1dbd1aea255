package cltrack

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/pkg/store"
)

const now = 1_700_000_000

// fixture is a tracker on a fresh store in a temp dir.
type fixture struct {
	t      *testing.T
	dbPath string
	grace  string // end-grace file
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{t: t, dbPath: filepath.Join(dir, "s", "nfsrecover.db"), grace: filepath.Join(dir, "v4_end_grace")}
	return f
}

func (f *fixture) tracker(env Env, compat bool) *Tracker {
	return &Tracker{
		Open: func() (DB, error) {
			db, err := store.Open(f.dbPath, &store.Options{Timeout: time.Second})
			if err != nil {
				return nil, err
			}
			return FromStore(db), nil
		},
		StorageDir:   filepath.Dir(f.dbPath),
		Env:          env,
		Now:          func() time.Time { return time.Unix(now, 0) },
		EndGraceFile: f.grace,
		Compat:       compat,
	}
}

// run executes one command and returns its exit status.
func (f *fixture) run(env Env, args ...string) int {
	return ExitStatus(f.tracker(env, false).Run(args))
}

func (f *fixture) clients() map[string]store.Client {
	f.t.Helper()
	db, err := store.Open(f.dbPath, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Dump()
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]store.Client{}
	for _, cl := range c.Clients {
		m[string(cl.ID)] = cl
	}
	return m
}

func (f *fixture) put(c store.Client) {
	f.t.Helper()
	db, err := store.Open(f.dbPath, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *store.Tx) error { return tx.PutClient(c) }); err != nil {
		f.t.Fatal(err)
	}
}

var v40 = Env{}
var v41 = Env{HasSession: true}

func TestArgumentErrors(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{nil, 234},
		{[]string{"create"}, 234},
		{[]string{"remove"}, 234},
		{[]string{"check"}, 234},
		{[]string{"gracedone"}, 234},
		{[]string{"bogus", "00"}, 218},
		{[]string{"create", "9"}, 234},
		{[]string{"create", "zz"}, 234},
		{[]string{"create", "0g"}, 234},
		{[]string{"create", strings.Repeat("ab", 1025)}, 151},
		{[]string{"create", strings.Repeat("ab", 1024) + "z"}, 151}, // limit checked before pair validity
		{[]string{"create", strings.Repeat("ab", 1024)}, 0},
		{[]string{"create", ""}, 0},
		{[]string{"init", "extra", "ignored"}, 0},
	}
	for _, c := range cases {
		f := newFixture(t)
		if got := f.run(v40, c.args...); got != c.want {
			t.Errorf("%.40q: exit %d, want %d", c.args, got, c.want)
		}
	}
}

func TestCreateCheckTimes(t *testing.T) {
	f := newFixture(t)
	if got := f.run(v40, "create", "41424344"); got != 0 {
		t.Fatalf("create: %d", got)
	}
	c := f.clients()["ABCD"]
	if c.Time != now || c.HasSession != store.SessionNo {
		t.Fatalf("after create: %+v", c)
	}
	// v4.0 check refreshes the time.
	f.put(store.Client{ID: []byte("ABCD"), Time: 5, HasSession: store.SessionNo})
	if got := f.run(v40, "check", "41424344"); got != 0 {
		t.Fatalf("check: %d", got)
	}
	if c := f.clients()["ABCD"]; c.Time != now {
		t.Errorf("v4.0 check must refresh time: %+v", c)
	}
	// v4.1 check leaves it.
	f.put(store.Client{ID: []byte("ABCD"), Time: 5, HasSession: store.SessionYes})
	if got := f.run(v41, "check", "41424344"); got != 0 {
		t.Fatalf("check v4.1: %d", got)
	}
	if c := f.clients()["ABCD"]; c.Time != 5 {
		t.Errorf("v4.1 check must not touch time: %+v", c)
	}
	// Uppercase hex is the same bytes.
	if got := f.run(v41, "check", "41424344"); got != 0 {
		t.Errorf("uppercase check: %d", got)
	}
	if got := f.run(v40, "check", "99"); got != 255 {
		t.Errorf("unknown client: %d, want 255", got)
	}
	for i := 0; i < 2; i++ {
		if got := f.run(v40, "remove", "41424344"); got != 0 {
			t.Errorf("remove #%d: %d", i, got)
		}
	}
	if len(f.clients()) != 0 {
		t.Errorf("remove left %v", f.clients())
	}
}

func TestEmptyIDRecord(t *testing.T) {
	f := newFixture(t)
	if got := f.run(v41, "create", ""); got != 0 {
		t.Fatal(got)
	}
	c, ok := f.clients()[""]
	if !ok || len(c.ID) != 0 || c.HasSession != store.SessionYes {
		t.Fatalf("empty id record: %+v %v", c, ok)
	}
	if got := f.run(v41, "check", ""); got != 0 {
		t.Errorf("check empty id: %d", got)
	}
}

func TestLegacyTransition(t *testing.T) {
	cases := []struct {
		name       string
		env        Env
		setup      func(dir string) string // returns RECDIR
		compat     bool
		want       int
		wantRow    bool
		wantTime   int64
		dirRemoved bool
	}{
		{"no recdir variable", v41, func(string) string { return "" }, false, 255, false, 0, false},
		{"missing path", v41, func(d string) string { return filepath.Join(d, "nope") }, false, 255, false, 0, false},
		{"regular file", v41, func(d string) string {
			p := filepath.Join(d, "file")
			os.WriteFile(p, nil, 0o600)
			return p
		}, false, 255, false, 0, false},
		{"empty dir v4.1", v41, func(d string) string { return mkdir(d, "r") }, false, 0, true, 0, true},
		{"empty dir v4.0", v40, func(d string) string { return mkdir(d, "r") }, false, 0, true, now, true},
		{"non-empty dir, compat", v41, nonEmpty, true, 255, true, 0, false},
		{"non-empty dir, fixed", v41, nonEmpty, false, 0, true, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			env := c.env
			env.LegacyRecdir = c.setup(t.TempDir())
			got := ExitStatus(f.tracker(env, c.compat).Run([]string{"check", "aa"}))
			if got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
			row, ok := f.clients()["\xaa"]
			if ok != c.wantRow || ok && (row.Time != c.wantTime || row.Origin != store.OriginLegacyDir) {
				t.Fatalf("row %+v present=%v, want present=%v time=%d", row, ok, c.wantRow, c.wantTime)
			}
			if env.LegacyRecdir != "" {
				_, err := os.Stat(env.LegacyRecdir)
				if removed := errors.Is(err, os.ErrNotExist); removed != c.dirRemoved && c.want == 0 {
					t.Errorf("recdir removed=%v, want %v", removed, c.dirRemoved)
				}
			}
			if c.wantRow {
				// A second check succeeds from the database.
				if got := f.run(c.env, "check", "aa"); got != 0 {
					t.Errorf("second check: %d", got)
				}
			}
		})
	}
}

func mkdir(d, n string) string {
	p := filepath.Join(d, n)
	os.Mkdir(p, 0o700)
	return p
}

func nonEmpty(d string) string {
	p := mkdir(d, "r")
	os.WriteFile(filepath.Join(p, "x"), nil, 0o600)
	return p
}

func TestHashOnlyRecordClaimedOnce(t *testing.T) {
	f := newFixture(t)
	id := []byte("Linux NFSv4.0 host/1.2.3.4")
	db, err := store.Open(f.dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.PutHash(LegacyName(id)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	hexID := strings.ToUpper(bytesHex(id))
	if got := f.run(v40, "check", hexID); got != 0 {
		t.Fatalf("check via hash-only record: %d", got)
	}
	row, ok := f.clients()[string(id)]
	if !ok || row.Time != now {
		t.Fatalf("hash claim must create a full record: %+v %v", row, ok)
	}
	if got := f.run(v40, "check", "99"); got != 255 {
		t.Errorf("other client: %d", got)
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestGracedone(t *testing.T) {
	cases := []struct {
		arg    string
		compat bool
		want   int
		left   []string // surviving ids
	}{
		{"6", false, 0, []string{"new"}},
		{"", false, 0, []string{"old", "five", "new"}},
		{"0x6", false, 0, []string{"new"}},
		{"06", false, 0, []string{"new"}}, // octal 6
		{" 7", false, 0, []string{"new"}},
		{"+6", false, 0, []string{"new"}},
		{"12x", false, 234, []string{"old", "five", "new"}},
		{" ", false, 234, []string{"old", "five", "new"}},
		{"0x", false, 234, []string{"old", "five", "new"}},
		{"99999999999999999999", false, 222, []string{"old", "five", "new"}},
		{"9223372036854775808", false, 222, []string{"old", "five", "new"}},
		{"-1", false, 234, []string{"old", "five", "new"}}, // the fix
		{"-1", true, 0, nil},                               // nfsdcltrack: wipes all
		{"-0", false, 0, []string{"old", "five", "new"}},
	}
	for _, c := range cases {
		t.Run(c.arg, func(t *testing.T) {
			f := newFixture(t)
			for _, cl := range []store.Client{{ID: []byte("old"), Time: 0}, {ID: []byte("five"), Time: 5}, {ID: []byte("new"), Time: now}} {
				f.put(cl)
			}
			got := ExitStatus(f.tracker(v40, c.compat).Run([]string{"gracedone", c.arg}))
			if got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
			left := f.clients()
			if len(left) != len(c.left) {
				t.Fatalf("left %v, want %v", keys(left), c.left)
			}
			for _, id := range c.left {
				if _, ok := left[id]; !ok {
					t.Errorf("%q was deleted", id)
				}
			}
		})
	}
}

func keys(m map[string]store.Client) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestGracedoneLegacyTopdir(t *testing.T) {
	f := newFixture(t)
	top := t.TempDir()
	empty := mkdir(top, "0123456789abcdef0123456789abcdef")
	full := nonEmpty(t.TempDir())
	os.Rename(full, filepath.Join(top, "full"))
	os.WriteFile(filepath.Join(top, "plainfile"), nil, 0o600)
	if got := f.run(Env{LegacyTopdir: top}, "gracedone", "1"); got != 0 {
		t.Fatalf("exit %d", got)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty subdir not removed")
	}
	for _, n := range []string{"full", "plainfile"} {
		if _, err := os.Stat(filepath.Join(top, n)); err != nil {
			t.Errorf("%s must survive: %v", n, err)
		}
	}
	// A missing top dir is ignored.
	if got := f.run(Env{LegacyTopdir: filepath.Join(top, "missing")}, "gracedone", "1"); got != 0 {
		t.Errorf("missing topdir: %d", got)
	}
}

func TestEarlyGraceLift(t *testing.T) {
	gs := Env{GraceStart: now - 10, GraceStartOK: true}
	gs41 := gs
	gs41.HasSession = true
	cases := []struct {
		name  string
		setup []store.Client
		env   Env
		args  []string
		lift  bool
	}{
		{"empty db init", nil, gs, []string{"init"}, true},
		{"v4.0 row blocks", []store.Client{{ID: []byte("a"), Time: now, HasSession: store.SessionNo}}, gs, []string{"init"}, false},
		{"old v4.1 row blocks", []store.Client{{ID: []byte("a"), Time: 1, HasSession: store.SessionYes}}, gs, []string{"init"}, false},
		{"NULL session counts by time only", []store.Client{{ID: []byte("a"), Time: now, HasSession: store.SessionUnknown}}, gs, []string{"init"}, true},
		{"last v4.1 create lifts", []store.Client{{ID: []byte("\xaa"), Time: 1, HasSession: store.SessionYes}}, gs41, []string{"create", "aa"}, true},
		{"v4.0 create never lifts", nil, gs, []string{"create", "aa"}, false},
		{"no grace start", nil, Env{}, []string{"init"}, false},
		{"LONG_MAX is invalid", nil, Env{GraceStart: math.MaxInt64, GraceStartOK: false}, []string{"init"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			for _, cl := range c.setup {
				f.put(cl)
			}
			os.WriteFile(f.grace, nil, 0o644)
			if got := f.run(c.env, c.args...); got != 0 {
				t.Fatalf("exit %d", got)
			}
			b, _ := os.ReadFile(f.grace)
			if lifted := bytes.Equal(b, []byte("Y")); lifted != c.lift {
				t.Errorf("lifted=%v (%q), want %v", lifted, b, c.lift)
			}
		})
	}
	// An absent end-grace file is silently skipped.
	f := newFixture(t)
	if got := f.run(gs, "init"); got != 0 {
		t.Errorf("absent end-grace file: %d", got)
	}
}

func TestEnvFrom(t *testing.T) {
	cases := []struct {
		env     map[string]string
		session bool
		gs      int64
		gsOK    bool
	}{
		{map[string]string{}, false, 0, false},
		{map[string]string{EnvHasSession: "Y"}, true, 0, false},
		{map[string]string{EnvHasSession: "Yes"}, true, 0, false},
		{map[string]string{EnvHasSession: "yes"}, false, 0, false},
		{map[string]string{EnvHasSession: "N"}, false, 0, false},
		{map[string]string{EnvGraceStart: "1700000000"}, false, 1700000000, true},
		{map[string]string{EnvGraceStart: "0x10junk"}, false, 16, true},
		{map[string]string{EnvGraceStart: "abc"}, false, 0, true}, // strtol: 0, no error
		{map[string]string{EnvGraceStart: "99999999999999999999"}, false, math.MaxInt64, false},
		{map[string]string{EnvGraceStart: "9223372036854775807"}, false, math.MaxInt64, false},
	}
	for _, c := range cases {
		e := EnvFrom(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if e.HasSession != c.session || e.GraceStartOK != c.gsOK || (c.gsOK && e.GraceStart != c.gs) {
			t.Errorf("%v: got %+v", c.env, e)
		}
	}
}

func TestStrtol(t *testing.T) {
	cases := []struct {
		in   string
		n    int64
		rest string
		err  error
	}{
		{"", 0, "", nil},
		{"  42", 42, "", nil},
		{"-42x", -42, "x", nil},
		{"0x1F", 31, "", nil},
		{"0X1f", 31, "", nil},
		{"0x", 0, "x", nil},
		{"0xg", 0, "xg", nil},
		{"017", 15, "", nil},
		{"08", 0, "8", nil},
		{"abc", 0, "abc", nil},
		{"  ", 0, "  ", nil},
		{"-", 0, "-", nil},
		{"9223372036854775807", math.MaxInt64, "", nil},
		{"-9223372036854775808", math.MinInt64, "", nil},
		{"9223372036854775808", math.MaxInt64, "", syscall.ERANGE},
		{"-9223372036854775809z", math.MinInt64, "z", syscall.ERANGE},
	}
	for _, c := range cases {
		n, rest, err := strtol(c.in)
		if n != c.n || rest != c.rest || !errors.Is(err, c.err) && err != c.err {
			t.Errorf("strtol(%q) = %d,%q,%v want %d,%q,%v", c.in, n, rest, err, c.n, c.rest, c.err)
		}
	}
}

func TestLegacyName(t *testing.T) {
	cases := map[string]string{
		"abc": "900150983cd24fb0d6963f7d28e17f72",
		"":    "d41d8cd98f00b204e9800998ecf8427e",
	}
	for id, want := range cases {
		if got := LegacyName([]byte(id)); got != want {
			t.Errorf("LegacyName(%q) = %s, want %s", id, got, want)
		}
	}
}

// failDB is an in-memory twin whose writes can be made to fail.
type failDB struct {
	rows      map[string]store.Client
	failWrite bool
}

var errInjected = errors.New("injected write failure")

func (m *failDB) Lookup(id []byte) (store.Client, bool, error) {
	c, ok := m.rows[string(id)]
	return c, ok, nil
}
func (m *failDB) Put(c store.Client) error {
	if m.failWrite {
		return errInjected
	}
	m.rows[string(c.ID)] = c
	return nil
}
func (m *failDB) Delete(id []byte) error {
	if m.failWrite {
		return errInjected
	}
	delete(m.rows, string(id))
	return nil
}
func (m *failDB) Touch(id []byte, now int64) (bool, error) {
	c, ok := m.rows[string(id)]
	if !ok {
		return false, nil
	}
	c.Time = now
	return true, m.Put(c)
}
func (m *failDB) ClaimHash(string, store.Client) (bool, error) { return false, nil }
func (m *failDB) DeleteWhere(drop func(store.Client) bool) (int, error) {
	if m.failWrite {
		return 0, errInjected
	}
	n := 0
	for k, c := range m.rows {
		if drop(c) {
			delete(m.rows, k)
			n++
		}
	}
	return n, nil
}
func (m *failDB) Any(pred func(store.Client) bool) (bool, error) {
	for _, c := range m.rows {
		if pred(c) {
			return true, nil
		}
	}
	return false, nil
}
func (m *failDB) Close() error { return nil }

func TestWriteFailures(t *testing.T) {
	db := &failDB{rows: map[string]store.Client{"\xaa": {ID: []byte{0xaa}, HasSession: store.SessionNo}}, failWrite: true}
	tr := &Tracker{Open: func() (DB, error) { return db, nil }, Env: v40}
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"create", "aa"}, 135},
		{[]string{"remove", "aa"}, 135},
		{[]string{"gracedone", "5"}, 135},
		{[]string{"check", "aa"}, 255}, // v4.0 check must write the time
	}
	for _, c := range cases {
		err := tr.Run(c.args)
		if got := ExitStatus(err); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.args, got, c.want)
		}
		if !errors.Is(err, errInjected) && c.want == 135 {
			t.Errorf("%v: error %v does not wrap the cause", c.args, err)
		}
	}
}

func TestOpenFailures(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	missingParent := filepath.Join(dir, "no", "such", "x.db")
	cases := []struct {
		path string
		args []string
		want int
	}{
		{garbage, []string{"init"}, 243},
		{garbage, []string{"check", "aa"}, StatusNotADB},
		{garbage, []string{"create", "zz"}, StatusNotADB}, // DB errors beat bad hex
		{missingParent, []string{"init"}, 243},
		{missingParent, []string{"check", "aa"}, 254},
	}
	for _, c := range cases {
		tr := &Tracker{StorageDir: filepath.Dir(c.path), Open: func() (DB, error) {
			db, err := store.Open(c.path, nil)
			if err != nil {
				return nil, err
			}
			return FromStore(db), nil
		}}
		if got := ExitStatus(tr.Run(c.args)); got != c.want {
			t.Errorf("%s %v: exit %d, want %d", filepath.Base(c.path), c.args, got, c.want)
		}
	}
}

func FuzzDecodeHex(f *testing.F) {
	for _, s := range []string{"", "00", "0A0b", "zz", "9", strings.Repeat("ab", 1024), strings.Repeat("ab", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeHex(s)
		if err != nil {
			if st := ExitStatus(err); st != 234 && st != 151 {
				t.Fatalf("DecodeHex(%q): status %d", s, st)
			}
			return
		}
		if len(b) > store.MaxIDLen || len(b)*2 != len(s) {
			t.Fatalf("DecodeHex(%q) = %d bytes", s, len(b))
		}
		if !strings.EqualFold(bytesHex(b), s) {
			t.Fatalf("round trip %q -> %x", s, b)
		}
	})
}

func FuzzStrtol(f *testing.F) {
	for _, s := range []string{"", "0x10", "-1", " 7", "99999999999999999999", "012", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, rest, err := strtol(s)
		if !strings.HasSuffix(s, rest) {
			t.Fatalf("rest %q is not a suffix of %q", rest, s)
		}
		if err != nil && n != math.MaxInt64 && n != math.MinInt64 {
			t.Fatalf("overflow must clamp: %d", n)
		}
	})
}

func TestOpenFailureMapping(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("open: %w", store.ErrSchemaTooNew), 234},
		{fmt.Errorf("open: %w", store.ErrLockTimeout), 240},
		{fmt.Errorf("open: %w", store.ErrNotDatabase), StatusNotADB},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, 254},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, 243},
		{errors.New("other"), 251},
	}
	for _, c := range cases {
		if got := openFailure(c.err).Status; got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}
