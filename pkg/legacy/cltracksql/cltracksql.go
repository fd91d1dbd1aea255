// Package cltracksql reads and writes nfsdcltrack's SQLite database
// (<storagedir>/main.sqlite), schema versions 1 and 2.
//
// Schema 2, exactly as nfsdcltrack creates it:
//
//	CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);
//	CREATE TABLE clients (id BLOB PRIMARY KEY, time INTEGER, has_session INTEGER);
//
// with the row ('version', '2'). Schema 1 lacks has_session; its rows read
// as has_session NULL, as nfsdcltrack's own migration leaves them.
//
// Read opens the file read-only and never migrates it. Write always
// produces schema 2 in a temporary file that is fsync'd and renamed into
// place, so the real nfsdcltrack accepts it and a crash leaves the old file.
//
// Files are opened through pkg/legacy/sqlitefile (the SQLite driver,
// modernc.org/sqlite, pure Go); build with -tags nosqlite to leave it out
// of embedded images, where Read and Write then return ErrNotBuilt.
package cltracksql

import (
	"errors"

	"nfsrecover/pkg/store"
)

// FileName is the database file inside nfsdcltrack's storage directory.
const FileName = "main.sqlite"

// ErrNotBuilt is returned when the binary was built without SQLite.
var ErrNotBuilt = errors.New("this nfsrecover was built without SQLite support (-tags nosqlite)")

// Snapshot is the content of one nfsdcltrack database.
type Snapshot struct {
	Version int            // schema version found: 1 or 2
	Clients []store.Client // in id order
}
