// Command nsmhelper plays the local lock manager in interop tests that run
// inside network namespaces, where a test's own goroutines cannot follow.
//
//	nsmhelper lockd OUTFILE       fake lockd: register NLM 100021 v3 over UDP with
//	                               the local rpcbind; append each reboot callback
//	                               to OUTFILE as a JSON line; run until killed
//	nsmhelper mon SERVER NAME HEXPRIV
//	                               SM_MON over TCP to the statd at SERVER (port
//	                               from SERVER's rpcbind); prints "succ STATE"
//	                               or "fail"
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

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
	case "mon":
		if len(os.Args) != 5 {
			err = fmt.Errorf("mon SERVER NAME HEXPRIV")
		} else {
			err = mon(os.Args[2], os.Args[3], os.Args[4])
		}
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
	r.out.Sync()
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
	port, err := oncrpc.Rpcbind{Network: "udp", Address: net.JoinHostPort(server, "111")}.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err != nil || port == 0 {
		return fmt.Errorf("no statd registered at %s: %v", server, err)
	}
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "ourhost", MyProg: 100021, MyVers: 3, MyProc: 16}}, Priv: priv})
	res, err := oncrpc.Call(ctx, "tcp4", net.JoinHostPort(server, fmt.Sprint(port)), nsm.Program, 1, nsm.ProcMon, args)
	if err != nil {
		return err
	}
	var r nsm.SmStatRes
	if err := nsm.Decode(res, &r); err != nil {
		return err
	}
	if r.ResStat == nsm.StatSucc {
		fmt.Println("succ", r.State)
	} else {
		fmt.Println("fail")
	}
	return nil
}
