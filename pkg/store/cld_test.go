package store

import (
	"bytes"
	"path/filepath"
	"testing"
)

func cldIDs(t *testing.T, tx *Tx, epoch uint64) []string {
	t.Helper()
	var out []string
	if err := tx.ForEachCldRecord(epoch, func(r CldRecord) error {
		out = append(out, string(r.ID))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCldFirstStartImportsCltrack: a host moving from nfsdcltrack keeps
// its clients (nfsdcld's one-time import); the first GraceDone drops the
// nfsdcltrack records, as nfsdcld deletes them from its database.
func TestCldFirstStartImportsCltrack(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "db"), nil)
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutClient(Client{ID: []byte("v41-client"), Time: 1}); err != nil {
			return err
		}
		return tx.PutHash("0123456789abcdef0123456789abcdef")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		e, n, err := tx.CldStart()
		if err != nil {
			return err
		}
		if e != (Epochs{Current: 1, FirstTime: true}) || n != 2 {
			t.Errorf("CldStart: %+v, %d imported", e, n)
		}
		got := cldIDs(t, tx, 1)
		want := []string{"v41-client", "hash:0123456789abcdef0123456789abcdef\x00"}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("epoch 1 = %q, want %q", got, want)
		}
		if e, err = tx.CldGraceStart(); err != nil || e.Current != 2 || e.Recovery != 1 {
			t.Errorf("GraceStart: %+v %v", e, err)
		}
		if e, err = tx.CldGraceDone(); err != nil || e != (Epochs{Current: 2}) {
			t.Errorf("GraceDone: %+v %v", e, err)
		}
		if any, _ := tx.AnyClient(func(Client) bool { return true }); any || tx.HasHash("0123456789abcdef0123456789abcdef") {
			t.Error("nfsdcltrack records kept after the first GraceDone")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if probs := db.Check(); len(probs) > 0 {
		t.Errorf("Check: %v", probs)
	}
}

// TestCldEpochModel follows nfsdcld.md B2: restart during grace empties
// the current epoch and keeps the epochs; create re-orders a client to
// the end; GraceDone outside grace starts one first.
func TestCldEpochModel(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "db"), nil)
	err := db.Update(func(tx *Tx) error {
		tx.CldStart()
		tx.CldGraceStart() // (2,1)
		for _, id := range []string{"x", "y", "z"} {
			tx.CldCreate(CldRecord{ID: []byte(id)})
		}
		tx.CldCreate(CldRecord{ID: []byte("x"), PrincHash: bytes.Repeat([]byte{1}, 32)})
		if got := cldIDs(t, tx, 2); len(got) != 3 || got[0] != "y" || got[2] != "x" {
			t.Errorf("order after re-create: %q, want y z x", got)
		}
		tx.CldGraceDone() // (2,0)
		tx.CldGraceStart()
		tx.CldCreate(CldRecord{ID: []byte("new")})
		e, _ := tx.CldGraceStart() // restart in grace
		if e != (Epochs{Current: 3, Recovery: 2}) || len(cldIDs(t, tx, 3)) != 0 || len(cldIDs(t, tx, 2)) != 3 {
			t.Errorf("restart in grace: %+v current %q recovery %q", e, cldIDs(t, tx, 3), cldIDs(t, tx, 2))
		}
		tx.CldGraceDone()
		tx.CldCreate(CldRecord{ID: []byte("kept?")})
		e, _ = tx.CldGraceDone() // not in grace: start one, then end it
		if e != (Epochs{Current: 4}) || len(cldIDs(t, tx, 4)) != 0 {
			t.Errorf("GraceDone outside grace: %+v, current %q", e, cldIDs(t, tx, 4))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCldStartWithoutHashes: on a kernel without legacy tracking the
// hash-only rows are not copied (they could never be reclaimed).
func TestCldStartWithoutHashes(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "db"), nil)
	err := db.Update(func(tx *Tx) error {
		tx.PutClient(Client{ID: []byte("c")})
		tx.PutHash("0123456789abcdef0123456789abcdef")
		_, n, err := tx.CldStartHashes(false)
		if got := cldIDs(t, tx, 1); n != 1 || len(got) != 1 || got[0] != "c" {
			t.Errorf("without hashes: %d imported, epoch 1 = %q", n, got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
