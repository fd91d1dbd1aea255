//go:build !linux

package daemon

// DropAllCapabilities reports ErrCapsUnsupported: only Linux has
// capability sets.
func DropAllCapabilities() error { return ErrCapsUnsupported }
