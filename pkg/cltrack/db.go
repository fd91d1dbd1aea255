package cltrack

import (
	"nfsrecover/pkg/store"
)

// DB is the storage cltrack needs: each method is one durable transaction.
// *store.DB satisfies it through FromStore; tests use an in-memory twin.
type DB interface {
	// Lookup returns the record for id.
	Lookup(id []byte) (store.Client, bool, error)
	// Put inserts or replaces a record.
	Put(c store.Client) error
	// Delete removes id; a missing record is not an error.
	Delete(id []byte) error
	// Touch sets an existing record's time; found is false when absent.
	Touch(id []byte, now int64) (found bool, err error)
	// ClaimHash replaces hash-only record name by c, atomically; claimed is
	// false (and nothing is written) when there is no such record.
	ClaimHash(name string, c store.Client) (claimed bool, err error)
	// DeleteWhere deletes every record for which drop is true.
	DeleteWhere(drop func(store.Client) bool) (int, error)
	// Any reports whether some record satisfies pred.
	Any(pred func(store.Client) bool) (bool, error)
	// Close releases the database.
	Close() error
}

// FromStore adapts an open store to DB.
func FromStore(db *store.DB) DB { return storeDB{db} }

type storeDB struct{ db *store.DB }

func (s storeDB) Close() error { return s.db.Close() }

func (s storeDB) Lookup(id []byte) (c store.Client, ok bool, err error) {
	err = s.db.View(func(tx *store.Tx) error {
		c, ok, err = tx.Client(id)
		return err
	})
	return c, ok, err
}

func (s storeDB) Put(c store.Client) error {
	return s.db.Update(func(tx *store.Tx) error { return tx.PutClient(c) })
}

func (s storeDB) Delete(id []byte) error {
	return s.db.Update(func(tx *store.Tx) error { return tx.DeleteClient(id) })
}

func (s storeDB) Touch(id []byte, now int64) (found bool, err error) {
	// Look first: a miss (the common denial) must not cost a commit.
	if _, ok, err := s.Lookup(id); err != nil || !ok {
		return false, err
	}
	err = s.db.Update(func(tx *store.Tx) error {
		c, ok, err := tx.Client(id)
		if err != nil || !ok {
			return err
		}
		found, c.Time = true, now
		return tx.PutClient(c)
	})
	return found, err
}

func (s storeDB) ClaimHash(name string, c store.Client) (claimed bool, err error) {
	var present bool
	if err := s.db.View(func(tx *store.Tx) error { present = tx.HasHash(name); return nil }); err != nil || !present {
		return false, err
	}
	err = s.db.Update(func(tx *store.Tx) error {
		if !tx.HasHash(name) {
			return nil
		}
		if err := tx.PutClient(c); err != nil {
			return err
		}
		claimed = true
		return tx.DeleteHash(name)
	})
	return claimed, err
}

func (s storeDB) DeleteWhere(drop func(store.Client) bool) (n int, err error) {
	err = s.db.Update(func(tx *store.Tx) error {
		n, err = tx.DeleteClientsWhere(drop)
		return err
	})
	return n, err
}

func (s storeDB) Any(pred func(store.Client) bool) (found bool, err error) {
	err = s.db.View(func(tx *store.Tx) error {
		found, err = tx.AnyClient(pred)
		return err
	})
	return found, err
}
