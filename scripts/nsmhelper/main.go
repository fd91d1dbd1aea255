//go:build linux

// Command nsmhelper plays the local lock manager in interop tests that run
// inside network namespaces, where a test's own goroutines cannot follow.
//
//	nsmhelper lockd OUTFILE       fake lockd: register NLM 100021 v3 over UDP with
//	                               the local rpcbind; append each reboot callback
//	                               to OUTFILE as a JSON line; run until killed
//	nsmhelper peers SILENTEVERY OUTFILE
//	                               every 127.x.y.z address is a peer: a portmapper on
//	                               :111 and a statd on :4000; peers whose (y*256+z)
//	                               %% SILENTEVERY == SILENTEVERY-1 never answer; each
//	                               SM_NOTIFY is appended to OUTFILE as "addr name state unixnano"
//	nsmhelper mon SERVER NAME HEXPRIV
//	                               SM_MON over TCP to the statd at SERVER (port
//	                               from SERVER's rpcbind); prints "succ STATE"
//	                               or "fail", then the call's duration
//	nsmhelper flood-stat SERVER N NAMELEN
//	                               N SM_STAT calls over UDP, each with a new
//	                               name NAMELEN bytes long, not waiting for replies
//	nsmhelper flood-notify SERVER ROUNDS NAME...
//	                               ROUNDS rounds of SM_NOTIFY over UDP for every
//	                               NAME, round r with state 2r+1, not waiting for
//	                               replies; then one last round, answered, with
//	                               state 2*ROUNDS+3; prints "last STATE"
//	nsmhelper idle SERVER N SECONDS
//	                               holds N idle TCP connections to statd, opening a
//	                               new one whenever one is closed and all of them
//	                               anew every 29 s; prints "reopened K"
//	nsmhelper null-tcp SERVER [FROM]
//	                               SM_NULL over a new TCP connection (from the
//	                               address FROM); prints the call's duration
package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: nsmhelper lockd OUTFILE | mon SERVER NAME HEXPRIV")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "lockd":
		err = lockd(os.Args[2])
	case "peers":
		if len(os.Args) != 4 {
			err = fmt.Errorf("peers SILENTEVERY OUTFILE")
		} else {
			err = peers(os.Args[2], os.Args[3])
		}
	case "mon":
		if len(os.Args) != 5 {
			err = fmt.Errorf("mon SERVER NAME HEXPRIV")
		} else {
			err = mon(os.Args[2], os.Args[3], os.Args[4])
		}
	case "flood-stat", "flood-notify", "idle", "null-tcp":
		err = flood(os.Args[1], os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nsmhelper:", err)
		os.Exit(1)
	}
}

// Callback is one received reboot callback, as written to OUTFILE.
type Callback struct {
	MonName string `json:"mon_name"`
	State   int32  `json:"state"`
	Priv    string `json:"priv"`
	From    string `json:"from"`
}

type recorder struct {
	mu  sync.Mutex
	out *os.File
}

func (r *recorder) Dispatch(_ context.Context, req *oncrpc.Request) (uint32, []byte) {
	var st nsm.Status
	if req.Proc != 16 || nsm.Decode(req.Args, &st) != nil {
		return oncrpc.GarbageArgs, nil
	}
	line, _ := json.Marshal(Callback{st.MonName, st.State, hex.EncodeToString(st.Priv[:]), req.Addr.String()})
	r.mu.Lock()
	r.out.Write(append(line, '\n'))
	r.mu.Unlock()
	return oncrpc.Success, nil
}

func lockd(outfile string) error {
	out, err := os.OpenFile(outfile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := netip.MustParseAddrPort(pc.LocalAddr().String()).Port()
	rb := oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	rb.PmapSet(rctx, 100021, 3, oncrpc.ProtoUDP, 0, true)
	if ok, err := rb.PmapSet(rctx, 100021, 3, oncrpc.ProtoUDP, port, false); err != nil || !ok {
		return fmt.Errorf("register with rpcbind: %v %v", ok, err)
	}
	fmt.Println("ready", port)
	srv := &oncrpc.Server{Handler: &recorder{out: out}, Prog: 100021, VersLow: 1, VersHi: 4}
	return srv.ServeUDP(ctx, pc)
}

func mon(server, name, privHex string) error {
	var priv [16]byte
	if b, err := hex.DecodeString(privHex); err != nil || len(b) != 16 {
		return fmt.Errorf("priv must be 32 hex digits")
	} else {
		copy(priv[:], b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := statdPort(ctx, server, oncrpc.ProtoTCP)
	if err != nil {
		return err
	}
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "ourhost", MyProg: 100021, MyVers: 3, MyProc: 16}}, Priv: priv})
	start := time.Now()
	res, err := oncrpc.Call(ctx, "tcp4", net.JoinHostPort(server, fmt.Sprint(port)), nsm.Program, 1, nsm.ProcMon, args)
	took := time.Since(start)
	if err != nil {
		return err
	}
	var r nsm.SmStatRes
	if err := nsm.Decode(res, &r); err != nil {
		return err
	}
	if r.ResStat == nsm.StatSucc {
		fmt.Println("succ", r.State, took)
	} else {
		fmt.Println("fail", took)
	}
	return nil
}

// peers answers for every 127.x.y.z address at once, telling them apart by
// the destination of each datagram (IP_PKTINFO).
func peers(silentEvery, outfile string) error {
	every, err := strconv.Atoi(silentEvery)
	if err != nil || every < 1 {
		return fmt.Errorf("bad SILENTEVERY %q", silentEvery)
	}
	out, err := os.OpenFile(outfile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	silent := func(a netip.Addr) bool {
		b := a.As4()
		return (int(b[2])*256+int(b[3]))%every == every-1
	}
	serve := func(port int, handle func(dst netip.Addr, call oncrpc.CallHeader) []byte) error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1) })
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return err
		}
		conn := pc.(*net.UDPConn)
		conn.SetReadBuffer(8 << 20)
		for r := 0; r < 4; r++ { // several readers: the fake peers must not be the bottleneck
			go func() {
				buf, oob := make([]byte, 65536), make([]byte, 512)
				for {
					n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
					if err != nil {
						return
					}
					dst, ok := pktDst(oob[:oobn])
					if !ok || silent(dst) {
						continue
					}
					h, err := oncrpc.DecodeCall(buf[:n])
					if err != nil {
						continue
					}
					if res := handle(dst, h); res != nil {
						conn.WriteToUDPAddrPort(oncrpc.AppendAccepted(nil, h.XID, oncrpc.Success, res, 0, 0), from)
					}
				}
			}()
		}
		return nil
	}
	err = serve(111, func(_ netip.Addr, h oncrpc.CallHeader) []byte {
		if h.Prog != oncrpc.RpcbProg || h.Proc != oncrpc.RpcbGetAddr {
			return nil
		}
		return binary.BigEndian.AppendUint32(nil, 4000)
	})
	if err == nil {
		err = serve(4000, func(dst netip.Addr, h oncrpc.CallHeader) []byte {
			var st nsm.StatChge
			if h.Prog != nsm.Program || h.Proc != nsm.ProcNotify || nsm.Decode(h.Args, &st) != nil {
				return nil
			}
			mu.Lock()
			fmt.Fprintf(out, "%s %s %d %d\n", dst, st.MonName, st.State, time.Now().UnixNano())
			mu.Unlock()
			return []byte{}
		})
	}
	if err != nil {
		return err
	}
	fmt.Println("ready")
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	<-ctx.Done()
	return out.Sync()
}

func pktDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12 {
			return netip.AddrFrom4([4]byte(m.Data[8:12])), true // ipi_addr: the header destination
		}
	}
	return netip.Addr{}, false
}
