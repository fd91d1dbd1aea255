// Package store is nfsrecover's single database: one bbolt file that every
// applet shares (default DefaultPath). It is the only package that imports
// bbolt; the others see typed records and single-purpose operations.
//
// # Basics
//
// Open the file for one operation, do it, Close it. Every write is one bbolt
// transaction; Update returns only after bbolt has fsync'd the data and the
// meta page, so a caller that reports "recorded" may do so as soon as Update
// returns nil. When Open creates the file it also fsyncs the directory, so
// the new name survives a crash.
//
// # Schema
//
// Bucket "meta" holds the schema version (big-endian uint32 under key
// "schema"). Open brings an older file up to SchemaVersion by running the
// forward migrations, all in one write transaction, so a crash leaves
// either the old or the new schema. A file with a newer schema is refused
// with ErrSchemaTooNew: we never guess at a format we do not know.
// Checking the version is a read-only transaction, so the common case costs
// no write and no fsync.
//
// # Sharing the file (locking rule)
//
// bbolt holds a flock on the file while it is open: exclusive for
// read-write, shared for read-only. nfsdcltrack is exec'd by the kernel for
// every client event, possibly several at once, and must never fail because
// another process holds the file. So:
//
//   - Nobody keeps the file open between operations. Short-lived applets
//     (cltrack, notify, the db tool) open, run one transaction, close.
//   - The long-running statd keeps its monitor list in memory and opens the
//     file only to commit: pending SM_MON/SM_UNMON changes are gathered into
//     one transaction (group commit), so the lock is held for one commit,
//     a few milliseconds, and released at once.
//   - Open waits for the lock up to Options.Timeout (DefaultTimeout, 10 s,
//     the same bound as nfsdcltrack's SQLite busy timeout), polling with a
//     backoff that starts at 100µs, then fails with ErrLockTimeout.
//
// statd drops privileges to the owner of the state directory, while cltrack
// runs as root without capabilities. cltrack opens the database before it
// drops its capabilities, so the file may be owned by the statd user.
//
// # Caveats
//
// Byte slices handed to callbacks are copies: they stay valid after the
// transaction. Client ids may be empty (nfsdcltrack accepts a zero-length
// id), so keys carry a one-byte prefix; bbolt refuses empty keys.
package store
