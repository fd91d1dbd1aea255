package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Buckets of schema 5: nfsdcld's grace epochs.
//
// Bucket "cld" holds the epoch numbers (big-endian uint64 under "current"
// and "recovery") and "first_time" (one byte, 1 until the first grace
// period ends, as nfsdcld's parameters table). Bucket "cld.epochs" holds
// one nested bucket per epoch, named by its big-endian number, whose keys
// are 'i'+client id and whose values are a big-endian uint64 sequence
// number followed by the principal hash (0-32 bytes). Its nested bucket
// "o" maps sequence numbers to ids: records are listed in the order they
// were created (a re-created client moves to the end), which is the
// order nfsdcld streams its rowid tables in.
var (
	bucketCld       = []byte("cld")
	bucketCldEpochs = []byte("cld.epochs")
	keyCurrent      = []byte("current")
	keyRecovery     = []byte("recovery")
	keyFirstTime    = []byte("first_time")
)

// addCld (schema 4 -> 5) adds the empty cld buckets; the epochs are set
// up by CldStart, which also imports cltrack's records then.
func addCld(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketCld, bucketCldEpochs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// CldRecord is one client of an nfsdcld epoch.
type CldRecord struct {
	ID        []byte // client name, 0..MaxIDLen bytes
	PrincHash []byte // SHA-256 of the client's principal, or empty
}

// Epochs are nfsdcld's grace table: the epoch that Create writes to, and
// the one whose clients may reclaim (0 when no grace period is running).
type Epochs struct {
	Current, Recovery uint64
	// FirstTime is set until the first GraceDone: cltrack's records were
	// copied into the current epoch and are dropped when grace ends.
	FirstTime bool
}

// ErrNoEpoch means an epoch named by the grace table has no records
// bucket: the database was damaged or edited.
var ErrNoEpoch = errors.New("epoch missing")

func epochKey(e uint64) []byte { return binary.BigEndian.AppendUint64(nil, e) }

// CldEpochs returns the grace table; ok is false before CldStart ran.
func (tx *Tx) CldEpochs() (e Epochs, ok bool, err error) {
	b := tx.tx.Bucket(bucketCld)
	if b == nil {
		return Epochs{}, false, nil
	}
	cur, rec, ft := b.Get(keyCurrent), b.Get(keyRecovery), b.Get(keyFirstTime)
	if cur == nil {
		return Epochs{}, false, nil
	}
	if len(cur) != 8 || len(rec) != 8 || len(ft) != 1 {
		return Epochs{}, false, fmt.Errorf("cld grace table: %w", ErrCorrupt)
	}
	e = Epochs{binary.BigEndian.Uint64(cur), binary.BigEndian.Uint64(rec), ft[0] == 1}
	return e, true, nil
}

func (tx *Tx) putEpochs(e Epochs) error {
	b := tx.tx.Bucket(bucketCld)
	ft := []byte{0}
	if e.FirstTime {
		ft[0] = 1
	}
	if err := b.Put(keyCurrent, epochKey(e.Current)); err != nil {
		return err
	}
	if err := b.Put(keyFirstTime, ft); err != nil {
		return err
	}
	return b.Put(keyRecovery, epochKey(e.Recovery))
}

// epoch returns the records bucket of epoch n, or ErrNoEpoch.
func (tx *Tx) epoch(n uint64) (*bolt.Bucket, error) {
	b := tx.tx.Bucket(bucketCldEpochs).Bucket(epochKey(n))
	if b == nil {
		return nil, fmt.Errorf("cld epoch %d: %w", n, ErrNoEpoch)
	}
	return b, nil
}

// CldStart is nfsdcld's start-up: the first time it creates epoch 1 (no
// grace running), and while FirstTime is set it replaces the current
// epoch's records with cltrack's clients and v4recovery hashes (as
// "hash:<name>" plus a NUL, nfsdcld's form), so a host that moves from
// nfsdcltrack to nfsdcld keeps its clients. It returns the epochs and the
// number of records imported.
func (tx *Tx) CldStart() (Epochs, int, error) { return tx.CldStartHashes(true) }

// CldStartHashes is CldStart that copies the hash-only v4recovery records
// only when withHashes is set: a kernel without legacy client tracking
// can never match a "hash:" row, and every such row would keep the grace
// period from ending early (the kernel waits for all rows to reclaim).
func (tx *Tx) CldStartHashes(withHashes bool) (Epochs, int, error) {
	e, ok, err := tx.CldEpochs()
	if err != nil {
		return e, 0, err
	}
	if !ok {
		e = Epochs{Current: 1, FirstTime: true}
		if err := tx.putEpochs(e); err != nil {
			return e, 0, err
		}
		if err := tx.replaceEpoch(e.Current, nil); err != nil {
			return e, 0, err
		}
	}
	if !e.FirstTime {
		return e, 0, nil
	}
	recs, err := tx.cltrackAsCld(withHashes)
	if err != nil || len(recs) == 0 {
		// With no nfsdcltrack records nfsdcld's copy fails and rolls
		// back, leaving the current epoch alone.
		return e, 0, err
	}
	if err := tx.replaceEpoch(e.Current, recs); err != nil {
		return e, 0, err
	}
	return e, len(recs), nil
}

// cltrackAsCld lists cltrack's records the way nfsdcld imports them.
func (tx *Tx) cltrackAsCld(withHashes bool) ([]CldRecord, error) {
	var recs []CldRecord
	err := tx.ForEachClient(func(c Client) error {
		recs = append(recs, CldRecord{ID: c.ID})
		return nil
	})
	if err != nil || !withHashes {
		return recs, err
	}
	err = tx.ForEachHash(func(h string) error {
		recs = append(recs, CldRecord{ID: append([]byte("hash:"+h), 0)})
		return nil
	})
	return recs, err
}

// replaceEpoch makes epoch n hold exactly recs.
func (tx *Tx) replaceEpoch(n uint64, recs []CldRecord) error {
	parent := tx.tx.Bucket(bucketCldEpochs)
	if parent.Bucket(epochKey(n)) != nil {
		if err := parent.DeleteBucket(epochKey(n)); err != nil {
			return fmt.Errorf("cld epoch %d: %w", n, err)
		}
	}
	b, err := parent.CreateBucket(epochKey(n))
	if err == nil {
		_, err = b.CreateBucket(keyOrder)
	}
	if err != nil {
		return fmt.Errorf("cld epoch %d: %w", n, err)
	}
	for _, r := range recs {
		if err := putCld(b, r); err != nil {
			return err
		}
	}
	return nil
}

var keyOrder = []byte("o")

// putCld inserts or replaces a record; it goes to the end of the order.
func putCld(b *bolt.Bucket, r CldRecord) error {
	if len(r.ID) > MaxIDLen || len(r.PrincHash) > 32 {
		return fmt.Errorf("cld record %x: id of %d bytes or principal hash of %d bytes too long", r.ID, len(r.ID), len(r.PrincHash))
	}
	if err := deleteCld(b, r.ID); err != nil {
		return err
	}
	order := b.Bucket(keyOrder)
	seq, err := order.NextSequence()
	if err != nil {
		return err
	}
	if err := order.Put(epochKey(seq), bytes.Clone(r.ID)); err != nil {
		return err
	}
	return b.Put(clientKey(r.ID), append(epochKey(seq), r.PrincHash...))
}

// deleteCld removes a record, if there is one.
func deleteCld(b *bolt.Bucket, id []byte) error {
	v := b.Get(clientKey(id))
	if v == nil {
		return nil
	}
	if len(v) < 8 {
		return fmt.Errorf("cld record %x: %w", id, ErrCorrupt)
	}
	if err := b.Bucket(keyOrder).Delete(v[:8]); err != nil {
		return err
	}
	return b.Delete(clientKey(id))
}

// CldGraceStart opens a grace period: with none running, the current
// epoch becomes the recovery epoch and a new, empty current epoch starts;
// when one is running already (a restart during grace), the current
// epoch is emptied and the epochs stay. It returns the new epochs.
func (tx *Tx) CldGraceStart() (Epochs, error) {
	e, ok, err := tx.CldEpochs()
	switch {
	case err != nil:
		return e, err
	case !ok:
		return e, fmt.Errorf("cld grace start: %w: no grace table", ErrNoEpoch)
	}
	if e.Recovery == 0 {
		e.Recovery, e.Current = e.Current, e.Current+1
		if err := tx.putEpochs(e); err != nil {
			return e, err
		}
	}
	return e, tx.replaceEpoch(e.Current, nil)
}

// CldGraceDone ends the grace period: the recovery epoch and its records
// go. With no grace period running (an old kernel that sent no
// GraceStart) it first starts one, as nfsdcld does, so the current
// epoch's records go. The first time, cltrack's records (copied at
// CldStart) go too, as nfsdcld drops the nfsdcltrack database's clients
// then.
func (tx *Tx) CldGraceDone() (Epochs, error) {
	e, err := tx.inGrace()
	if err != nil {
		return e, err
	}
	err = tx.tx.Bucket(bucketCldEpochs).DeleteBucket(epochKey(e.Recovery))
	if err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return e, fmt.Errorf("cld drop epoch %d: %w", e.Recovery, err)
	}
	e.Recovery = 0
	if e.FirstTime {
		if err := tx.DeleteAllClients(); err != nil {
			return e, err
		}
		if err := tx.DeleteAllHashes(); err != nil {
			return e, err
		}
		e.FirstTime = false
	}
	return e, tx.putEpochs(e)
}

// CldCreate records a client in the current epoch (insert or replace).
func (tx *Tx) CldCreate(r CldRecord) error {
	e, b, err := tx.currentEpoch()
	if err != nil {
		return err
	}
	if err := putCld(b, r); err != nil {
		return fmt.Errorf("cld epoch %d: %w", e.Current, err)
	}
	return nil
}

// CldRemove deletes a client from the current epoch; a missing one is
// not an error.
func (tx *Tx) CldRemove(id []byte) error {
	_, b, err := tx.currentEpoch()
	if err != nil {
		return err
	}
	return deleteCld(b, id)
}

// inGrace returns the epochs, first starting a grace period when none is
// running (what nfsdcld does for the GraceDone and Check of old kernels).
func (tx *Tx) inGrace() (Epochs, error) {
	e, ok, err := tx.CldEpochs()
	if err != nil || !ok {
		return e, errors.Join(err, fmt.Errorf("cld: %w: no grace table", ErrNoEpoch))
	}
	if e.Recovery == 0 {
		return tx.CldGraceStart()
	}
	return e, nil
}

// CldCheck is the check of "v0" kernels: whether id is in the recovery
// epoch (starting a grace period first when none runs). A found client
// is copied into the current epoch without its principal hash, as
// nfsdcld does.
func (tx *Tx) CldCheck(id []byte) (bool, error) {
	e, err := tx.inGrace()
	if err != nil {
		return false, err
	}
	cur, err := tx.epoch(e.Current)
	if err != nil {
		return false, err
	}
	rec, err := tx.epoch(e.Recovery)
	if err != nil {
		return false, err
	}
	if rec.Get(clientKey(id)) == nil {
		return false, nil
	}
	return true, putCld(cur, CldRecord{ID: id})
}

func (tx *Tx) currentEpoch() (Epochs, *bolt.Bucket, error) {
	e, ok, err := tx.CldEpochs()
	if err != nil || !ok {
		return e, nil, errors.Join(err, fmt.Errorf("cld: %w: no grace table", ErrNoEpoch))
	}
	b, err := tx.epoch(e.Current)
	return e, b, err
}

// ForEachCldRecord calls fn for every client of epoch n in the order
// they were created. The record's slices are copies.
func (tx *Tx) ForEachCldRecord(n uint64, fn func(CldRecord) error) error {
	b, err := tx.epoch(n)
	if err != nil {
		return err
	}
	order := b.Bucket(keyOrder)
	if order == nil {
		return fmt.Errorf("cld epoch %d: %w: no order bucket", n, ErrCorrupt)
	}
	return order.ForEach(func(seq, id []byte) error {
		v := b.Get(clientKey(id))
		if len(id) > MaxIDLen || len(v) < 8 || len(v) > 8+32 || !bytes.Equal(v[:8], seq) {
			return fmt.Errorf("cld epoch %d record %x: %w", n, id, ErrCorrupt)
		}
		return fn(CldRecord{ID: bytes.Clone(id), PrincHash: bytes.Clone(v[8:])})
	})
}

// CldRecordsAfter returns up to limit clients of epoch n, in creation
// order, that come after position pos (0: from the start), and the
// position of the last one returned. A caller streams a large epoch in
// bounded pieces this way, releasing the file between them.
func (tx *Tx) CldRecordsAfter(n, pos uint64, limit int) ([]CldRecord, uint64, error) {
	b, err := tx.epoch(n)
	if err != nil {
		return nil, pos, err
	}
	order := b.Bucket(keyOrder)
	if order == nil {
		return nil, pos, fmt.Errorf("cld epoch %d: %w: no order bucket", n, ErrCorrupt)
	}
	var out []CldRecord
	c := order.Cursor()
	for seq, id := c.Seek(epochKey(pos + 1)); seq != nil && len(out) < limit; seq, id = c.Next() {
		v := b.Get(clientKey(id))
		if len(seq) != 8 || len(id) > MaxIDLen || len(v) < 8 || len(v) > 8+32 || !bytes.Equal(v[:8], seq) {
			return nil, pos, fmt.Errorf("cld epoch %d record %x: %w", n, id, ErrCorrupt)
		}
		out = append(out, CldRecord{ID: bytes.Clone(id), PrincHash: bytes.Clone(v[8:])})
		pos = binary.BigEndian.Uint64(seq)
	}
	return out, pos, nil
}

// CldEpochNumbers lists the epochs that have a records bucket.
func (tx *Tx) CldEpochNumbers() []uint64 {
	var out []uint64
	_ = tx.tx.Bucket(bucketCldEpochs).ForEachBucket(func(k []byte) error {
		if len(k) == 8 {
			out = append(out, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return out
}

// PutCldState replaces all of nfsdcld's state (import): the grace table
// and the epochs given, every other epoch dropped.
func (tx *Tx) PutCldState(e Epochs, epochs map[uint64][]CldRecord) error {
	if err := tx.tx.DeleteBucket(bucketCldEpochs); err != nil {
		return fmt.Errorf("cld: %w", err)
	}
	if _, err := tx.tx.CreateBucket(bucketCldEpochs); err != nil {
		return fmt.Errorf("cld: %w", err)
	}
	for n, recs := range epochs {
		if err := tx.replaceEpoch(n, recs); err != nil {
			return err
		}
	}
	return tx.putEpochs(e)
}

// ReplaceCldEpoch makes epoch n hold exactly recs (import of nfsdcltrack
// records into the current epoch).
func (tx *Tx) ReplaceCldEpoch(n uint64, recs []CldRecord) error { return tx.replaceEpoch(n, recs) }
