package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Hash-only records come from a legacy v4recovery directory, whose entries
// are md5(client id) in 32 lowercase hex digits: the id itself cannot be
// recovered. A client whose md5 matches may reclaim once; its first check
// turns the hash into a full client record.

// ValidHashName reports whether name is 32 lowercase hex digits.
func ValidHashName(name string) bool {
	if len(name) != 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (tx *Tx) hashes() *bolt.Bucket { return tx.tx.Bucket(bucketHashes) }

// PutHash records a hash-only client.
func (tx *Tx) PutHash(name string) error {
	if !ValidHashName(name) {
		return fmt.Errorf("hash-only record %q: not 32 lowercase hex digits", name)
	}
	return tx.hashes().Put([]byte(name), []byte{})
}

// HasHash reports whether the hash-only record exists.
func (tx *Tx) HasHash(name string) bool { return tx.hashes().Get([]byte(name)) != nil }

// DeleteHash removes a hash-only record; a missing one is not an error.
func (tx *Tx) DeleteHash(name string) error { return tx.hashes().Delete([]byte(name)) }

// ForEachHash calls fn for every hash-only record in order.
func (tx *Tx) ForEachHash(fn func(name string) error) error {
	return tx.hashes().ForEach(func(k, _ []byte) error {
		if !ValidHashName(string(k)) {
			return fmt.Errorf("hash-only key %x: %w", k, ErrCorrupt)
		}
		return fn(string(k))
	})
}

// DeleteAllHashes empties the hash-only records.
func (tx *Tx) DeleteAllHashes() error {
	if err := tx.tx.DeleteBucket(bucketHashes); err != nil {
		return err
	}
	_, err := tx.tx.CreateBucket(bucketHashes)
	return err
}
