package powercut

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/store"
)

// startPeers runs the fake peers (a portmapper and a statd on every
// 127.x.y.z address of the test's namespace) and returns the file where
// they log each SM_NOTIFY as "addr name state unixnano".
func startPeers(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	helper := filepath.Join(work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		t.Fatalf("building nsmhelper: %v %s", err, out)
	}
	got := filepath.Join(work, "notified.txt")
	cmd := exec.Command(helper, "peers", "100000", got) // none silent
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make([]byte, 6)
	if _, err := out.Read(ready); err != nil {
		t.Fatalf("fake peers: %v", err)
	}
	return got
}

// addPeers puts records for n new peers into the state directory's
// monitor list (sm/), as statd would have before this boot, durably.
func (r *rig) addPeers(round, n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		a := fmt.Sprintf("127.1.%d.%d", round, i+1)
		m := store.Monitor{MonName: a, DNSName: a, MyName: "srv.example", Prog: 100021, Vers: 3, Proc: 16}
		if err := smdir.AddRecord(r.path("nsm"), "sm", m); err != nil {
			r.t.Fatal(err)
		}
	}
	r.fs.SyncAll()
}

var notifiedLine = regexp.MustCompile(`msg="peer notified" peer=(\S+)`)

// notifyRound runs our sm-notify over 40 peers and cuts the power once a
// random number of them were reported notified (or after it finished).
// A peer reported notified must be off the notify list after the cut, and
// the state any peer was sent must be the stored state.
func (r *rig) notifyRound(round int, sent string) []string {
	const peers = 40
	r.addPeers(round, peers)
	boot := filepath.Join(r.work, "boot_id")
	os.WriteFile(boot, []byte(fmt.Sprintf("boot-%d\n", round)), 0o644)
	cmd := exec.Command(r.link("sm-notify"), "-d", "-P", r.path("nsm"), "--db", r.path("nsm", "nfsrecover.db"),
		"--pid-file", filepath.Join(r.work, "guard"), "--nsm-state-file", filepath.Join(r.work, "kstate"),
		"--boot-id-file", boot, "--deadline", "20s")
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	r.start(cmd)
	var mu sync.Mutex
	var notified []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := notifiedLine.FindStringSubmatch(sc.Text()); m != nil {
				mu.Lock()
				notified = append(notified, m[1])
				mu.Unlock()
			}
		}
	}()
	target := 1 + r.rng.IntN(peers+5) // above 40: let it finish
	waitFor(30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(notified) >= target || len(notified) == peers
	})
	if target > peers {
		<-scanned // it exits once every peer answered
	}
	r.cut()
	<-scanned
	if mu.Lock(); len(notified) == 0 {
		mu.Unlock()
		return []string{"no peer was reported notified before the cut"}
	}
	mu.Unlock()
	var state int32
	var stateOK bool
	bad := r.withCopy(r.path("nsm", "nfsrecover.db"), func(db *store.DB) []string {
		c, err := db.Dump()
		if err != nil {
			return []string{err.Error()}
		}
		var bad []string
		left := map[string]bool{}
		for _, m := range append(c.Notify, c.Monitors...) {
			left[m.DNSName] = true
		}
		// The files are the record too: what the next run would notify.
		files := smdir.ReadLive(r.path("nsm"))
		for _, m := range append(files.Notify, files.Monitors...) {
			left[m.DNSName] = true
		}
		mu.Lock()
		for _, p := range notified {
			if left[p] {
				bad = append(bad, fmt.Sprintf("%s was reported notified but is still to be notified after the cut", p))
			}
		}
		mu.Unlock()
		db.View(func(tx *store.Tx) error { state, stateOK, err = tx.NSMState(); return err })
		return bad
	})
	raw, _ := os.ReadFile(sent)
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var addr, name string
		var st int32
		if _, err := fmt.Sscan(l, &addr, &name, &st); err == nil && strings.HasPrefix(addr, fmt.Sprintf("127.1.%d.", round)) {
			file := smdir.ReadLive(r.path("nsm"))
			if !stateOK || st != state || !file.HasState || file.State != st {
				bad = append(bad, fmt.Sprintf("%s was sent state %d but the database has %d (%v) and the state file %d (%v)",
					addr, st, state, stateOK, file.State, file.HasState))
				break
			}
		}
	}
	return bad
}

// TestPowerCutNotify: sm-notify removes each peer from the notify list
// durably before it reports it notified, and advances the state durably
// before it sends any; 15 cuts at random moments of a run.
func TestPowerCutNotify(t *testing.T) {
	r := newRig(t)
	sent := startPeers(t)
	os.MkdirAll(r.path("nsm"), 0o755)
	r.fs.SyncAll()
	for round := 0; round < 15; round++ {
		report(t, round, r.notifyRound(round, sent))
	}
}
