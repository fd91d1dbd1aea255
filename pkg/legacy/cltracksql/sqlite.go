//go:build !nosqlite

package cltracksql

import (
	"database/sql"
	"errors"
	"fmt"

	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/legacy/sqlitefile"
	"nfsrecover/pkg/store"
)

// Available reports whether this build can read and write SQLite.
const Available = true

// Exact DDL of nfsdcltrack schema 2.
const (
	ddlParameters = "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
	ddlClients    = "CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER, has_session INTEGER);"
)

// Read loads the database at path without modifying it.
func Read(path string) (Snapshot, error) {
	db, err := sqlitefile.OpenReadOnly(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("cltracksql: %w", err)
	}
	defer db.Close()
	snap, err := readDB(db)
	if err != nil {
		return Snapshot{}, fmt.Errorf("cltracksql: %s: %w", path, err)
	}
	return snap, nil
}

func readDB(db *sql.DB) (Snapshot, error) {
	var version string
	err := db.QueryRow(`SELECT CAST(value AS TEXT) FROM parameters WHERE key = 'version'`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Snapshot{}, errors.New("no schema version in table parameters: not an nfsdcltrack database")
	case err != nil:
		return Snapshot{}, fmt.Errorf("read schema version (not an nfsdcltrack database?): %w", err)
	}
	query := map[string]string{
		"1": `SELECT rowid, typeof(id), id, typeof(time), time, 'null', NULL FROM clients ORDER BY id`,
		"2": `SELECT rowid, typeof(id), id, typeof(time), time, typeof(has_session), has_session FROM clients ORDER BY id`,
	}[version]
	if query == "" {
		return Snapshot{}, fmt.Errorf("unsupported nfsdcltrack schema version %q (want 1 or 2)", version)
	}
	rows, err := db.Query(query)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read clients: %w", err)
	}
	defer rows.Close()
	snap := Snapshot{Version: int(version[0] - '0')}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Clients = append(snap.Clients, c)
	}
	if err := rows.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("read clients: %w", err)
	}
	return snap, nil
}

func scanClient(rows *sql.Rows) (store.Client, error) {
	var rowid int64
	var idType, timeType, hsType string
	var id []byte
	var tm, hs sql.NullInt64
	if err := rows.Scan(&rowid, &idType, &id, &timeType, &tm, &hsType, &hs); err != nil {
		return store.Client{}, fmt.Errorf("clients row: %w", err)
	}
	bad := func(format string, args ...any) (store.Client, error) {
		return store.Client{}, fmt.Errorf("clients row %d (id %x): %s", rowid, id, fmt.Sprintf(format, args...))
	}
	c := store.Client{ID: append([]byte{}, id...), Time: tm.Int64, Origin: store.OriginImported}
	switch {
	case idType != "blob":
		return bad("id is %s, want blob", idType)
	case len(id) > store.MaxIDLen:
		return bad("id is %d bytes, longer than %d", len(id), store.MaxIDLen)
	case timeType != "integer":
		return bad("time is %s, want integer", timeType)
	}
	switch {
	case hsType == "null":
		c.HasSession = store.SessionUnknown
	case hsType == "integer" && hs.Int64 == 0:
		c.HasSession = store.SessionNo
	case hsType == "integer" && hs.Int64 == 1:
		c.HasSession = store.SessionYes
	default:
		return bad("has_session is %s %d, want 0, 1 or NULL", hsType, hs.Int64)
	}
	return c, nil
}

// Write creates a schema 2 database at path holding clients. It refuses to
// replace an existing file unless overwrite is set; the replacement is
// atomic either way.
func Write(path string, clients []store.Client, overwrite bool) error {
	return fileutil.WriteAtomic(path, overwrite, 0o644, func(tmp string) error {
		return writeDB(tmp, clients)
	})
}

func writeDB(path string, clients []store.Client) error {
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
	for _, stmt := range []string{ddlParameters, ddlClients, `INSERT INTO parameters (key, value) VALUES ('version', '2');`} {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	ins, err := tx.Prepare(`INSERT INTO clients (id, time, has_session) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, c := range clients {
		var hs any // NULL
		switch c.HasSession {
		case store.SessionNo:
			hs = int64(0)
		case store.SessionYes:
			hs = int64(1)
		}
		if _, err := ins.Exec(append([]byte{}, c.ID...), c.Time, hs); err != nil {
			return fmt.Errorf("insert client %x: %w", c.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return db.Close()
}
