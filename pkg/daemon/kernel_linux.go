package daemon

import "golang.org/x/sys/unix"

// KernelBefore reports whether the running kernel is older than
// major.minor (nfsdcld's gate for kernels that send no GraceStart).
func KernelBefore(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseBefore(unix.ByteSliceToString(u.Release[:]), major, minor)
}
