package daemon

import (
	"fmt"
	"os"
	"syscall"
)

// OwnerOf returns the uid and gid owning path.
func OwnerOf(path string) (uid, gid int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no ownership information", path)
	}
	return int(sys.Uid), int(sys.Gid), nil
}

// DropTo switches every thread of the process to uid/gid with no
// supplementary groups (Go applies set*id to all threads). Afterwards the
// process has no capabilities: bind privileged ports before calling it.
func DropTo(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}
