//go:build linux

package powercut

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"nfsrecover/internal/pipefs"
	"nfsrecover/pkg/cld"
)

// cldRig is the cld daemon with its database on the power-cut mount and
// its pipe on an emulated rpc_pipefs (off the mount: the kernel's).
type cldRig struct {
	*rig
	pfs *pipefs.FS
	xid uint32
}

func newCldRig(t *testing.T) *cldRig {
	r := &cldRig{rig: newRig(t)}
	var err error
	if r.pfs, err = pipefs.Mount(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.killAll(); r.pfs.Unmount() })
	if err := r.pfs.CreatePipe(); err != nil {
		t.Fatal(err)
	}
	return r
}

// boot starts the daemon and does what the kernel does when nfsd starts:
// GetVersion, then GraceStart. It returns the names streamed.
func (r *cldRig) boot() map[string]bool {
	r.t.Helper()
	r.start(exec.Command(r.link("nfsdcld"), "-F", "--db", r.path("cld", "nfsrecover.db"), "-p", r.pfs.Dir()))
	if !waitFor(20*time.Second, func() bool { return r.pfs.Readers() > 0 }) {
		r.t.Fatal("nfsdcld never opened the pipe")
	}
	r.upcall(cld.Msg{Vers: 1, Cmd: cld.GetVersion})
	streamed := map[string]bool{}
	for _, d := range r.upcall(cld.Msg{Vers: 2, Cmd: cld.GraceStart}) {
		if m, err := cld.Decode(d); err == nil && m.Status == cld.StatusEINPROGRESS {
			streamed[string(m.Name)] = true
		}
	}
	return streamed
}

func (r *cldRig) upcall(m cld.Msg) [][]byte {
	r.t.Helper()
	r.xid++
	m.XID = r.xid
	raw, _ := cld.Encode(m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := r.pfs.Call(ctx, raw)
	if err != nil {
		r.t.Fatalf("upcall %d: %v", m.Cmd, err)
	}
	return d
}

// createRound ends the grace period, then 8 "nfsd threads" send creates
// until a random number were acknowledged, and the power is cut with
// creates still in flight. It returns the acknowledged names.
func (r *cldRig) createRound(round int) map[string]bool {
	r.upcall(cld.Msg{Vers: 2, Cmd: cld.GraceDone})
	target := 1 + r.rng.IntN(60)
	acked := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var xidMu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("client-%d-%d-%d", round, w, i)
				xidMu.Lock()
				r.xid++
				raw, _ := cld.Encode(cld.Msg{Vers: 2, Cmd: cld.Create, XID: r.xid, Name: []byte(name)})
				xidMu.Unlock()
				d, err := r.pfs.Call(ctx, raw)
				if err != nil {
					return // the cut
				}
				if m, _ := cld.Decode(d[0]); m.Status == 0 {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= target })
	close(stop)
	r.cut()  // kills the daemon: upcalls it had read fail
	cancel() // the rest, still queued, are given up
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return acked
}

// cldRounds runs rounds of boot, creates and cut, and returns every
// acknowledged create the next boot did not stream back.
func cldRounds(t *testing.T, r *cldRig, rounds int) (lost []string, acks int) {
	r.boot()
	for round := range rounds {
		acked := r.createRound(round)
		acks += len(acked)
		streamed := r.boot()
		for name := range acked {
			if !streamed[name] {
				lost = append(lost, fmt.Sprintf("round %d: create of %s was acknowledged but the next boot did not stream it", round, name))
			}
		}
	}
	return lost, acks
}

// TestPowerCutCldCreate: every Create that nfsdcld acknowledged survives
// a power cut in the middle of a create storm from 8 nfsd threads: the
// next boot's GraceStart streams it back. 20 cuts.
func TestPowerCutCldCreate(t *testing.T) {
	r := newCldRig(t)
	lost, acks := cldRounds(t, r, 20)
	report(t, 20, lost)
	if acks < 20 {
		t.Errorf("only %d creates acknowledged", acks)
	}
	t.Logf("%d acknowledged creates checked across 20 cuts", acks)
}

// TestPowerCutCldCatchesMissingFsync is the mutation check for the cld
// rounds: with fsync doing nothing, acknowledged creates are lost.
func TestPowerCutCldCatchesMissingFsync(t *testing.T) {
	r := newCldRig(t)
	r.fs.IgnoreSync(true)
	lost, acks := cldRounds(t, r, 3)
	if len(lost) == 0 {
		t.Fatalf("without fsync all %d acknowledged creates survived: the cld rounds cannot see a missing fsync", acks)
	}
	t.Logf("without fsync: %d of %d acknowledged creates lost, as expected", len(lost), acks)
}
