package daemon

import (
	"fmt"
	"syscall"
)

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
