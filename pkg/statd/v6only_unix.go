//go:build unix

package statd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// v6only makes IPv6 sockets IPv6-only, so IPv4 callers always arrive on
// the IPv4 sockets (the loopback check relies on it).
func v6only(network, _ string, c syscall.RawConn) error {
	if network != "udp6" && network != "tcp6" {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
