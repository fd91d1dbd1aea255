package dbtool

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/pkg/store"
)

func lookup(k string) (string, bool) {
	if k == EnvNFSConf {
		return "/nonexistent", true
	}
	return "", false
}

func call(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Main(append([]string{"db"}, args...), nil, &out, &errb, lookup)
	return out.String(), errb.String(), code
}

func TestDumpAndCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *store.Tx) error {
		tx.PutClient(store.Client{ID: []byte("ab"), Time: 1700000000, HasSession: store.SessionYes})
		tx.PutClient(store.Client{ID: []byte{}, Time: 0, HasSession: store.SessionUnknown, Origin: store.OriginImported})
		tx.PutStableFile(store.StableFile{Key: "/var/db/nfs-stablerestart", Arch: "i386", Imported: 1, Data: []byte{0x78, 0}})
		tx.PutMonitor(store.Monitor{MonName: "peer", DNSName: "peer.example", MyName: "me", Prog: 100021, Vers: 3, Proc: 16})
		tx.PutNotify(store.Monitor{MonName: "rebooted-peer", DNSName: "rebooted.example", MyName: "me"})
		tx.PutNSMState(17)
		tx.PutHash("900150983cd24fb0d6963f7d28e17f72")
		tx.CldStart()
		tx.CldGraceStart()
		return tx.CldCreate(store.CldRecord{ID: []byte("v4client"), PrincHash: []byte{1, 2}})
	})
	db.Close()

	out, _, code := call("dump", "--json", "--db", path)
	var d JSONDump
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("dump --json: %d %q", code, out)
	}
	if len(d.Cltrack.Clients) != 2 || d.Cltrack.Clients[0].ID != "" || d.Cltrack.Clients[0].HasSession != nil ||
		d.Cltrack.Clients[0].Origin != "imported" || d.Cltrack.Clients[1].ID != "6162" || *d.Cltrack.Clients[1].HasSession != 1 ||
		len(d.Cltrack.Hashes) != 1 || d.Schema != store.SchemaVersion ||
		len(d.Stable) != 1 || d.Stable[0].Data != "7800" || d.Stable[0].Arch != "i386" ||
		len(d.Monitors) != 1 || d.Monitors[0].DNSName != "peer.example" || d.Monitors[0].Proc != 16 ||
		len(d.Notify) != 1 || d.Notify[0].MonName != "rebooted-peer" || d.State == nil || *d.State != 17 ||
		d.Cld == nil || d.Cld.CurrentEpoch != 2 || d.Cld.RecoveryEpoch != 1 || len(d.Cld.Recovery) != 3 || // cltrack's, copied at the first start

		len(d.Cld.Current) != 1 || d.Cld.Current[0].ID != "7634636c69656e74" || d.Cld.Current[0].PrincHash != "0102" {
		t.Errorf("dump --json: %+v", d)
	}
	out, _, code = call("dump", "--db", path)
	if code != 0 || !strings.Contains(out, "2023-11-14 22:13:20") || !strings.Contains(out, "900150983cd24fb0d6963f7d28e17f72") ||
		!strings.Contains(out, "NSM state number: 17") || !strings.Contains(out, "rebooted-peer (rebooted.example) from me") ||
		!strings.Contains(out, "current epoch 2, grace period running, recovery epoch 1") || !strings.Contains(out, "7634636c69656e74  princhash 0102") {
		t.Errorf("dump: %d\n%s", code, out)
	}
	if out, _, code := call("check", "--db", path); code != CheckOK || !strings.Contains(out, "ok") {
		t.Errorf("check clean db: %d %q", code, out)
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte{7}, 8192), 0o600)
	if _, errs, code := call("check", "--db", junk); code != CheckNoOpen || !strings.Contains(errs, "not an nfsrecover database") {
		t.Errorf("check junk: %d %q", code, errs)
	}
	if _, errs, code := call("dump", "--db", filepath.Join(t.TempDir(), "missing.db")); code != 1 || !strings.Contains(errs, "missing.db") {
		t.Errorf("dump missing: %d %q", code, errs)
	}
}
