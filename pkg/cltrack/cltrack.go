// Package cltrack implements nfsdcltrack, the program the Linux kernel
// execs for every NFSv4 client-tracking event (init, create, remove, check,
// gracedone), over nfsrecover's database.
//
// From the kernel's point of view it is nfsdcltrack (nfs-utils 2.6.2):
// same arguments, same environment variables, same exit statuses, same
// record semantics (v4.0 check refreshes the time, v4.1 check does not;
// gracedone forgets every client older than the boot time), the early
// grace lift through /proc/fs/nfsd/v4_end_grace, and the hand-over from the
// legacy v4recovery directories.
//
// # Deliberate fixes
//
// Two nfsdcltrack bugs are fixed unless Tracker.Compat is set:
//
//   - "gracedone -- -1" (any negative time) wiped every record, because
//     the value was printed into SQL as an unsigned number. We refuse it
//     with EINVAL (exit 234).
//   - A check that found the client's legacy directory inserted the record
//     and then failed (exit 255, reclaim refused) when the directory could
//     not be removed, e.g. because it was not empty. The record exists, so
//     we allow the reclaim and log a warning.
//
// # Extension
//
// Clients imported from a v4recovery directory exist only as md5 names
// (hash-only records). A check whose id hashes to one succeeds once and
// turns it into a full record, as the legacy directory itself would have.
package cltrack

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"nfsrecover/pkg/store"
)

// DefaultEndGraceFile is where writing "Y" ends nfsd's grace period.
const DefaultEndGraceFile = "/proc/fs/nfsd/v4_end_grace"

// Tracker runs nfsdcltrack commands.
type Tracker struct {
	// Open opens the database for one command. It is called before the id
	// is decoded, so database errors take precedence, as in nfsdcltrack.
	Open func() (DB, error)
	// StorageDir is checked for writability by init (a warning only).
	StorageDir string
	// Env is the upcall's environment.
	Env Env
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// EndGraceFile is written to lift grace early; "" means
	// DefaultEndGraceFile.
	EndGraceFile string
	// Compat reproduces nfsdcltrack's bugs listed in the package doc.
	Compat bool
	// Log receives one line per event; nil discards.
	Log *slog.Logger
}

type command struct {
	name    string
	needArg bool
	run     func(t *Tracker, arg string) error
}

var commands = []command{
	{"init", false, (*Tracker).initCmd},
	{"create", true, (*Tracker).create},
	{"remove", true, (*Tracker).remove},
	{"check", true, (*Tracker).check},
	{"gracedone", true, (*Tracker).gracedone},
}

// Run executes the command in operands ([cmd, arg, ...]); extra operands
// are ignored. The error, if any, is an *Error carrying the exit status.
func (t *Tracker) Run(operands []string) error {
	if len(operands) == 0 {
		return fail(syscall.EINVAL, "missing command name")
	}
	for _, c := range commands {
		if c.name != operands[0] {
			continue
		}
		if c.needArg && len(operands) < 2 {
			return fail(syscall.EINVAL, "command %s requires an argument", c.name)
		}
		arg := ""
		if c.needArg {
			arg = operands[1]
		}
		return c.run(t, arg)
	}
	return fail(syscall.ENOSYS, "%q doesn't match any known command", operands[0])
}

func (t *Tracker) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

func (t *Tracker) now() int64 {
	if t.Now == nil {
		return time.Now().Unix()
	}
	return t.Now().Unix()
}

// withDB opens the database, runs fn and closes it.
func (t *Tracker) withDB(fn func(DB) error) error {
	db, err := t.Open()
	if err != nil {
		return openFailure(err)
	}
	defer db.Close()
	return fn(db)
}

// withID opens the database, then decodes the hex id, then runs fn.
func (t *Tracker) withID(hexID string, fn func(DB, []byte) error) error {
	return t.withDB(func(db DB) error {
		id, err := DecodeHex(hexID)
		if err != nil {
			return err
		}
		return fn(db, id)
	})
}

func (t *Tracker) initCmd(string) error {
	if err := syscall.Access(t.StorageDir, 2 /* W_OK */); err != nil {
		var errno syscall.Errno
		switch {
		case errors.Is(err, syscall.EACCES):
			t.log().Warn("storage directory is not writable; it should be owned by root and writable by its owner", "dir", t.StorageDir)
		case errors.Is(err, syscall.ENOENT):
		case errors.As(err, &errno):
			return &Error{Status: errnoStatus(errno), Err: fmt.Errorf("access %s: %w", t.StorageDir, err)}
		}
	}
	db, err := t.Open()
	if err != nil {
		// nfsdcltrack turns every failure here into EACCES; the kernel
		// then falls back to the legacy back-end.
		return &Error{Status: errnoStatus(syscall.EACCES), Err: fmt.Errorf("init database: %w", err)}
	}
	defer db.Close()
	t.log().Debug("database ready")
	t.liftGraceIfDone(db)
	return nil
}

func (t *Tracker) create(hexID string) error {
	return t.withID(hexID, func(db DB, id []byte) error {
		c := store.Client{ID: id, Time: t.now(), HasSession: session(t.Env.HasSession)}
		if err := db.Put(c); err != nil {
			return fail(errRemoteIO, "create %s: %w", idString(id), err)
		}
		t.log().Debug("client recorded", "id", idString(id), "has_session", t.Env.HasSession)
		if t.Env.HasSession {
			t.liftGraceIfDone(db)
		}
		return nil
	})
}

func (t *Tracker) remove(hexID string) error {
	return t.withID(hexID, func(db DB, id []byte) error {
		if err := db.Delete(id); err != nil {
			return fail(errRemoteIO, "remove %s: %w", idString(id), err)
		}
		t.log().Debug("client removed", "id", idString(id))
		return nil
	})
}

func session(v41 bool) store.Session {
	if v41 {
		return store.SessionYes
	}
	return store.SessionNo
}

// check answers "may this client reclaim?". Every failure is EPERM (255).
func (t *Tracker) check(hexID string) error {
	return t.withID(hexID, func(db DB, id []byte) error {
		err := t.checkDB(db, id)
		if err == nil {
			return nil
		}
		if lerr := t.checkLegacy(db, id); lerr != nil {
			t.log().Debug("reclaim refused", "id", idString(id), "reason", lerr.Error())
			return &Error{Status: errnoStatus(syscall.EPERM), Err: fmt.Errorf("check %s: %w", idString(id), lerr)}
		}
		return nil
	})
}

var errUnknownClient = errors.New("no record of this client")

// checkDB succeeds when the client has a record; a v4.0 check refreshes
// the record's time, a v4.1 check leaves it (RECLAIM_COMPLETE's create
// will refresh it).
func (t *Tracker) checkDB(db DB, id []byte) error {
	var found bool
	var err error
	if t.Env.HasSession {
		_, found, err = db.Lookup(id)
	} else {
		found, err = db.Touch(id, t.now())
	}
	switch {
	case err != nil:
		t.log().Warn("database lookup failed", "id", idString(id), "err", err)
		return err
	case !found:
		return errUnknownClient
	}
	t.log().Debug("reclaim allowed", "id", idString(id))
	return nil
}

// legacyClient is the record a legacy hand-over creates: time 0 for v4.1
// clients (so gracedone drops them unless RECLAIM_COMPLETE follows), now
// for v4.0.
func (t *Tracker) legacyClient(id []byte) store.Client {
	c := store.Client{ID: id, HasSession: session(t.Env.HasSession), Origin: store.OriginLegacyDir}
	if !t.Env.HasSession {
		c.Time = t.now()
	}
	return c
}

// checkLegacy tries the imported hash-only records, then the client's
// v4recovery directory named by the kernel.
func (t *Tracker) checkLegacy(db DB, id []byte) error {
	if claimed, err := db.ClaimHash(LegacyName(id), t.legacyClient(id)); err != nil {
		return fmt.Errorf("hash-only record: %w", err)
	} else if claimed {
		t.log().Info("reclaim allowed from imported v4recovery record", "id", idString(id), "md5", LegacyName(id))
		return nil
	}
	dir := t.Env.LegacyRecdir
	if dir == "" {
		return fmt.Errorf("%w and no %s", errUnknownClient, EnvLegacyRecdir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w; legacy directory: %w", errUnknownClient, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w; legacy %s is not a directory", errUnknownClient, dir)
	}
	if err := db.Put(t.legacyClient(id)); err != nil {
		return fmt.Errorf("insert from legacy directory: %w", err)
	}
	if err := syscall.Rmdir(dir); err != nil {
		if t.Compat {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		t.log().Warn("client taken over from legacy directory, which could not be removed", "id", idString(id), "dir", dir, "err", err)
		return nil
	}
	t.log().Info("client taken over from legacy directory", "id", idString(id), "dir", dir)
	return nil
}

// gracedone forgets every client not re-established since boot time arg.
func (t *Tracker) gracedone(arg string) error {
	return t.withDB(func(db DB) error {
		boot, rest, err := strtol(arg)
		switch {
		case err != nil:
			return &Error{Status: errnoStatus(syscall.ERANGE), Err: fmt.Errorf("gracedone: time %q out of range", arg)}
		case rest != "":
			return fail(syscall.EINVAL, "gracedone: time %q has trailing characters %q", arg, rest)
		case boot < 0 && !t.Compat:
			return fail(syscall.EINVAL, "gracedone: negative time %d refused (nfsdcltrack would delete every record; use --compat for that)", boot)
		}
		drop := func(c store.Client) bool { return boot < 0 || c.Time < boot }
		n, err := db.DeleteWhere(drop)
		t.cleanTopdir()
		if err != nil {
			return fail(errRemoteIO, "gracedone: %w", err)
		}
		t.log().Info("grace done", "boot_time", boot, "forgotten", n)
		return nil
	})
}

// cleanTopdir removes every empty entry of the legacy top directory, best
// effort: failures are logged and never change the exit status.
func (t *Tracker) cleanTopdir() {
	top := t.Env.LegacyTopdir
	if top == "" {
		return
	}
	ents, err := os.ReadDir(top)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(top, e.Name())
		if len(p) >= 1024 {
			t.log().Warn("legacy entry path too long, skipped", "name", e.Name())
			continue
		}
		if err := syscall.Rmdir(p); err != nil {
			t.log().Warn("cannot remove legacy entry", "path", p, "err", err)
		}
	}
}

// liftGraceIfDone writes "Y" to the end-grace file when every known client
// is a v4.1 client that re-established itself since GraceStart. It never
// fails the command.
func (t *Tracker) liftGraceIfDone(db DB) {
	if !t.Env.GraceStartOK {
		return
	}
	gs := t.Env.GraceStart
	pending, err := db.Any(func(c store.Client) bool {
		return c.Time < gs || c.HasSession == store.SessionNo
	})
	if err != nil || pending {
		return
	}
	path := t.EndGraceFile
	if path == "" {
		path = DefaultEndGraceFile
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.log().Warn("cannot open end-grace file", "path", path, "err", err)
		}
		return
	}
	defer f.Close()
	if _, err := f.Write([]byte("Y")); err != nil {
		t.log().Warn("cannot write end-grace file", "path", path, "err", err)
		return
	}
	t.log().Info("all clients reclaimed: grace period lifted", "path", path)
}
