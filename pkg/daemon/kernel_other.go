//go:build !linux

package daemon

// KernelBefore is false: only Linux kernels are versioned this way here.
func KernelBefore(major, minor int) bool { return false }
