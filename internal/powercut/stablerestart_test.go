package powercut

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	sr "nfsrecover/pkg/stablerestart"
)

// stableFiles returns a valid stable restart file in this machine's
// layout and a damaged copy the kernel would throw away.
func stableFiles(t *testing.T, round int) (good, damaged []byte) {
	t.Helper()
	f := &sr.File{Layout: sr.Native(), Lease: 120, Boots: []int64{time.Now().Unix() - 3600, time.Now().Unix() - 7200}}
	for i := 0; i < 200; i++ {
		f.Records = append(f.Records, sr.Record{Flag: sr.FlagNewState, ID: []byte(fmt.Sprintf("round %d client %03d", round, i))})
	}
	good = sr.Encode(f)
	// A record header whose length runs past the end of the file.
	damaged = append(bytes.Clone(good), 0x00, 0x10, sr.FlagNewState, 'x')
	if sr.Decode(damaged, sr.Native()).Status == sr.Valid || sr.Decode(good, sr.Native()).Status != sr.Valid {
		t.Fatal("test files: the damaged one must be rejected, the good one accepted")
	}
	return good, damaged
}

// repairRound puts a damaged live file and a good .bak on the mount, runs
// "stablerestart repair" and cuts the power at a random moment of it. The
// live file must be the damaged one or the restored one, never anything
// else, and the restored one if repair exited 0.
func (r *rig) repairRound(round int, typical time.Duration) (time.Duration, []string) {
	good, damaged := stableFiles(r.t, round)
	live := r.path("db", "nfs-stablerestart")
	os.MkdirAll(filepath.Dir(live), 0o755)
	os.WriteFile(live, damaged, 0o600)
	os.WriteFile(live+".bak", good, 0o600)
	r.fs.SyncAll()
	cmd := exec.Command(bin, "stablerestart", "--file", live, "repair", "--force",
		"--nfsd-pidfile", filepath.Join(r.work, "no-nfsd.pid"))
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	took, err := r.runCut(cmd, time.Duration(r.rng.Int64N(int64(2*typical)+1)))
	var bad []string
	got, rerr := os.ReadFile(live)
	switch {
	case rerr != nil:
		bad = append(bad, fmt.Sprintf("the live file is gone: %v", rerr))
	case err == nil && !bytes.Equal(got, good):
		bad = append(bad, fmt.Sprintf("repair exited 0 but the live file is not the restored one (%d bytes)", len(got)))
	case !bytes.Equal(got, good) && !bytes.Equal(got, damaged):
		bad = append(bad, fmt.Sprintf("the live file is neither the damaged nor the restored one (%d bytes)", len(got)))
	}
	if b, _ := os.ReadFile(live + ".bak"); !bytes.Equal(b, good) {
		bad = append(bad, "the .bak file changed")
	}
	return took, bad
}

// TestPowerCutStablerestartRepair: 20 cuts at random moments of a repair
// (spread over 0..2x its run time): the live file is always whole.
func TestPowerCutStablerestartRepair(t *testing.T) {
	r := newRig(t)
	typical := 20 * time.Millisecond
	for round := 0; round < 20; round++ {
		took, bad := r.repairRound(round, typical)
		report(t, round, bad)
		if round == 0 {
			typical = max(took, time.Millisecond)
		}
	}
	t.Logf("a whole repair takes about %v", typical)
}
