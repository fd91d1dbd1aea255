package status

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nfsrecover/pkg/store"
)

// TestMetricsMatchTheDatabase: status --metrics, parsed back, agrees with
// what the database dump holds.
func TestMetricsMatchTheDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nfsrecover.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-90 * time.Second).Unix()
	db.Update(func(tx *store.Tx) error {
		tx.PutNSMState(23)
		tx.PutMonitor(store.Monitor{MonName: "a", DNSName: "a", MyName: "me", Prog: 100021, Vers: 4, Proc: 16})
		tx.PutMonitor(store.Monitor{MonName: "b", DNSName: "b", MyName: "me", Prog: 100021, Vers: 4, Proc: 16})
		tx.PutNotify(store.Monitor{MonName: "c", DNSName: "c", MyName: "me", Created: created})
		tx.PutClient(store.Client{ID: []byte("x"), Time: 1})
		tx.CldStart()
		tx.CldGraceStart()
		tx.CldCreate(store.CldRecord{ID: []byte("y")})
		return tx.CldCreate(store.CldRecord{ID: []byte("z")})
	})
	db.Close()
	metrics := filepath.Join(dir, "nfsrecover.prom")
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) {
		return map[string]string{"NFSRECOVER_NFS_CONF": "/nonexistent"}[k], k == "NFSRECOVER_NFS_CONF"
	}
	if code := Main([]string{"status", "--db", path, "--metrics", metrics}, nil, &out, &errb, lookup); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := parse(t, metrics)
	c, err := store.DumpFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Cld.Epochs
	want := map[string]float64{
		"nfsrecover_nsm_state":                 float64(c.NSMState),
		"nfsrecover_nsm_monitored_peers":       float64(len(c.Monitors)),
		"nfsrecover_nsm_pending_notifications": float64(len(c.Notify)),
		"nfsrecover_cltrack_clients":           float64(len(c.Clients)),
		"nfsrecover_cld_current_epoch":         float64(e.Current),
		"nfsrecover_cld_recovery_epoch":        float64(e.Recovery),
		"nfsrecover_cld_in_grace":              1,
		"nfsrecover_cld_current_clients":       float64(len(c.Cld.Records[e.Current])),
		"nfsrecover_cld_recovery_clients":      float64(len(c.Cld.Records[e.Recovery])),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, the database says %v", k, got[k], v)
		}
	}
	if age := got["nfsrecover_nsm_oldest_pending_notification_age_seconds"]; age < 90 || age > 3600 {
		t.Errorf("oldest pending age %v, want about 90 s", age)
	}
	if !strings.Contains(out.String(), "NSM state           23") || !strings.Contains(out.String(), "in grace: 1 clients may reclaim from epoch 1") {
		t.Errorf("text report:\n%s", out.String())
	}
}

// parse reads a textfile: every sample line "name value", each name
// preceded by HELP and TYPE lines.
func parse(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			typed[strings.Fields(rest)[0]] = true
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		name, val, ok := strings.Cut(l, " ")
		v, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil || !typed[name] {
			t.Fatalf("bad line %q", l)
		}
		out[name] = v
	}
	return out
}
