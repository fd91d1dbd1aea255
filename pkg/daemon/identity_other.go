//go:build !linux

package daemon

// SetName does nothing: only Linux applets need a command name of their
// own (they are the ones HA agents look for).
func SetName(string) error { return nil }
