package powercut

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"nfsrecover/pkg/store"
)

// cltrackCmd returns an nfsdcltrack command on the rig's storage, with the
// kernel's empty environment and the grace file off the real /proc.
func (r *rig) cltrackCmd(args ...string) *exec.Cmd {
	argv := append([]string{"-s", r.path("cltrack"), "--end-grace-file", filepath.Join(r.work, "v4_end_grace")}, args...)
	cmd := exec.Command(r.link("nfsdcltrack"), argv...)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// createRound runs 4 concurrent streams of "nfsdcltrack create" until a
// random number of them exited 0, kills whatever is in flight, and cuts
// the power. It adds the acknowledged ids to acked and returns what the
// database lost of them.
func (r *rig) createRound(round int, acked map[string]bool) []string {
	target := 1 + r.rng.IntN(30)
	var n atomic.Int32
	var mu sync.Mutex
	inflight := map[*exec.Cmd]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := hex.EncodeToString([]byte(fmt.Sprintf("client-%d-%d-%d", round, w, i)))
				cmd := r.cltrackCmd("create", id)
				mu.Lock()
				err := cmd.Start()
				if err == nil {
					inflight[cmd] = true
				}
				mu.Unlock()
				if err != nil {
					return
				}
				err = cmd.Wait()
				mu.Lock()
				delete(inflight, cmd)
				if err == nil {
					acked[id] = true
				}
				mu.Unlock()
				if err == nil {
					n.Add(1)
				}
			}
		}()
	}
	waitFor(60*time.Second, func() bool { return int(n.Load()) >= target })
	close(stop)
	mu.Lock()
	for c := range inflight {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	mu.Unlock()
	wg.Wait()
	r.cut()
	return r.lostClients(acked)
}

// lostClients returns a line for every acknowledged id missing from the
// database, and for any damage to it.
func (r *rig) lostClients(acked map[string]bool) []string {
	c, bad := r.snapshot(r.path("cltrack", "nfsrecover.db"))
	have := map[string]bool{}
	for _, cl := range c.Clients {
		have[hex.EncodeToString(cl.ID)] = true
	}
	for id := range acked {
		if !have[id] {
			bad = append(bad, fmt.Sprintf("create %s exited 0 but the client is gone", id))
		}
	}
	return bad
}

// TestPowerCutCltrackCreate: every "nfsdcltrack create" that exited 0
// survives a power cut at a random moment of a create storm, and the
// database opens clean, over 25 cuts.
func TestPowerCutCltrackCreate(t *testing.T) {
	r := newRig(t)
	if out, err := r.cltrackCmd("init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	acked := map[string]bool{}
	for round := 0; round < 25; round++ {
		report(t, round, r.createRound(round, acked))
	}
	if len(acked) < 25 {
		t.Errorf("only %d creates acknowledged", len(acked))
	}
	t.Logf("%d acknowledged creates checked across the cuts", len(acked))
}

// TestPowerCutHarnessCatchesMissingFsync is the mutation check: with
// fsync and fdatasync doing nothing (as if nfsrecover never called them),
// the same rounds must lose acknowledged creates. If this test failed, the
// power-cut tests could not tell durable code from code that only looks
// durable.
func TestPowerCutHarnessCatchesMissingFsync(t *testing.T) {
	r := newRig(t)
	r.fs.IgnoreSync(true)
	if out, err := r.cltrackCmd("init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	acked := map[string]bool{}
	lost := 0
	for round := 0; round < 3; round++ {
		lost += len(r.createRound(round, acked))
	}
	if lost == 0 {
		t.Fatalf("without fsync %d acknowledged creates all survived the cuts: the harness cannot see a missing fsync", len(acked))
	}
	t.Logf("without fsync: %d problems found after 3 cuts, as expected", lost)
}

// gracedoneRound fills the database with clients older than the boot
// time, runs "nfsdcltrack gracedone" and cuts the power at a random moment
// of it. The clients must be all there or all gone, and all gone if it
// exited 0.
func (r *rig) gracedoneRound(round int, clients int, typical time.Duration) (time.Duration, []string) {
	r.seedClients(clients)
	boot := fmt.Sprint(time.Now().Unix() + 1000)
	cmd := r.cltrackCmd("gracedone", boot)
	took, err := r.runCut(cmd, time.Duration(r.rng.Int64N(int64(2*typical)+1)))
	c, bad := r.snapshot(r.path("cltrack", "nfsrecover.db"))
	switch n := len(c.Clients); {
	case err == nil && n != 0:
		bad = append(bad, fmt.Sprintf("gracedone exited 0 but %d of %d old clients are back", n, clients))
	case n != 0 && n != clients:
		bad = append(bad, fmt.Sprintf("gracedone was cut half-way: %d of %d clients left", n, clients))
	}
	return took, bad
}

// seedClients replaces the rig's database with one holding n clients,
// prepared off the mount and made durable, as if present before boot.
func (r *rig) seedClients(n int) {
	r.t.Helper()
	local := filepath.Join(r.t.TempDir(), "seed.db")
	db, err := store.Open(local, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	now := time.Now().Unix()
	err = db.Update(func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.PutClient(store.Client{ID: []byte(fmt.Sprintf("old-client-%06d", i)), Time: now}); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	r.put(local, r.path("cltrack", "nfsrecover.db"))
}

// TestPowerCutGracedone: a power cut during "nfsdcltrack gracedone" over
// 5,000 clients leaves all or none of them, never a part, and none once
// it exited 0; 15 cuts at random moments spread over its run time.
func TestPowerCutGracedone(t *testing.T) {
	r := newRig(t)
	if out, err := r.cltrackCmd("init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	typical := 50 * time.Millisecond
	for round := 0; round < 15; round++ {
		took, bad := r.gracedoneRound(round, 5000, typical)
		report(t, round, bad)
		if round == 0 {
			typical = max(took, time.Millisecond) // the kill lands anywhere in 0..2x a full run
		}
	}
}
