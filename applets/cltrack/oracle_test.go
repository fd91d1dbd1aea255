package cltrack_test

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
)

const (
	v40 = "NFSDCLTRACK_CLIENT_HAS_SESSION=N"
	v41 = "NFSDCLTRACK_CLIENT_HAS_SESSION=Y"
)

func recdir(name string) string { return "NFSDCLTRACK_LEGACY_RECDIR=$ROOT/v4recovery/" + name }

const topdir = "NFSDCLTRACK_LEGACY_TOPDIR=$ROOT/v4recovery"

// Scenarios from spec §14.1, run identically on both (ours in --compat
// where nfsdcltrack's bugs are observable).
func TestDifferentialScenarios(t *testing.T) {
	for _, s := range scenarios(t) {
		t.Run(s.name, func(t *testing.T) {
			var p *pair
			if s.compat {
				p = newPair(t, "--compat")
			} else {
				p = newPair(t)
			}
			s.steps(p)
		})
	}
}

// scenario is a named sequence of upcalls run on both sides.
type scenario struct {
	name   string
	compat bool
	steps  func(p *pair)
}

func scenarios(t *testing.T) []scenario {
	return []scenario{
		{"T-C1 init fresh", false, func(p *pair) { p.do(nil, "init") }},
		{"T-C2 v4.0 create/check refreshes", false, func(p *pair) {
			p.do([]string{v40}, "create", "41424344")
			p.setTime("41424344", 5)
			p.do([]string{v40}, "check", "41424344")
		}},
		{"T-C3 v4.1 check keeps time", false, func(p *pair) {
			p.do([]string{v41}, "create", "41424344")
			p.setTime("41424344", 5)
			p.do([]string{v41}, "check", "41424344")
			p.do([]string{"NFSDCLTRACK_CLIENT_HAS_SESSION=yes"}, "check", "41424344")
		}},
		{"T-C4 denial", false, func(p *pair) {
			p.do(nil, "init")
			p.do(nil, "check", "99")
			p.do([]string{recdir("missing")}, "check", "99")
			p.both(func(r string) { os.MkdirAll(r+"/v4recovery", 0o700); os.WriteFile(r+"/v4recovery/file", nil, 0o600) })
			p.do([]string{recdir("file")}, "check", "99")
		}},
		{"T-C5 legacy transition", true, func(p *pair) {
			p.both(func(r string) {
				for _, d := range []string{"a", "b", "c"} {
					os.MkdirAll(r+"/v4recovery/"+d, 0o700)
				}
				os.WriteFile(r+"/v4recovery/c/junk", nil, 0o600)
			})
			p.do([]string{v41, recdir("a")}, "check", "aa")
			p.do([]string{recdir("b")}, "check", "bb")
			p.do([]string{v41, recdir("c")}, "check", "cc") // non-empty: 255, row kept
			p.do([]string{v41}, "check", "cc")
		}},
		{"T-C6 gracedone", false, func(p *pair) {
			for _, id := range []string{"01", "02", "03"} {
				p.do([]string{v40}, "create", id)
			}
			p.setTime("01", 0)
			p.setTime("02", 5)
			p.do(nil, "gracedone", "6")
			p.both(func(r string) {
				os.MkdirAll(r+"/v4recovery/empty", 0o700)
				os.MkdirAll(r+"/v4recovery/full", 0o700)
				os.WriteFile(r+"/v4recovery/full/x", nil, 0o600)
				os.WriteFile(r+"/v4recovery/file", nil, 0o600)
			})
			p.do([]string{topdir}, "gracedone", "6")
			for _, side := range []*side{p.real, p.ours} {
				if _, err := os.Stat(side.root + "/v4recovery/empty"); !os.IsNotExist(err) {
					t.Errorf("%s: empty legacy dir survived gracedone", side.name)
				}
			}
		}},
		{"T-C7 gracedone parsing", true, func(p *pair) {
			p.do([]string{v40}, "create", "01")
			for _, arg := range []string{"", "0x10", " 7", "12x", "99999999999999999999", "9223372036854775808", "-1", "0x", " "} {
				p.do(nil, "gracedone", arg)
			}
			p.do(nil, "gracedone", "--", "-1") // compat: deletes every record
		}},
		{"T-C8 argument errors", false, func(p *pair) {
			p.do(nil)
			p.do(nil, "create")
			p.do(nil, "bogus", "00")
			p.do(nil, "-h")
			p.do(nil, "-x", "init")
			p.do(nil, "--storagedir")
			p.do(nil, "create", "9")
			p.do(nil, "create", "zz")
			p.do(nil, "create", strings.Repeat("ab", 1025))
			p.do(nil, "create", strings.Repeat("ab", 1024)+"z")
			p.do(nil, "create", strings.Repeat("ab", 1024))
			p.do(nil, "create", "")
			p.do(nil, "create", "0A0b")
			p.do(nil, "check", "0a0B")
			p.do(nil, "-d", "check", "-f", "0a0b") // getopt permutes
		}},
		{"T-C9 remove twice", false, func(p *pair) {
			p.do(nil, "create", "aa")
			p.do(nil, "remove", "aa")
			p.do(nil, "remove", "aa")
		}},
	}
}

// TestDifferentialRandom runs seeded random command sequences on both.
func TestDifferentialRandom(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	randomRuns(t, seeds, func(t *testing.T) *pair { return newPair(t, "--compat") })
}

// randomRuns runs seeded random command sequences on the pairs mk makes.
func randomRuns(t *testing.T, seeds int, mk func(t *testing.T) *pair) {
	steps := 30
	ids := []string{"", "00", "41424344", "4c696e7578204e465376342e31", "FF", "0a0B"}
	envs := []string{v40, v41, "NFSDCLTRACK_CLIENT_HAS_SESSION=yes", ""}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(seed)))
			p := mk(t)
			p.both(func(r string) { os.MkdirAll(r+"/v4recovery", 0o700) })
			now := time.Now().Unix()
			for i := 0; i < steps; i++ {
				env := []string{envs[rng.Intn(len(envs))]}
				id := ids[rng.Intn(len(ids))]
				switch op := rng.Intn(10); {
				case op < 3:
					p.do(env, "create", id)
				case op < 5:
					if rng.Intn(3) == 0 {
						name := fmt.Sprint("r", i)
						p.both(func(r string) { os.Mkdir(r+"/v4recovery/"+name, 0o700) })
						env = append(env, recdir(name))
					}
					p.do(env, "check", id)
				case op < 6:
					p.do(env, "remove", id)
				case op < 7:
					args := []string{"gracedone", pick(rng, fmt.Sprint(now-100000), fmt.Sprint(now+100000), "5", "junk", "")}
					p.do([]string{topdir}, args...)
				case op < 8:
					if rows := p.real.rows(t); len(rows) > 0 {
						p.setTime(rows[rng.Intn(len(rows))].ID, int64(rng.Intn(10)))
					}
				case op < 9:
					p.do(env, "init")
				default:
					p.do(env, pick(rng, "check", "create"), pick(rng, "9", "zz", "abc"))
				}
			}
		})
	}
}

func pick(rng *rand.Rand, s ...string) string { return s[rng.Intn(len(s))] }

// TestDifferentialDefaultModeFixes shows where ours deliberately differs
// from nfsdcltrack without --compat (documented in --help and README).
func TestDifferentialDefaultModeFixes(t *testing.T) {
	r, o := newReal(t), newOurs(t)
	for _, s := range []*side{r, o} {
		s.run(t, []string{v40}, "create", "aa")
	}
	if a, b := r.run(t, nil, "gracedone", "--", "-1"), o.run(t, nil, "gracedone", "--", "-1"); a != 0 || b != 234 {
		t.Errorf("gracedone -- -1: real %d ours %d, want 0 and 234", a, b)
	}
	if len(r.rows(t)) != 0 || len(o.rows(t)) != 1 {
		t.Errorf("real must have wiped its records, ours kept them: %v / %v", r.rows(t), o.rows(t))
	}
	for _, s := range []*side{r, o} {
		os.MkdirAll(s.root+"/v4recovery/c", 0o700)
		os.WriteFile(s.root+"/v4recovery/c/x", nil, 0o600)
	}
	if a, b := r.run(t, []string{recdir("c")}, "check", "cc"), o.run(t, []string{recdir("c")}, "check", "cc"); a != 255 || b != 0 {
		t.Errorf("check with a non-empty legacy dir: real %d ours %d, want 255 and 0", a, b)
	}
}

// TestDifferentialEarlyGraceLift runs both in a private mount namespace
// with a tmpfs over /proc/fs/nfsd holding a plain v4_end_grace file, so
// the real tool's fixed path can be observed (spec T-C11).
func TestDifferentialEarlyGraceLift(t *testing.T) {
	needOracle(t)
	testenv.NeedTools(t, "unshare")
	if _, err := os.Stat("/proc/fs/nfsd"); err != nil {
		testenv.Unavailable(t, "/proc/fs/nfsd missing (no nfsd module): cannot mount a fake end-grace file over it")
	}
	now := fmt.Sprint(time.Now().Unix())
	cases := []struct {
		name  string
		setup [][]string // commands run before, outside the namespace
		env   []string
		args  []string
	}{
		{"empty db init", nil, []string{"NFSDCLTRACK_GRACE_START=" + now}, []string{"init"}},
		{"v4.0 row blocks", [][]string{{v40, "create", "aa"}}, []string{"NFSDCLTRACK_GRACE_START=" + now}, []string{"init"}},
		{"last v4.1 create lifts", nil, []string{v41, "NFSDCLTRACK_GRACE_START=" + now}, []string{"create", "bb"}},
		{"grace start unset", nil, nil, []string{"init"}},
		{"grace start abc", nil, []string{"NFSDCLTRACK_GRACE_START=abc"}, []string{"init"}},
		{"grace start huge", nil, []string{"NFSDCLTRACK_GRACE_START=99999999999999999999"}, []string{"init"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, o := newReal(t), newOurs(t)
			results := map[string]string{}
			for _, s := range []*side{r, o} {
				for _, st := range c.setup {
					s.run(t, st[:1], st[1:]...)
				}
				results[s.name] = runWithFakeProc(t, s, c.env, c.args...)
			}
			if results["real"] != results["ours"] {
				t.Errorf("real %q, ours %q", results["real"], results["ours"])
			}
			t.Logf("both: %q", results["real"])
		})
	}
}

// runWithFakeProc returns "exit=N grace=CONTENT".
func runWithFakeProc(t *testing.T, s *side, env []string, args ...string) string {
	t.Helper()
	script := `mount -t tmpfs none /proc/fs/nfsd || exit 99
: > /proc/fs/nfsd/v4_end_grace
/usr/bin/env -i "$@"
rc=$?
printf 'exit=%s grace=%s' "$rc" "$(cat /proc/fs/nfsd/v4_end_grace)"`
	argv := []string{"-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"}
	argv = append(argv, env...)
	argv = append(append(append(argv, s.exe), s.extra...), "-s", s.dir)
	argv = append(argv, args...)
	cmd := exec.Command("unshare", argv...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in namespace: %v %s", s.name, err, out)
	}
	return string(out)
}

// TestRoundTripThroughOurDatabase: real main.sqlite -> import -> export ->
// the real nfsdcltrack answers every check as it did on the original.
func TestRoundTripThroughOurDatabase(t *testing.T) {
	needSQLite(t)
	r := newReal(t)
	ids := []string{"", "41424344", "0001ff", strings.Repeat("cd", 1024)}
	r.run(t, []string{v41}, "create", ids[0])
	r.run(t, []string{v40}, "create", ids[1])
	r.run(t, nil, "create", ids[2])
	r.run(t, []string{v41}, "create", ids[3])
	probe := append(append([]string{}, ids...), "99", "4142")
	answers := func(s *side) []int {
		var out []int
		for _, id := range probe {
			out = append(out, s.run(t, []string{v41}, "check", id))
		}
		return out
	}
	before := answers(r)
	db := filepath.Join(t.TempDir(), "nfsrecover.db")
	if out, err := exec.Command(bin, "cltrack", "import", "--db", db, "--from", r.dir).CombinedOutput(); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	exported := &side{name: "real", exe: r.exe, dir: filepath.Join(t.TempDir(), "export")}
	if out, err := exec.Command(bin, "cltrack", "export", "--db", db, "--to", exported.dir).CombinedOutput(); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	orig, back := r.rows(t), exported.rows(t)
	if !sameRows(orig, back) {
		t.Fatalf("rows changed in the round trip:\n%v\n%v", orig, back)
	}
	if after := answers(exported); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("check answers %v on the export, %v on the original", after, before)
	}
	// The real tool also accepts our export for writes (schema check).
	if code := exported.run(t, []string{v40}, "create", "77"); code != 0 {
		t.Errorf("real create on exported db: %d", code)
	}
}

// TestImportSchemaV1 hand-builds a v1 database, imports it (has_session
// NULL), and checks the real tool agrees on its own migration.
func TestImportSchemaV1(t *testing.T) {
	needSQLite(t)
	testenv.NeedTools(t, "sqlite3")
	r := newReal(t)
	os.MkdirAll(r.dir, 0o700)
	sqlite := func(stmts ...string) {
		for _, s := range stmts {
			if out, err := exec.Command("sqlite3", filepath.Join(r.dir, "main.sqlite"), s).CombinedOutput(); err != nil {
				t.Fatalf("sqlite3 CLI: %v %s", err, out)
			}
		}
	}
	sqlite("CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);",
		"CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER);",
		"INSERT INTO parameters VALUES ('version', '1');",
		"INSERT INTO clients VALUES (x'aa', 7);")
	db := filepath.Join(t.TempDir(), "nfsrecover.db")
	if out, err := exec.Command(bin, "cltrack", "import", "--db", db, "--from", r.dir).CombinedOutput(); err != nil {
		t.Fatalf("import v1: %v %s", err, out)
	}
	ours := ourRows(t, db)
	r.run(t, []string{v41}, "check", "bb") // real migrates v1 -> v2 in place
	real := realRows(t, filepath.Join(r.dir, "main.sqlite"))
	if !sameRows(ours, real) || ours[0].Session != "NULL" {
		t.Errorf("v1 import %v, real after migration %v", ours, real)
	}
}
