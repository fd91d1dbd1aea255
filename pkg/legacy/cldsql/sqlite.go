//go:build !nosqlite

package cldsql

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/legacy/sqlitefile"
	"nfsrecover/pkg/store"
)

// Available reports whether this build can read and write SQLite.
const Available = true

// DDL exactly as nfsdcld 2.6.2 creates it.
const (
	ddlParameters = "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
	ddlGrace      = "CREATE TABLE grace (current INTEGER , recovery INTEGER);"
	ddlEpoch      = `CREATE TABLE "%s" (id BLOB PRIMARY KEY, princhash blob);`
)

// TableName is nfsdcld's table of epoch n.
func TableName(n uint64) string { return fmt.Sprintf("rec-%016x", n) }

// Read loads the database at path without modifying it.
func Read(path string) (Snapshot, error) {
	db, err := sqlitefile.OpenReadOnly(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("cldsql: %w", err)
	}
	defer db.Close()
	snap, err := readDB(db)
	if err != nil {
		return Snapshot{}, fmt.Errorf("cldsql: %s: %w", path, err)
	}
	return snap, nil
}

func readDB(db *sql.DB) (Snapshot, error) {
	var snap Snapshot
	version, err := param(db, "version")
	if err != nil {
		return snap, err
	}
	switch version {
	case "3", "4":
		snap.Version = int(version[0] - '0')
	default:
		if hasTable(db, "clients") {
			return snap, fmt.Errorf("%w: schema %q with table clients is nfsdcltrack's (import it as nfsdcltrack)", ErrNotCld, version)
		}
		return snap, fmt.Errorf("%w: unsupported schema version %q (want 3 or 4)", ErrNotCld, version)
	}
	ft, err := param(db, "first_time")
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return snap, err
	}
	snap.Epochs.FirstTime = ft == "1"
	if err := readGrace(db, &snap.Epochs); err != nil {
		return snap, err
	}
	return snap, readEpochs(db, &snap)
}

func param(db *sql.DB, key string) (string, error) {
	var v string
	err := db.QueryRow(`SELECT CAST(value AS TEXT) FROM parameters WHERE key = ?`, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows) && key == "version":
		return "", fmt.Errorf("%w: no version in table parameters", ErrNotCld)
	case err != nil && key == "version":
		return "", fmt.Errorf("%w: read schema version: %v", ErrNotCld, err)
	case err != nil:
		return "", fmt.Errorf("parameters %s: %w", key, err)
	}
	return v, nil
}

func hasTable(db *sql.DB, name string) bool {
	var n int
	err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	return err == nil && n > 0
}

func readGrace(db *sql.DB, e *store.Epochs) error {
	rows, err := db.Query(`SELECT rowid, typeof(current), current, typeof(recovery), recovery FROM grace`)
	if err != nil {
		return fmt.Errorf("table grace: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var rowid int64
		var tc, tr string
		var cur, rec int64
		if err := rows.Scan(&rowid, &tc, &cur, &tr, &rec); err != nil {
			return fmt.Errorf("grace row: %w", err)
		}
		if tc != "integer" || tr != "integer" || cur < 1 || rec < 0 {
			return fmt.Errorf("grace row %d: current %s %d, recovery %s %d: want integers, current >= 1", rowid, tc, cur, tr, rec)
		}
		e.Current, e.Recovery = uint64(cur), uint64(rec)
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table grace: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("table grace has %d rows, want 1", n)
	}
	return nil
}

// readEpochs reads the current and recovery epochs' tables.
func readEpochs(db *sql.DB, snap *Snapshot) error {
	tables, err := epochTables(db)
	if err != nil {
		return err
	}
	snap.Records = map[uint64][]store.CldRecord{}
	want := []uint64{snap.Epochs.Current}
	if snap.Epochs.Recovery != 0 {
		want = append(want, snap.Epochs.Recovery)
	}
	for _, n := range want {
		name, ok := tables[n]
		if !ok {
			return fmt.Errorf("no table %q for epoch %d named in table grace", TableName(n), n)
		}
		recs, err := readEpoch(db, name, snap.Version)
		if err != nil {
			return err
		}
		snap.Records[n] = recs
		delete(tables, n)
	}
	for _, name := range tables {
		snap.Stale = append(snap.Stale, name)
	}
	slices.Sort(snap.Stale)
	return nil
}

// epochTables maps epoch numbers to their table names ("rec-" and hex,
// padded or not, as nfsdcld's health check accepts).
func epochTables(db *sql.DB) (map[uint64]string, error) {
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rec-%'`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	out := map[uint64]string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(name, "rec-"), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("table %q: not rec-<hex epoch>", name)
		}
		if old, dup := out[n]; dup {
			return nil, fmt.Errorf("tables %q and %q both hold epoch %d", old, name, n)
		}
		out[n] = name
	}
	return out, rows.Err()
}

func readEpoch(db *sql.DB, table string, version int) ([]store.CldRecord, error) {
	ph := "'null', NULL"
	if version >= 4 {
		ph = "typeof(princhash), princhash"
	}
	q := fmt.Sprintf(`SELECT rowid, typeof(id), id, %s FROM "%s" ORDER BY rowid`, ph, table) // nfsdcld streams in rowid order
	rows, err := db.Query(q)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", table, err)
	}
	defer rows.Close()
	recs := []store.CldRecord{}
	for rows.Next() {
		var rowid int64
		var tid, tph string
		var id, hash []byte
		if err := rows.Scan(&rowid, &tid, &id, &tph, &hash); err != nil {
			return nil, fmt.Errorf("table %q: %w", table, err)
		}
		switch {
		case tid != "blob" && tid != "text":
			return nil, fmt.Errorf("table %q row %d: id is %s, want blob", table, rowid, tid)
		case len(id) > store.MaxIDLen:
			return nil, fmt.Errorf("table %q row %d (id %x): id is %d bytes, longer than %d", table, rowid, id, len(id), store.MaxIDLen)
		case tph != "null" && tph != "blob":
			return nil, fmt.Errorf("table %q row %d (id %x): princhash is %s, want blob or NULL", table, rowid, id, tph)
		case len(hash) > 32:
			return nil, fmt.Errorf("table %q row %d (id %x): princhash is %d bytes, longer than 32", table, rowid, id, len(hash))
		}
		recs = append(recs, store.CldRecord{ID: append([]byte{}, id...), PrincHash: append([]byte{}, hash...)})
	}
	return recs, rows.Err()
}

// Write creates a schema 4 database at path holding s. It refuses to
// replace an existing file unless overwrite is set; the replacement is
// atomic either way.
func Write(path string, s Snapshot, overwrite bool) error {
	return fileutil.WriteAtomic(path, overwrite, 0o600, func(tmp string) error {
		return writeDB(tmp, s)
	})
}

func writeDB(path string, s Snapshot) error {
	db, err := sqlitefile.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ft := "0"
	if s.Epochs.FirstTime {
		ft = "1"
	}
	stmts := []string{ddlParameters,
		`INSERT INTO parameters (key, value) VALUES ('version', '4');`,
		`INSERT INTO parameters (key, value) VALUES ('first_time', '` + ft + `');`,
		ddlGrace,
		fmt.Sprintf(`INSERT INTO grace (current, recovery) VALUES (%d, %d);`, s.Epochs.Current, s.Epochs.Recovery)}
	for _, st := range stmts {
		if _, err := tx.Exec(st); err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	for _, n := range sortedEpochs(s.Records) {
		if err := writeEpoch(tx, n, s.Records[n]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return db.Close()
}

func sortedEpochs(m map[uint64][]store.CldRecord) []uint64 {
	var out []uint64
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func writeEpoch(tx *sql.Tx, n uint64, recs []store.CldRecord) error {
	name := TableName(n)
	if _, err := tx.Exec(fmt.Sprintf(ddlEpoch, name)); err != nil {
		return fmt.Errorf("create table %q: %w", name, err)
	}
	ins, err := tx.Prepare(fmt.Sprintf(`INSERT INTO "%s" (id, princhash) VALUES (?, ?)`, name))
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, r := range recs {
		var ph any // NULL, as nfsdcld stores an empty hash
		if len(r.PrincHash) > 0 {
			ph = r.PrincHash
		}
		if _, err := ins.Exec(append([]byte{}, r.ID...), ph); err != nil {
			return fmt.Errorf("table %q: insert %x: %w", name, r.ID, err)
		}
	}
	return nil
}
