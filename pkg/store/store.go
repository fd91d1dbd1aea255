package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// DefaultPath is where the database lives unless configured otherwise.
const DefaultPath = "/var/lib/nfs/nfsrecover.db"

// DefaultTimeout bounds the wait for another process's lock.
const DefaultTimeout = 10 * time.Second

// Sentinel errors callers branch on.
var (
	// ErrLockTimeout: another process held the file longer than the timeout.
	ErrLockTimeout = errors.New("timed out waiting for the database lock")
	// ErrNotDatabase: the file exists but is not a bbolt database.
	ErrNotDatabase = errors.New("not an nfsrecover database")
	// ErrSchemaTooNew: the file was written by a newer nfsrecover.
	ErrSchemaTooNew = errors.New("database schema is newer than this program supports")
	// ErrCorrupt: a record does not decode.
	ErrCorrupt = errors.New("corrupt record")
)

// Options tunes Open. The zero value is read-write with DefaultTimeout.
type Options struct {
	// Timeout is the longest wait for the file lock; 0 means DefaultTimeout.
	Timeout time.Duration
	// ReadOnly opens with a shared lock and never migrates; the file must
	// exist. Default false.
	ReadOnly bool
	// File, when set, is an open read-write descriptor of the file at
	// path, which Open uses (a duplicate of it) instead of opening path.
	// A daemon that drops its capabilities after start-up keeps one so
	// that it can still open a database owned by another user. The lock
	// is then taken on the shared open file description.
	File *os.File
}

// DB is an open database. It is safe for concurrent use by goroutines.
type DB struct {
	bolt   *bolt.DB
	path   string
	schema uint32
}

var bucketMeta = []byte("meta")

var keySchema = []byte("schema")

// Open opens (creating if needed, unless read-only) the database at path.
// If the file's directory is missing, its last component is created with
// mode 0700, as nfsdcltrack does for its storage directory.
func Open(path string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist) && !o.ReadOnly
	b, err := openBolt(path, o)
	if errors.Is(err, os.ErrNotExist) && !o.ReadOnly {
		dir := filepath.Dir(path)
		mkErr := os.Mkdir(dir, 0o700)
		if mkErr == nil {
			mkErr = syncDir(filepath.Dir(dir)) // the new directory's entry
		}
		if mkErr == nil || errors.Is(mkErr, os.ErrExist) {
			b, err = openBolt(path, o)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, classify(err))
	}
	db := &DB{bolt: b, path: path}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			b.Close()
			return nil, fmt.Errorf("store: open %s: sync directory: %w", path, err)
		}
	}
	if err := db.prepareSchema(o.ReadOnly); err != nil {
		b.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

func openBolt(path string, o Options) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{
		ReadOnly:     o.ReadOnly,
		OpenFile:     lockingOpener(o.Timeout, !o.ReadOnly, o.File),
		FreelistType: bolt.FreelistMapType,
	})
}

// classify maps bbolt's open errors onto our sentinels.
func classify(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) {
		return pe.Err // "no such file or directory": the caller names the path once
	}
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("%w (%v)", ErrNotDatabase, err)
	case errors.Is(err, berrors.ErrTimeout):
		return ErrLockTimeout
	}
	return err
}

// lockingOpener opens the file and takes its flock, polling with a short
// backoff. bbolt's own flock on the same descriptor then succeeds at once;
// its built-in retry sleeps 50ms between tries, far too coarse when the
// kernel runs several nfsdcltrack upcalls at the same time.
func lockingOpener(timeout time.Duration, exclusive bool, kept *os.File) func(string, int, os.FileMode) (*os.File, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	return func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := openOrDup(name, flag, perm, kept)
		if err != nil {
			return nil, err
		}
		if err := waitLock(int(f.Fd()), how, timeout); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// openOrDup opens name, or duplicates kept when there is one.
func openOrDup(name string, flag int, perm os.FileMode, kept *os.File) (*os.File, error) {
	if kept == nil {
		return os.OpenFile(name, flag, perm)
	}
	fd, err := unix.FcntlInt(kept.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func waitLock(fd, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("flock: %w", err)
		}
		if time.Now().After(deadline) {
			return ErrLockTimeout
		}
		time.Sleep(delay)
		delay = min(delay*2, 5*time.Millisecond)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close releases the file and its lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Schema returns the schema version found at Open (after migration).
func (db *DB) Schema() uint32 { return db.schema }

// Update runs fn in a read-write transaction and commits it durably.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction. It must not be used after its function returns.
type Tx struct{ tx *bolt.Tx }

// prepareSchema reads the version and migrates when needed and allowed.
func (db *DB) prepareSchema(readOnly bool) error {
	var v uint32
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schemaOf(tx)
		return err
	})
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: file has schema %d, this program knows up to %d", ErrSchemaTooNew, v, SchemaVersion)
	}
	if v == SchemaVersion || readOnly {
		db.schema = v
		return nil
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		// Re-read inside the write lock: another process may have migrated.
		cur, err := schemaOf(tx)
		if err != nil || cur >= SchemaVersion {
			return err
		}
		return migrate(tx, cur)
	})
	if err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, SchemaVersion, err)
	}
	db.schema = SchemaVersion
	return nil
}

func schemaOf(tx *bolt.Tx) (uint32, error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0, nil
	}
	raw := b.Get(keySchema)
	if len(raw) != 4 {
		return 0, fmt.Errorf("meta/schema: %w: %d bytes, want 4", ErrCorrupt, len(raw))
	}
	return binary.BigEndian.Uint32(raw), nil
}
