// Package cldsql reads and writes nfsdcld's SQLite database
// (<storagedir>/main.sqlite), schema versions 3 and 4, as nfs-utils'
// utils/nfsdcld/sqlite.c lays it out:
//
//	CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);  -- version, first_time
//	CREATE TABLE grace (current INTEGER , recovery INTEGER);
//	CREATE TABLE "rec-%016x" (id BLOB PRIMARY KEY, princhash blob);  -- one per epoch
//
// Schema 3 has no princhash column. An empty principal hash is stored as
// NULL, as nfsdcld stores it.
//
// Read opens the file read-only and never changes it: nfsdcld 2.6.2
// rewrites an nfsdcltrack database in place into one neither tool can
// open, and we must never do the same. Write produces schema 4 in a
// temporary file that is fsync'd and renamed into place.
//
// Files are opened through pkg/legacy/sqlitefile; with -tags nosqlite
// Read and Write return ErrNotBuilt.
package cldsql

import (
	"errors"

	"nfsrecover/pkg/store"
)

// FileName is the database file inside nfsdcld's storage directory.
const FileName = "main.sqlite"

// ErrNotBuilt is returned when the binary was built without SQLite.
var ErrNotBuilt = errors.New("this nfsrecover was built without SQLite support (-tags nosqlite)")

// ErrNotCld means the file is an SQLite database but not nfsdcld's: an
// nfsdcltrack database (table clients) says so in the error.
var ErrNotCld = errors.New("not an nfsdcld database")

// Snapshot is the content of one nfsdcld database: the grace table and
// the records of its current and recovery epochs. Tables of other epochs
// (left over, never read by nfsdcld) are counted, not kept.
type Snapshot struct {
	Version int // schema version found: 3 or 4
	Epochs  store.Epochs
	Records map[uint64][]store.CldRecord
	Stale   []string // tables of epochs that are neither current nor recovery
}
