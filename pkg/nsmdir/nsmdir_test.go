package nsmdir

import (
	"path/filepath"
	"testing"

	"nfsrecover/pkg/store"
)

func TestLoadState(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		stored *int32
		want   int32
	}{{nil, 3}, {ptr(3), 3}, {ptr(8), 9}, {ptr(11), 11}, {ptr(-5), -5}, {ptr(-6), -5}, {ptr(0), 1}} {
		if c.stored != nil {
			db.Update(func(tx *store.Tx) error { return tx.PutNSMState(*c.stored) })
		}
		got, err := LoadState(db)
		var kept int32
		db.View(func(tx *store.Tx) error { kept, _, _ = tx.NSMState(); return nil })
		if err != nil || got != c.want || kept != c.want {
			t.Errorf("stored %v: got %d (kept %d), want %d", c.stored, got, kept, c.want)
		}
	}
}

func ptr(v int32) *int32 { return &v }
