//go:build nosqlite

package cldsql

// Available reports whether this build can read and write SQLite.
const Available = false

// Read is unavailable without SQLite support.
func Read(path string) (Snapshot, error) { return Snapshot{}, ErrNotBuilt }

// Write is unavailable without SQLite support.
func Write(path string, s Snapshot, overwrite bool) error { return ErrNotBuilt }
