package daemon

import "errors"

// ErrCapsUnsupported means the capabilities of the process could not be
// changed on every thread: the binary was built with cgo (Go cannot run a
// system call on all threads at once there), or the system has no Linux
// capabilities at all. Callers that drop capabilities as a precaution log
// it and go on.
var ErrCapsUnsupported = errors.New("capabilities cannot be dropped on every thread")
