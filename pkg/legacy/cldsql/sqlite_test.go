//go:build !nosqlite

package cldsql

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/store"
)

func snapshot() Snapshot {
	return Snapshot{Version: 4, Epochs: store.Epochs{Current: 3, Recovery: 2, FirstTime: false},
		Records: map[uint64][]store.CldRecord{
			3: {{ID: []byte("new")}},
			2: {{ID: []byte("zeta"), PrincHash: bytes.Repeat([]byte{7}, 32)}, {ID: []byte("alpha")}},
		}}
}

// TestWriteMatchesNfsdcldSchema: the file we write dumps as nfsdcld 2.6.2
// creates its own (the sqlite3 dump in nfsdcld.md B2).
func TestWriteMatchesNfsdcldSchema(t *testing.T) {
	testenv.NeedTools(t, "sqlite3")
	p := filepath.Join(t.TempDir(), FileName)
	if err := Write(p, snapshot(), false); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sqlite3", p, ".schema").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);",
		"CREATE TABLE grace (current INTEGER , recovery INTEGER);",
		`CREATE TABLE IF NOT EXISTS "rec-0000000000000002" (id BLOB PRIMARY KEY, princhash blob);`,
		`CREATE TABLE IF NOT EXISTS "rec-0000000000000003" (id BLOB PRIMARY KEY, princhash blob);`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("schema lacks %q:\n%s", want, out)
		}
	}
	rows, _ := exec.Command("sqlite3", p, "select key, value, typeof(value) from parameters order by key; select typeof(current), current, recovery from grace; select hex(id), typeof(princhash) from \"rec-0000000000000002\" order by rowid").Output()
	want := "first_time|0|text\nversion|4|text\ninteger|3|2\n7A657461|blob\n616C706861|null\n"
	if string(rows) != want {
		t.Errorf("rows:\n%s\nwant:\n%s", rows, want)
	}
}

func TestRoundTripAndRefusals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	if err := Write(p, snapshot(), false); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, snapshot(), false); err == nil {
		t.Error("Write replaced an existing file without overwrite")
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Epochs, got.Records) != fmt.Sprint(snapshot().Epochs, snapshot().Records) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", got, snapshot())
	}
	ct := filepath.Join(t.TempDir(), FileName)
	if err := cltracksql.Write(ct, []store.Client{{ID: []byte("x"), Time: 1}}, false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(ct)
	if _, err := Read(ct); err == nil || !strings.Contains(err.Error(), "nfsdcltrack") {
		t.Errorf("reading an nfsdcltrack database: %v", err)
	}
	if after, _ := os.ReadFile(ct); !bytes.Equal(before, after) {
		t.Error("Read changed the file")
	}
}

func FuzzRead(f *testing.F) {
	seed := filepath.Join(f.TempDir(), FileName)
	if err := Write(seed, snapshot(), false); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(seed)
	f.Add(b)
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		snap, err := Read(p)
		if err != nil {
			return
		}
		for _, recs := range snap.Records {
			for _, r := range recs {
				if len(r.ID) > store.MaxIDLen || len(r.PrincHash) > 32 {
					t.Fatalf("bad record %+v", r)
				}
			}
		}
		again := filepath.Join(t.TempDir(), FileName)
		if err := Write(again, snap, false); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
		back, err := Read(again)
		if err != nil || fmt.Sprint(back.Epochs, back.Records) != fmt.Sprint(snap.Epochs, snap.Records) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, snap)
		}
	})
}
