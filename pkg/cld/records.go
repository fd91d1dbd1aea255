package cld

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"nfsrecover/pkg/store"
)

// Committer applies a change durably: Do returns nil only once the change
// is on stable storage. View reads. store.Committer is one.
type Committer interface {
	Do(ctx context.Context, apply func(*store.Tx) error) error
	View(fn func(*store.Tx) error) error
}

// DBRecords keeps the records in the local nfsrecover database.
type DBRecords struct {
	DB Committer
	// EndGraceFile, when set, is read before each Create and Remove while
	// no grace period is recorded: "N" means nfsd is in grace without
	// having said so, and a grace period is started first. Kernels before
	// 4.20 send no GraceStart (nfsdcld does the same there); set it to
	// /proc/fs/nfsd/v4_end_grace on them, leave it empty otherwise.
	EndGraceFile string
	Log          *slog.Logger
}

// Create implements Records.
func (d *DBRecords) Create(ctx context.Context, r store.CldRecord) error {
	return d.DB.Do(ctx, func(tx *store.Tx) error {
		if err := d.oldKernelGrace(tx); err != nil {
			return err
		}
		return tx.CldCreate(r)
	})
}

// Remove implements Records.
func (d *DBRecords) Remove(ctx context.Context, id []byte) error {
	return d.DB.Do(ctx, func(tx *store.Tx) error {
		if err := d.oldKernelGrace(tx); err != nil {
			return err
		}
		return tx.CldRemove(id)
	})
}

// Check implements Records.
func (d *DBRecords) Check(ctx context.Context, id []byte) (found bool, err error) {
	err = d.DB.Do(ctx, func(tx *store.Tx) error {
		found, err = tx.CldCheck(id)
		return err
	})
	return found, err
}

// GraceStart implements Records.
func (d *DBRecords) GraceStart(ctx context.Context) (e store.Epochs, err error) {
	err = d.DB.Do(ctx, func(tx *store.Tx) error {
		e, err = tx.CldGraceStart()
		return err
	})
	return e, err
}

// GraceDone implements Records.
func (d *DBRecords) GraceDone(ctx context.Context) error {
	return d.DB.Do(ctx, func(tx *store.Tx) error { _, err := tx.CldGraceDone(); return err })
}

// Reclaimable implements Records; each chunk is read in its own
// transaction, so memory stays bounded whatever the epoch's size.
func (d *DBRecords) Reclaimable(_ context.Context, epoch uint64, limit int, each func([]store.CldRecord) error) error {
	var pos uint64
	for {
		var recs []store.CldRecord
		err := d.DB.View(func(tx *store.Tx) error {
			var err error
			recs, pos, err = tx.CldRecordsAfter(epoch, pos, limit)
			return err
		})
		if err != nil {
			return err
		}
		if err := each(recs); err != nil {
			return err
		}
		if len(recs) < limit {
			return nil
		}
	}
}

func (d *DBRecords) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// oldKernelGrace starts a grace period when an old kernel is in grace
// without having sent GraceStart (see EndGraceFile). An unreadable file
// fails the change, as in nfsdcld.
func (d *DBRecords) oldKernelGrace(tx *store.Tx) error {
	if d.EndGraceFile == "" {
		return nil
	}
	e, ok, err := tx.CldEpochs()
	if err != nil || !ok || e.Recovery != 0 {
		return err
	}
	b, err := os.ReadFile(d.EndGraceFile)
	if err != nil {
		return fmt.Errorf("old kernel: %w", err)
	}
	if len(b) > 0 && b[0] == 'N' {
		d.log().Warn("nfsd is in grace but sent no GraceStart (kernel before 4.20): starting one")
		_, err = tx.CldGraceStart()
	}
	return err
}
