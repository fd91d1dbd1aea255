package grace

import (
	"bytes"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// db builds a database from "id=flags" pairs.
func db(cur, rec uint64, nodes ...string) DB {
	d := DB{Current: cur, Recovery: rec, Nodes: map[string]Flags{}}
	for i := 0; i+1 < len(nodes); i += 2 {
		f, err := parseFlags(nodes[i+1])
		if err != nil {
			panic(err)
		}
		d.Nodes[nodes[i]] = f
	}
	return d
}

// The cases follow ganesha's rados_grace.c and ganesha-rados-grace(8):
// add sets E only and refuses an existing node; start on R=0 makes R=C,
// C=C+1 and sets NE; join on R=0 changes nothing; lift clears N and ends
// grace with the last N; enforce/noenforce toggle E; member and every
// other command refuse a node that is not a member.
func TestOps(t *testing.T) {
	cases := []struct {
		name string
		in   DB
		cmd  string
		ids  []string
		want DB
		err  error
	}{
		{"add to new", New(), "add", []string{"a", "b"}, db(1, 0, "a", "E", "b", "E"), nil},
		{"add existing", db(1, 0, "a", "E"), "add", []string{"b", "a"}, DB{}, ErrExists},
		{"add repeated", New(), "add", []string{"a", "a"}, DB{}, ErrExists},
		{"add none", New(), "add", nil, DB{}, ErrNoNodes},
		{"add bad id", New(), "add", []string{"a b"}, DB{}, ErrBadNodeID},
		{"start new epoch", db(1, 0, "a", "", "b", ""), "start", []string{"a"}, db(2, 1, "a", "NE", "b", ""), nil},
		{"start joins grace in force", db(5, 4, "a", "NE", "b", "E"), "start", []string{"b"}, db(5, 4, "a", "NE", "b", "NE"), nil},
		{"start non-member", db(1, 0, "a", ""), "start", []string{"a", "z"}, DB{}, ErrNoNode},
		{"join without grace", db(3, 0, "a", ""), "join", []string{"a"}, db(3, 0, "a", ""), nil},
		{"join grace in force", db(3, 2, "a", "NE", "b", ""), "join", []string{"b"}, db(3, 2, "a", "NE", "b", "NE"), nil},
		{"lift one of two", db(3, 2, "a", "NE", "b", "NE"), "lift", []string{"a"}, db(3, 2, "a", "E", "b", "NE"), nil},
		{"lift last ends grace", db(3, 2, "a", "E", "b", "NE"), "lift", []string{"b"}, db(3, 0, "a", "E", "b", "E"), nil},
		{"lift both ends grace", db(3, 2, "a", "NE", "b", "NE"), "lift", []string{"a", "b"}, db(3, 0, "a", "E", "b", "E"), nil},
		{"lift without need", db(3, 2, "a", "E", "b", "NE"), "lift", []string{"a"}, db(3, 2, "a", "E", "b", "NE"), nil},
		{"lift non-member", db(3, 2, "a", "NE"), "lift", []string{"q"}, DB{}, ErrNoNode},
		{"remove needing node ends grace", db(3, 2, "a", "E", "b", "NE"), "remove", []string{"b"}, db(3, 0, "a", "E"), nil},
		{"remove keeps another's grace", db(3, 2, "a", "E", "b", "NE"), "remove", []string{"a"}, db(3, 2, "b", "NE"), nil},
		{"remove non-member", db(3, 2, "a", "E"), "remove", []string{"b"}, DB{}, ErrNoNode},
		{"enforce", db(3, 0, "a", "", "b", "N"), "enforce", []string{"a", "b"}, db(3, 0, "a", "E", "b", "NE"), nil},
		{"noenforce", db(3, 0, "a", "E", "b", "NE"), "noenforce", []string{"a", "b"}, db(3, 0, "a", "", "b", "N"), nil},
		{"member yes", db(3, 0, "a", "E", "b", "NE"), "member", []string{"a", "b"}, db(3, 0, "a", "E", "b", "NE"), nil},
		{"member no", db(3, 0, "a", "E"), "member", []string{"a", "x"}, DB{}, ErrNoNode},
		{"member none", db(3, 0, "a", "E"), "member", nil, DB{}, ErrNoNodes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, ok := Lookup(c.cmd)
			if !ok {
				t.Fatalf("no command %q", c.cmd)
			}
			before := c.in.Clone()
			got := c.in.Clone()
			err := cmd.Op(&got, c.ids)
			if !errors.Is(err, c.err) {
				t.Fatalf("%s %v: err %v, want %v", c.cmd, c.ids, err, c.err)
			}
			if Refused(err) != (c.err != nil) {
				t.Fatalf("%s %v: Refused(%v) = %v", c.cmd, c.ids, err, Refused(err))
			}
			if !reflect.DeepEqual(c.in, before) {
				t.Fatalf("the input was changed: %+v", c.in)
			}
			if c.err == nil && !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%s %v:\n got %+v\nwant %+v", c.cmd, c.ids, got, c.want)
			}
		})
	}
}

func TestAllEnforcing(t *testing.T) {
	d := db(2, 1, "a", "NE", "b", "")
	if d.AllEnforcing("a") {
		t.Fatal("b does not enforce, yet AllEnforcing")
	}
	if err := Enforce(&d, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if !d.AllEnforcing("a") || d.AllEnforcing("zz") {
		t.Fatalf("AllEnforcing(a)=%v AllEnforcing(zz)=%v", d.AllEnforcing("a"), d.AllEnforcing("zz"))
	}
}

func TestTooMany(t *testing.T) {
	d := New()
	ids := make([]string, MaxNodes+1)
	for i := range ids {
		ids[i] = "n" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	if err := Add(&d, ids); !errors.Is(err, ErrTooMany) {
		t.Fatalf("add %d nodes: %v", len(ids), err)
	}
}

// TestInvariants runs random command sequences and checks what every
// node relies on: C never falls, R is 0 or C-1, grace is in force only
// while some member needs it, and a failed command changes nothing.
func TestInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d"}
	for seq := 0; seq < 200; seq++ {
		d := New()
		for step := 0; step < 50; step++ {
			cmd := Commands[r.IntN(len(Commands))]
			n := 1 + r.IntN(2)
			args := make([]string, n)
			for i := range args {
				args[i] = ids[r.IntN(len(ids))]
			}
			next := d.Clone()
			if err := cmd.Op(&next, args); err != nil {
				continue
			}
			if next.Current < d.Current {
				t.Fatalf("%s %v: C fell from %d to %d", cmd.Name, args, d.Current, next.Current)
			}
			if next.Recovery != 0 && next.Recovery != next.Current-1 {
				t.Fatalf("%s %v: R=%d with C=%d", cmd.Name, args, next.Recovery, next.Current)
			}
			if next.InGrace() && len(next.Needing()) == 0 {
				t.Fatalf("%s %v: grace in force with nobody needing it: %+v", cmd.Name, args, next)
			}
			if back, err := Decode(Encode(next)); err != nil || !reflect.DeepEqual(back, next) {
				t.Fatalf("round trip of %+v: %+v, %v", next, back, err)
			}
			d = next
		}
	}
}

func TestDumpGolden(t *testing.T) {
	d := db(7, 6, "node-b", "E", "node-a", "NE", "node-c", "", "node-d", "N")
	var out bytes.Buffer
	if err := Dump(&out, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "dump.txt", out.Bytes())
	golden(t, "stored.json", Encode(d))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "grace", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n got %q\nwant %q", name, got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	cases := map[string]string{
		"not json":      `cur=1`,
		"version":       `{"version":2,"current":1,"recovery":0,"nodes":{}}`,
		"zero current":  `{"version":1,"current":0,"recovery":0,"nodes":{}}`,
		"R not below C": `{"version":1,"current":3,"recovery":3,"nodes":{}}`,
		"bad flags":     `{"version":1,"current":3,"recovery":0,"nodes":{"a":"X"}}`,
		"bad id":        `{"version":1,"current":3,"recovery":0,"nodes":{"a\tb":"E"}}`,
		"empty id":      `{"version":1,"current":3,"recovery":0,"nodes":{"":"E"}}`,
		"unknown field": `{"version":1,"current":3,"recovery":0,"nodes":{},"x":1}`,
		"trailing":      `{"version":1,"current":3,"recovery":0,"nodes":{}} {}`,
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode(%s) = %v, want ErrCorrupt", name, in, err)
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts survives an
// Encode/Decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(New()))
	f.Add(Encode(db(7, 6, "a", "NE", "b", "E", "c", "", "d", "N")))
	f.Add([]byte(`{"version":1,"current":2,"recovery":1,"nodes":{"x":"NE"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		back, err := Decode(Encode(d))
		if err != nil || !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip of %+v: %+v, %v", d, back, err)
		}
	})
}
