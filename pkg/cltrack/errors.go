package cltrack

import (
	"errors"
	"fmt"
	"syscall"

	"nfsrecover/pkg/store"
)

// Error is a failed command together with the exit status nfsdcltrack
// gives for it. The kernel only tests zero versus non-zero, but scripts
// and the differential tests compare the exact numbers.
type Error struct {
	Status int   // process exit status, 1..255
	Err    error // cause, for the log
}

func (e *Error) Error() string { return fmt.Sprintf("%v (exit %d)", e.Err, e.Status) }

func (e *Error) Unwrap() error { return e.Err }

// StatusNotADB is SQLite's SQLITE_NOTADB, which nfsdcltrack returns as its
// exit status when its database file is not a database. We return it for a
// file that is not an nfsrecover database, so scripts see the same code.
const StatusNotADB = 26

// errnoStatus is what a C main returning -e exits with.
func errnoStatus(e syscall.Errno) int { return (256 - int(e)) & 0xff }

func fail(e syscall.Errno, format string, args ...any) *Error {
	return &Error{Status: errnoStatus(e), Err: fmt.Errorf(format, args...)}
}

// ExitStatus returns the process exit status for the result of Run.
func ExitStatus(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return errnoStatus(syscall.EIO)
}

// openFailure maps a database open error the way nfsdcltrack's
// sqlite_prepare_dbh failures surface for create/remove/check/gracedone.
func openFailure(err error) *Error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, store.ErrNotDatabase):
		return &Error{Status: StatusNotADB, Err: err}
	case errors.Is(err, store.ErrSchemaTooNew):
		return &Error{Status: errnoStatus(syscall.EINVAL), Err: err}
	case errors.Is(err, store.ErrLockTimeout):
		return &Error{Status: errnoStatus(syscall.EBUSY), Err: err}
	case errors.As(err, &errno):
		return &Error{Status: errnoStatus(errno), Err: err}
	}
	return &Error{Status: errnoStatus(syscall.EIO), Err: err}
}

// errRemoteIO is Linux's EREMOTEIO (121), which nfsdcltrack returns when a
// database write fails (exit status 135). It is spelled as a number because
// the exit statuses are Linux's and other systems have no such errno.
const errRemoteIO = syscall.Errno(121)
