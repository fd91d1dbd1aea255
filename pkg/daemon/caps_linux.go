// Package daemon holds the process-level chores of nfsrecover's programs:
// dropping capabilities and privileges, pid files, background start-up
// with readiness (Type=forking), sd_notify, and process checks.
package daemon

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropAllCapabilities leaves the process (root or not) with no capability
// and no way to regain one, as nfsdcltrack does before it touches its
// database. It must run while the process still has CAP_SETPCAP.
//
// nfsdcltrack empties the bounding set and then the capability sets. In Go
// every credential change must reach every thread of the runtime, and each
// such call stops the world; 41 bounding-set drops on all threads cost
// about 1.5 ms per upcall. The bounding set only matters at execve, so we
// get the same guarantee with three all-thread calls:
//
//  1. securebits NOROOT (locked): uid 0 gains no capabilities at execve;
//  2. no_new_privs: neither file capabilities nor set-uid bits apply;
//  3. capset to empty permitted, effective and inheritable sets (which
//     also empties the ambient set);
//
// and we also empty the bounding set of the calling thread.
func DropAllCapabilities() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// <linux/securebits.h>: SECBIT_NOROOT is bit 0, its lock bit 1.
	const secbits = 1<<0 | 1<<1
	if err := allThreads("set securebits NOROOT", unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbits, 0); err != nil {
		return err
	}
	if err := allThreads("set no_new_privs", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return err
	}
	for c := uintptr(0); ; c++ {
		if _, _, e := syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_READ, c, 0); e != 0 {
			break // past the last capability the kernel knows
		}
		if _, _, e := syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); e != 0 {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	return allThreads("clear the capability sets", unix.SYS_CAPSET,
		uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
}

func allThreads(what string, trap, a1, a2, a3 uintptr) error {
	_, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	switch e {
	case 0:
		return nil
	case syscall.ENOTSUP:
		return fmt.Errorf("%s: %w (the binary was built with cgo; release builds use CGO_ENABLED=0)", what, ErrCapsUnsupported)
	}
	return fmt.Errorf("%s: %w", what, e)
}
