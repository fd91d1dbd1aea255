//go:build !nosqlite

// Package sqlitefile opens the legacy SQLite databases (nfsdcltrack's and
// nfsdcld's main.sqlite) the one way nfsrecover does: a source read-only,
// never created or changed; a new file read-write. It is the only package
// that links the SQLite driver (modernc.org/sqlite, pure Go); build with
// -tags nosqlite to leave it out.
package sqlitefile

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

func dsn(path, query string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: abs, RawQuery: query}).String(), nil
}

// OpenReadOnly opens an existing database without any right to change it
// (mode=ro): a missing file is an error, never a new empty database.
func OpenReadOnly(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return open(path, "mode=ro")
}

// Open opens (creating) a database read-write, for writing an export to
// a temporary file.
func Open(path string) (*sql.DB, error) { return open(path, "") }

func open(path, query string) (*sql.DB, error) {
	src, err := dsn(path, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db, err := sql.Open("sqlite", src)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}
