package stablerestart

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .json golden reports")

var testNow = time.Unix(1800000000, 0)

const goldenDir = "../../testdata/stablerestart"

// loadHex reads an annotated golden file.
func loadHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseAnnotatedHex(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func must(l Layout, err error) Layout {
	if err != nil {
		panic(err)
	}
	return l
}

var amd64, i386 = must(Arch("amd64")), must(Arch("i386"))

// Spec §14.4, one row per golden file: the kernel's verdict.
var goldenCases = []struct {
	file    string
	layout  Layout
	status  Status
	offset  int64           // of the problem, when not Valid
	allowed map[string]bool // client text -> may reclaim
	worst   Severity
}{
	{"s1-example-amd64.hex", amd64, Valid, 0, map[string]bool{"cl1": false}, Info},
	{"s1-example-i386.hex", i386, Valid, 0, map[string]bool{"cl1": false}, Info},
	{"s1-reinstated-amd64.hex", amd64, Valid, 0, map[string]bool{"cl1": true}, Info},
	{"s2-empty.hex", amd64, NoGrace, 0, nil, Rejected},
	{"s2-numboots-zero.hex", amd64, NoGrace, 4, nil, Rejected},
	{"s2-numboots-10001.hex", amd64, NoGrace, 4, nil, Rejected},
	{"s3-header-5-bytes.hex", amd64, NoGrace, 0, nil, Rejected},
	{"s3-bootlist-short.hex", amd64, NoGrace, 8, nil, Rejected},
	{"s3-trailing-1-byte.hex", amd64, Corrupt, 22, map[string]bool{"cl1": false}, Rejected},
	{"s3-trailing-2-bytes.hex", amd64, Corrupt, 22, map[string]bool{"cl1": false}, Rejected},
	{"s3-trailing-3-bytes.hex", amd64, Corrupt, 22, map[string]bool{"cl1": false}, Rejected},
	{"s3-len-exceeds-rest.hex", amd64, Corrupt, 16, nil, Rejected},
	{"s4-len0-trailing.hex", amd64, Corrupt, 22, map[string]bool{"cl1": false}, Rejected},
	{"s4-len0-middle.hex", amd64, Valid, 0, map[string]bool{"": true, "cl1": true}, Info},
	{"s5-len1024.hex", amd64, Valid, 0, map[string]bool{strings.Repeat("a", 1024): true}, Info},
	{"s5-len1025.hex", amd64, Corrupt, 16, nil, Rejected},
	{"s5-len1024-i386.hex", i386, Valid, 0, map[string]bool{"": true, strings.Repeat("z", 1024): true}, Info},
	{"s6-flags.hex", amd64, Valid, 0, map[string]bool{"ca": true, "cb": false, "cc": false, "cd": true, "ce": true}, Danger},
	{"s6-memory-only-flags.hex", amd64, Valid, 0, map[string]bool{"g1": true, "r1": true, "z1": true}, Danger},
	{"s7-many-boots.hex", amd64, Valid, 0, map[string]bool{"FreeBSD-host": true}, Info},
}

func TestGoldenFiles(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.file, func(t *testing.T) {
			data := loadHex(t, c.file)
			f := Decode(data, c.layout)
			if f.Status != c.status {
				t.Fatalf("status %v (%v), want %v", f.Status, f.Problem, c.status)
			}
			if c.status != Valid && f.Problem.Offset != c.offset {
				t.Errorf("problem at %d (%v), want offset %d", f.Problem.Offset, f.Problem, c.offset)
			}
			got := map[string]bool{}
			for _, cl := range Replay(f) {
				got[string(cl.ID)] = cl.Allowed
			}
			if len(got) != len(c.allowed) {
				t.Errorf("clients %v, want %v", got, c.allowed)
			}
			for id, want := range c.allowed {
				if a, ok := got[id]; !ok || a != want {
					t.Errorf("client %.20q: allowed=%v present=%v, want %v", id, a, ok, want)
				}
			}
			if w := Worst(Check(f, testNow)); w != c.worst {
				t.Errorf("worst finding %v, want %v: %v", w, c.worst, Check(f, testNow))
			}
			if f.Status == Valid && !bytes.Equal(Encode(f), data) {
				t.Errorf("Encode(Decode(x)) != x")
			}
			report, _ := json.MarshalIndent(ToDocument(f, testNow), "", "  ")
			golden(t, strings.TrimSuffix(c.file, ".hex")+".json", append(report, '\n'))
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(want, got) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", name, got)
	}
}

// build makes a file with n boot times and the given records.
func build(l Layout, n int, recs ...Record) []byte {
	f := &File{Layout: l, Lease: 120}
	for i := 0; i < n; i++ {
		f.Boots = append(f.Boots, 1700000000-int64(i)*100)
	}
	f.Records = recs
	return Encode(f)
}

func TestBootLimits(t *testing.T) {
	full := build(amd64, MaxBoots, Record{Flag: 1, ID: []byte("x")})
	if f := Decode(full, amd64); f.Status != Valid || len(f.Boots) != MaxBoots {
		t.Errorf("10000 boots: %v %v", f.Status, f.Problem)
	} else if w := Worst(Check(f, testNow)); w != Odd {
		t.Errorf("10000 boots should be flagged as near the limit, got %v", w)
	}
}

// T-S7: the same logical content with T=4 and T=8 is told apart; an i386
// file read as amd64 is reported, not silently misread.
func TestDetectTimeSize(t *testing.T) {
	rec := Record{Flag: 1, ID: []byte("client-one")}
	for _, l := range []Layout{amd64, i386, must(Arch("powerpc64"))} {
		data := build(l, 3, rec, Record{Flag: 2, ID: []byte("client-two")})
		d := Detect(data)
		if d.Layout.TimeSize != l.TimeSize || d.Layout.Order != l.Order || d.Ambiguous != "" {
			t.Errorf("%s file detected as %s (%q)", l.Name, d.Layout.Name, d.Ambiguous)
		}
	}
	i386File := loadHex(t, "s1-example-i386.hex")
	f := Decode(i386File, amd64)
	if f.Status == Valid && Worst(Check(f, testNow)) < Odd {
		t.Errorf("i386 file read as amd64 passed silently: %+v", f)
	}
	if d := Detect(nil); d.Ambiguous != "" {
		t.Errorf("empty file: %q", d.Ambiguous)
	}
}

func TestRepairPlans(t *testing.T) {
	good := loadHex(t, "s1-reinstated-amd64.hex")
	corrupt := loadHex(t, "s3-trailing-2-bytes.hex")
	cases := []struct {
		name      string
		live, bak []byte
		action    Action
		records   int
	}{
		{"live valid", good, nil, Nothing, 3},
		{"both empty", nil, nil, Nothing, 0},
		{"live empty, bak valid", nil, good, RestoreBak, 3},
		{"live truncated, bak valid", good[:len(good)-2], good, RestoreBak, 3},
		{"both corrupt: salvage", corrupt, good[:len(good)-1], Salvage, 2},
		{"trailing len0 dropped", loadHex(t, "s4-len0-trailing.hex"), nil, Salvage, 1},
		{"no header anywhere", []byte{1, 2, 3}, []byte{9}, Impossible, 0},
	}
	for _, c := range cases {
		p := PlanRepair(c.live, c.bak, amd64)
		if p.Action != c.action {
			t.Errorf("%s: %v (%s), want %v", c.name, p.Action, p.Why, c.action)
			continue
		}
		if p.Action == RestoreBak || p.Action == Salvage {
			f := Decode(p.Output, amd64)
			if f.Status != Valid || len(f.Records) != c.records {
				t.Errorf("%s: output %v with %d records, want valid with %d", c.name, f.Status, len(f.Records), c.records)
			}
		}
	}
}

func TestCompact(t *testing.T) {
	f := Decode(loadHex(t, "s6-flags.hex"), amd64)
	c, err := Compact(f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range c.Records {
		if r.Flag != FlagNewState {
			t.Errorf("compacted flag 0x%x", r.Flag)
		}
		ids = append(ids, string(r.ID))
	}
	if fmt.Sprint(ids) != "[ca cd ce]" || c.Lease != f.Lease || len(c.Boots) != len(f.Boots) {
		t.Errorf("compact kept %v", ids)
	}
	if _, err := Compact(Decode(loadHex(t, "s5-len1025.hex"), amd64)); err == nil {
		t.Errorf("compacting a corrupt file must fail")
	}
}

func TestJSONRoundTripAndRefusals(t *testing.T) {
	data := loadHex(t, "s1-example-amd64.hex")
	doc := ToDocument(Decode(data, amd64), testNow)
	raw, _ := json.Marshal(doc)
	back, err := ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Report-only fields are accepted and ignored.
	f, err := FromDocument(back)
	if err != nil || !bytes.Equal(Encode(f), data) {
		t.Fatalf("JSON round trip: %v", err)
	}
	bad := []func(d *Document){
		func(d *Document) { d.Records[0].Flag = 4 },
		func(d *Document) { d.Records[0].Flag = 3 },
		func(d *Document) { d.Records[0].ID = "zz" },
		func(d *Document) { d.Records[0].ID = strings.Repeat("ab", 1025) },
		func(d *Document) { d.Boots = nil },
		func(d *Document) { d.Arch = "vax" },
		func(d *Document) { d.TimeSize = 4 },
		func(d *Document) { d.Records = append(d.Records, JSONRecord{Flag: 1, ID: ""}) },
	}
	for i, mutate := range bad {
		d := back
		d.Records = append([]JSONRecord{}, back.Records...)
		mutate(&d)
		if _, err := FromDocument(d); err == nil {
			t.Errorf("bad document %d accepted", i)
		}
	}
	if _, err := ParseDocument([]byte(`{"arch":"amd64","bogus":1}`)); err == nil {
		t.Errorf("unknown JSON field accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range goldenCases {
		f.Add(loadHex(f, c.file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []Layout{amd64, i386} {
			fl := Decode(data, l)
			if len(fl.Boots) > MaxBoots || len(fl.Records) > len(data)/3 {
				t.Fatalf("unbounded result: %d boots, %d records from %d bytes", len(fl.Boots), len(fl.Records), len(data))
			}
			if fl.Status == Valid && !bytes.Equal(Encode(fl), data) {
				t.Fatalf("valid file does not round trip")
			}
			if (fl.Status == Valid) != (fl.Problem == nil) {
				t.Fatalf("status %v with problem %v", fl.Status, fl.Problem)
			}
			Replay(fl)
			Check(fl, testNow)
		}
		Detect(data)
	})
}

// FuzzParseDocument: the JSON an operator edits. A document that parses
// and converts gives a file whose document converts back to the same
// file, byte for byte.
func FuzzParseDocument(f *testing.F) {
	for _, c := range goldenCases {
		if fl := Decode(loadHex(f, c.file), amd64); fl.Status == Valid {
			b, _ := json.Marshal(ToDocument(fl, testNow))
			f.Add(b)
		}
	}
	f.Add([]byte(`{"arch":"amd64","lease":120,"boots":[1700000000],"records":[{"flag":1,"id":"00ff"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDocument(data)
		if err != nil {
			return
		}
		fl, err := FromDocument(d)
		if err != nil {
			return
		}
		again, err := FromDocument(ToDocument(fl, testNow))
		if err != nil {
			t.Fatalf("a converted document no longer converts: %v", err)
		}
		if !bytes.Equal(Encode(again), Encode(fl)) {
			t.Fatalf("document round trip changed the file")
		}
	})
}

func BenchmarkDecodeVerify100k(b *testing.B) {
	recs := make([]Record, 100_000)
	for i := range recs {
		recs[i] = Record{Flag: byte(1 + i%2), ID: []byte(fmt.Sprintf("FreeBSD client %07d", i/2))}
	}
	data := build(amd64, 50, recs...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f := Decode(data, amd64)
		if f.Status != Valid || len(Replay(f)) != 50_000 {
			b.Fatal("bad decode")
		}
		Check(f, testNow)
	}
}

// The layout a file cannot decide is the host's own, named after the host's
// architecture; a file that does decide it is never overridden.
func TestDetectFromNative(t *testing.T) {
	arm64, ppc64 := must(Arch("arm64")), must(Arch("powerpc64"))
	rec := Record{Flag: 1, ID: []byte("client-one")}
	cases := []struct {
		name   string
		data   []byte
		native Layout
		want   string
	}{
		{"empty file on arm64", nil, arm64, "arm64"},
		{"empty file on powerpc64", nil, ppc64, "powerpc64"},
		{"amd64 file on arm64", build(amd64, 2, rec), arm64, "arm64"},
		{"powerpc64 file on amd64", build(ppc64, 2, rec), amd64, "powerpc64"},
		{"i386 file on powerpc64", build(i386, 2, rec), ppc64, "i386"},
		{"amd64 file on powerpc64", build(amd64, 2, rec), ppc64, "amd64"},
	}
	for _, c := range cases {
		if d := DetectFrom(c.data, c.native); d.Layout.Name != c.want || d.Ambiguous != "" {
			t.Errorf("%s: detected %s (%q), want %s", c.name, d.Layout.Name, d.Ambiguous, c.want)
		}
	}
}

// A file in this machine's own layout, as its kernel writes it, is detected
// as native and re-encodes byte for byte. Run under qemu-s390x (make test)
// this covers the big-endian byte order end to end.
func TestNativeRoundTrip(t *testing.T) {
	native := Native()
	data := build(native, 4, Record{Flag: 1, ID: []byte("client-one")}, Record{Flag: 2, ID: []byte("client-two")},
		Record{Flag: 1, ID: []byte{0, 1, 2, 0xff}})
	d := Detect(data)
	if d.Layout != native || d.Ambiguous != "" {
		t.Fatalf("native %s file detected as %s (%q)", native.Name, d.Layout.Name, d.Ambiguous)
	}
	f := Decode(data, d.Layout)
	if f.Status != Valid || len(f.Records) != 3 {
		t.Fatalf("decode: status %v, %d records", f.Status, len(f.Records))
	}
	if lease := binary.NativeEndian.Uint32(data); lease != 120 {
		t.Errorf("the lease reads as %d in this machine's byte order, want 120", lease)
	}
	if again := Encode(f); !bytes.Equal(again, data) {
		t.Errorf("re-encoded file differs:\n% x\n% x", again, data)
	}
}
