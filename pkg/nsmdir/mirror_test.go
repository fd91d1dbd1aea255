package nsmdir

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/store"
)

func rec(name, my string) store.Monitor {
	return store.Monitor{MonName: name, DNSName: name, MyName: my, Prog: 100021, Vers: 3, Proc: 16}
}

// Reconcile's rule, case by case: a directory with NSM files of its own is
// the record; an empty one takes the database's; a database that agrees
// is left as it is.
func TestReconcile(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An empty directory takes the database's lists and state.
	db.Update(func(tx *store.Tx) error {
		tx.PutMonitor(rec("10.0.0.1", "srv"))
		tx.PutNotify(rec("10.0.0.2", "srv"))
		return tx.PutNSMState(7)
	})
	if err := Reconcile(db, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	d := smdir.ReadLive(dir)
	if len(d.Monitors) != 1 || len(d.Notify) != 1 || !d.HasState || d.State != 7 {
		t.Fatalf("written out: %+v", d)
	}
	// Files edited by an agent win: a record deleted, one added, a random state.
	os.Remove(filepath.Join(dir, "sm", "10.0.0.1"))
	smdir.AddRecord(dir, "sm", rec("10.0.0.3", "other"))
	smdir.WriteState(dir, -8)
	if err := Reconcile(db, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	c, _ := db.Dump()
	var state int32
	db.View(func(tx *store.Tx) (err error) { state, _, err = tx.NSMState(); return err })
	if len(c.Monitors) != 1 || c.Monitors[0].MonName != "10.0.0.3" || len(c.Notify) != 1 || state != -8 {
		t.Fatalf("after the edit the database has %+v, state %d", c, state)
	}
	// In agreement: nothing is written (the database file does not change).
	before, _ := os.Stat(db.Path())
	if err := Reconcile(db, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(db.Path()); after.ModTime() != before.ModTime() || after.Size() != before.Size() {
		t.Error("a database that agrees with the files was written again")
	}
}
