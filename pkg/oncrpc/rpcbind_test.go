package oncrpc

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
)

func TestUniversalAddr(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:111":  "127.0.0.1.0.111",
		"10.1.2.3:32803": "10.1.2.3.128.35",
		"[::1]:2049":     "::1.8.1",
	}
	for ap, want := range cases {
		got := UniversalAddr(netip.MustParseAddrPort(ap))
		if got != want {
			t.Errorf("%s -> %s, want %s", ap, got, want)
		}
		back, err := ParseUniversalAddr(got)
		if err != nil || back != netip.MustParseAddrPort(ap) {
			t.Errorf("parse %s: %v %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "1.2.3.4", "1.2.3.4.5", "x.y.1.2", "1.2.3.4.256.1"} {
		if _, err := ParseUniversalAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMain runs the package's tests in a network namespace of their own,
// where each test that needs rpcbind starts its own (testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Isolate(m.Run)) }

// TestRegisterWithRealRpcbind registers a program on all four netids the
// way statd will (RPCB v3 SET over the local socket, owner = our uid),
// checks rpcinfo and GETPORT/GETADDR see it, then unregisters it.
func TestRegisterWithRealRpcbind(t *testing.T) {
	testenv.StartRpcbind(t)
	const prog, vers = 0x20000099, 1 // a transient program number
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rb := Rpcbind{Network: "unix", Address: DefaultSock}
	owner := strconv.Itoa(os.Getuid())
	rb.Unset(ctx, RpcbVers, prog, vers, "", owner)
	udp, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	defer udp.Close()
	port := netip.MustParseAddrPort(udp.LocalAddr().String()).Port()
	regs := map[string]string{
		"udp":  UniversalAddr(netip.AddrPortFrom(netip.MustParseAddr("0.0.0.0"), port)),
		"tcp":  UniversalAddr(netip.AddrPortFrom(netip.MustParseAddr("0.0.0.0"), port)),
		"udp6": UniversalAddr(netip.AddrPortFrom(netip.MustParseAddr("::"), port)),
		"tcp6": UniversalAddr(netip.AddrPortFrom(netip.MustParseAddr("::"), port)),
	}
	for netid, uaddr := range regs {
		ok, err := rb.Set(ctx, RpcbVers, prog, vers, netid, uaddr, owner)
		if err != nil || !ok {
			t.Fatalf("RPCB SET %s %s: %v %v", netid, uaddr, ok, err)
		}
	}
	defer rb.Unset(context.Background(), RpcbVers, prog, vers, "", owner)
	lo := Rpcbind{Network: "udp", Address: "127.0.0.1:111"}
	if got, err := lo.PmapGetPort(ctx, prog, vers, ProtoUDP); err != nil || got != port {
		t.Errorf("PMAP GETPORT: %d %v, want %d", got, err, port)
	}
	if got, err := lo.GetAddr(ctx, RpcbVers, prog, vers, "udp"); err != nil || got == "" {
		t.Errorf("RPCB GETADDR udp: %q %v", got, err)
	}
	out, _ := exec.Command("/usr/sbin/rpcinfo", "-p", "127.0.0.1").Output()
	if !strings.Contains(string(out), strconv.Itoa(prog)) {
		t.Errorf("rpcinfo -p does not list program %d:\n%s", prog, out)
	}
	if ok, err := rb.Unset(ctx, RpcbVers, prog, vers, "", owner); err != nil || !ok {
		t.Errorf("UNSET: %v %v", ok, err)
	}
	if got, _ := lo.PmapGetPort(ctx, prog, vers, ProtoUDP); got != 0 {
		t.Errorf("still registered after UNSET: port %d", got)
	}
}
