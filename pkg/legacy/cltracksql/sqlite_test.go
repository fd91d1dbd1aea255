//go:build !nosqlite

package cltracksql

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"nfsrecover/pkg/store"
)

func exec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	in := []store.Client{
		{ID: []byte{}, Time: 0, HasSession: store.SessionYes},
		{ID: []byte{0, 1, 0xff}, Time: -5, HasSession: store.SessionUnknown},
		{ID: bytes.Repeat([]byte{0xab}, store.MaxIDLen), Time: 1700000000, HasSession: store.SessionNo},
		{ID: []byte("Linux NFSv4.1 host"), Time: 42, HasSession: store.SessionYes},
	}
	if err := Write(path, in, false); err != nil {
		t.Fatal(err)
	}
	snap, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Client{in[0], in[1], in[3], in[2]} // SQLite orders BLOBs by bytes
	for i := range want {
		want[i].Origin = store.OriginImported
	}
	if snap.Version != 2 || !reflect.DeepEqual(snap.Clients, want) {
		t.Fatalf("got %d %+v\nwant %+v", snap.Version, snap.Clients, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := Write(path, in, false); err == nil {
		t.Errorf("overwrote without force")
	}
	if err := Write(path, in[:1], true); err != nil {
		t.Errorf("forced overwrite: %v", err)
	}
}

func TestExactSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Write(path, nil, false); err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("sqlite", "file:"+path)
	defer db.Close()
	rows, err := db.Query(`SELECT sql FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	want := []string{
		"CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER, has_session INTEGER)",
		"CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("schema %q", got)
	}
	var v, typ string
	db.QueryRow(`SELECT value, typeof(value) FROM parameters WHERE key = 'version'`).Scan(&v, &typ)
	if v != "2" || typ != "text" {
		t.Errorf("version %q (%s)", v, typ)
	}
}

func TestReadSchemaV1AndLeavesItAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	exec(t, path,
		"CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);",
		"CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER);",
		"INSERT INTO parameters VALUES ('version', '1');",
		"INSERT INTO clients VALUES (x'aa', 7);")
	before := sum(t, path)
	snap, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 1 || len(snap.Clients) != 1 || snap.Clients[0].HasSession != store.SessionUnknown || snap.Clients[0].Time != 7 {
		t.Fatalf("v1 read: %+v", snap)
	}
	if sum(t, path) != before {
		t.Errorf("Read modified the source database")
	}
}

func sum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestReadRejectsBadInput(t *testing.T) {
	base := []string{
		"CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);",
		"CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER, has_session INTEGER);",
	}
	cases := []struct {
		name  string
		stmts []string
		want  string
	}{
		{"version 9", []string{"INSERT INTO parameters VALUES ('version','9');"}, `unsupported nfsdcltrack schema version "9"`},
		{"no version", nil, "no schema version"},
		{"text id", []string{"INSERT INTO parameters VALUES ('version','2');", "INSERT INTO clients VALUES ('txt', 1, 0);"}, "id is text"},
		{"null time", []string{"INSERT INTO parameters VALUES ('version','2');", "INSERT INTO clients VALUES (x'01', NULL, 0);"}, "time is null"},
		{"bad session", []string{"INSERT INTO parameters VALUES ('version','2');", "INSERT INTO clients VALUES (x'01', 1, 7);"}, "has_session is integer 7"},
		{"long id", []string{"INSERT INTO parameters VALUES ('version','2');", "INSERT INTO clients VALUES (zeroblob(1025), 1, 0);"}, "1025 bytes"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), FileName)
		exec(t, path, append(append([]string{}, base...), c.stmts...)...)
		_, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want it to name %q and the file", c.name, err, c.want)
		}
	}
	garbage := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(garbage, bytes.Repeat([]byte("garbage!"), 512), 0o644)
	if _, err := Read(garbage); err == nil {
		t.Errorf("garbage file accepted")
	}
}

// FuzzRead feeds arbitrary bytes as a database file: Read must fail
// cleanly or return records that respect the limits.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.sqlite")
	if err := Write(seed, []store.Client{{ID: []byte("a"), Time: 1, HasSession: store.SessionYes}}, false); err != nil {
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
		for _, c := range snap.Clients {
			if len(c.ID) > store.MaxIDLen || c.HasSession > store.SessionYes {
				t.Fatalf("bad client %+v", c)
			}
		}
		// Round trip: what was read, written as nfsdcltrack's schema, reads
		// back the same.
		again := filepath.Join(t.TempDir(), FileName)
		if err := Write(again, snap.Clients, false); err != nil {
			t.Fatalf("writing %d clients read from a database: %v", len(snap.Clients), err)
		}
		back, err := Read(again)
		if err != nil || fmt.Sprint(back.Clients) != fmt.Sprint(snap.Clients) {
			t.Fatalf("round trip: %v\n%+v\n->\n%+v", err, snap.Clients, back.Clients)
		}
	})
}
