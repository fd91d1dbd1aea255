package powercut

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

var rpcbind = oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}

// startStatd runs our rpc.statd with its state on the mount and waits
// until it answers SM_NULL over TCP.
func (r *rig) startStatd() {
	r.t.Helper()
	cmd := exec.Command(r.link("rpc.statd"), "-F", "-L", "-P", r.path("nsm"), "--db", r.path("nsm", "nfsrecover.db"),
		"--nsm-state-file", filepath.Join(r.work, "kstate"), "--pid-file", filepath.Join(r.work, "statd.pid"))
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	logf, err := os.OpenFile(filepath.Join(r.work, "statd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	r.start(cmd)
	if !waitFor(30*time.Second, func() bool { _, err := statdPort(); return err == nil }) {
		r.t.Fatal("statd on the mount did not start")
	}
}

// statdPort returns the TCP port of a statd that answers SM_NULL.
func statdPort() (uint16, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := rpcbind.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err == nil && p == 0 {
		err = fmt.Errorf("not registered")
	}
	if err == nil {
		_, err = oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", p), nsm.Program, 1, nsm.ProcNull, nil)
	}
	return p, err
}

// smMon sends one SM_MON from 127.0.0.1 and reports whether statd
// answered STAT_SUCC.
func smMon(port uint16, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var priv [16]byte
	copy(priv[:], name)
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16}}, Priv: priv})
	out, err := oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, nsm.ProcMon, args)
	var res nsm.SmStatRes
	return err == nil && nsm.Decode(out, &res) == nil && res.ResStat == nsm.StatSucc
}

// monRound starts statd, lets 8 clients send SM_MONs until a random number
// were acknowledged, and cuts the power. It returns the acknowledged
// names the database lost.
func (r *rig) monRound(round int, acked map[string]bool) []string {
	r.startStatd()
	port, err := statdPort()
	if err != nil {
		r.t.Fatal(err)
	}
	target := 1 + r.rng.IntN(60) // every record is a file of the mirror too
	var mu sync.Mutex
	n := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Numeric names: no DNS. Distinct per round, client and call.
				name := fmt.Sprintf("10.%d.%d.%d", round, c*30+i/250, i%250)
				if smMon(port, name) {
					mu.Lock()
					acked[name] = true
					n++
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return n >= target })
	r.cut() // kills statd mid-load; the clients' calls fail from here on
	close(stop)
	wg.Wait()
	c, bad := r.snapshot(r.path("nsm", "nfsrecover.db"))
	have := map[string]bool{}
	for _, m := range c.Monitors {
		have[m.MonName] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for name := range acked {
		if !have[name] {
			bad = append(bad, fmt.Sprintf("SM_MON %s was answered STAT_SUCC but the record is gone", name))
		}
	}
	return bad
}

// TestPowerCutStatdMon: under SM_MON load from 8 clients, every SM_MON
// answered STAT_SUCC survives a power cut at a random moment, and the
// database opens clean, over 25 cuts.
func TestPowerCutStatdMon(t *testing.T) {
	testenv.StartRpcbind(t)
	r := newRig(t)
	if err := os.MkdirAll(r.path("nsm"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.fs.SyncAll()
	acked := map[string]bool{}
	for round := 0; round < 25; round++ {
		report(t, round, r.monRound(round, acked))
	}
	t.Logf("%d acknowledged SM_MONs checked across the cuts", len(acked))
}
