package oncrpc

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	xdr "github.com/davecgh/go-xdr/xdr2"
)

// rpcbind program and procedures.
const (
	RpcbProg     = 100000
	PmapVers     = 2 // portmapper
	RpcbVers     = 3
	RpcbVers4    = 4
	RpcbSet      = 1 // same numbers in PMAP v2 (SET, UNSET, GETPORT)
	RpcbUnset    = 2
	RpcbGetAddr  = 3 // PMAP v2: GETPORT
	ProtoTCP     = 6
	ProtoUDP     = 17
	DefaultSock  = "/run/rpcbind.sock"
	maxRpcbField = 1024
)

// Rpcbind talks to one rpcbind, at Network/Address (e.g. "unix",
// DefaultSock; or "udp", "127.0.0.1:111").
type Rpcbind struct {
	Network, Address string
}

type pmapMapping struct{ Prog, Vers, Prot, Port uint32 }

type rpcb struct {
	Prog, Vers         uint32
	Netid, Addr, Owner string
}

func (r Rpcbind) call(ctx context.Context, vers, proc uint32, arg any, res any) error {
	var buf bytes.Buffer
	if _, err := xdr.Marshal(&buf, arg); err != nil {
		return err
	}
	out, err := Call(ctx, r.Network, r.Address, RpcbProg, vers, proc, buf.Bytes())
	if err != nil {
		return err
	}
	if _, err := xdr.UnmarshalLimited(bytes.NewReader(out), res, maxRpcbField); err != nil {
		return fmt.Errorf("rpcbind reply: %w", err)
	}
	return nil
}

// PmapGetPort asks for prog/vers over prot (ProtoUDP or ProtoTCP); 0 means
// not registered.
func (r Rpcbind) PmapGetPort(ctx context.Context, prog, vers, prot uint32) (uint16, error) {
	var port uint32
	err := r.call(ctx, PmapVers, RpcbGetAddr, &pmapMapping{prog, vers, prot, 0}, &port)
	return uint16(port), err
}

// PmapSet registers (or with unset, removes) a PMAP v2 mapping.
func (r Rpcbind) PmapSet(ctx context.Context, prog, vers, prot uint32, port uint16, unset bool) (bool, error) {
	proc := uint32(RpcbSet)
	if unset {
		proc = RpcbUnset
	}
	var ok bool
	err := r.call(ctx, PmapVers, proc, &pmapMapping{prog, vers, prot, uint32(port)}, &ok)
	return ok, err
}

// Set registers prog/vers on netid ("udp", "tcp", "udp6", "tcp6") at the
// universal address uaddr, owned by owner (our uid in decimal).
func (r Rpcbind) Set(ctx context.Context, vers, prog, progVers uint32, netid, uaddr, owner string) (bool, error) {
	var ok bool
	err := r.call(ctx, vers, RpcbSet, &rpcb{prog, progVers, netid, uaddr, owner}, &ok)
	return ok, err
}

// Unset removes prog/vers on netid ("" = every netid).
func (r Rpcbind) Unset(ctx context.Context, vers, prog, progVers uint32, netid, owner string) (bool, error) {
	var ok bool
	err := r.call(ctx, vers, RpcbUnset, &rpcb{prog, progVers, netid, "", owner}, &ok)
	return ok, err
}

// GetAddr returns the universal address of prog/vers on netid, "" when
// not registered.
func (r Rpcbind) GetAddr(ctx context.Context, vers, prog, progVers uint32, netid string) (string, error) {
	var uaddr string
	err := r.call(ctx, vers, RpcbGetAddr, &rpcb{prog, progVers, netid, "", ""}, &uaddr)
	return uaddr, err
}

// UniversalAddr formats ap as an RPC universal address: "h1.h2.h3.h4.p1.p2"
// for IPv4, "ipv6-text.p1.p2" for IPv6.
func UniversalAddr(ap netip.AddrPort) string {
	return fmt.Sprintf("%s.%d.%d", ap.Addr().Unmap(), ap.Port()>>8, ap.Port()&0xff)
}

// ParseUniversalAddr is the inverse of UniversalAddr.
func ParseUniversalAddr(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, '.')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '.')
	}
	if j <= 0 {
		return netip.AddrPort{}, fmt.Errorf("universal address %q: no port", s)
	}
	hi, err1 := strconv.ParseUint(s[j+1:i], 10, 8)
	lo, err2 := strconv.ParseUint(s[i+1:], 10, 8)
	a, err3 := netip.ParseAddr(s[:j])
	if err1 != nil || err2 != nil || err3 != nil {
		return netip.AddrPort{}, fmt.Errorf("universal address %q: malformed", s)
	}
	return netip.AddrPortFrom(a, uint16(hi<<8|lo)), nil
}
