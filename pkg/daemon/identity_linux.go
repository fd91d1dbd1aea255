package daemon

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetName sets the command name of the calling thread (comm), which for
// the main thread is the name pgrep, pidof and killall match; the kernel
// keeps at most 15 bytes. Call it on the main thread (nfsrecover's main
// locks the main goroutine to it).
func SetName(name string) error {
	b := append([]byte(name), 0)
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
		return fmt.Errorf("set process name %q: %w", name, err)
	}
	return nil
}
