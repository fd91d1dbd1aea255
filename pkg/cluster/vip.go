package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// HostedVIPs returns those of vips that are assigned to one of this host's
// interfaces now, in the order given: the floating IPs this node serves.
func HostedVIPs(vips []string) ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("cluster: list this host's addresses: %w", err)
	}
	var local []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			local = append(local, p.Addr().Unmap())
		}
	}
	var out []string
	for _, v := range vips {
		if a, err := netip.ParseAddr(v); err == nil && slices.Contains(local, a.Unmap()) {
			out = append(out, v)
		}
	}
	return out, nil
}
