package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MaxIDLen is the longest NFSv4 client id (NFS4_OPAQUE_LIMIT).
const MaxIDLen = 1024

// Session is nfsdcltrack's has_session column: NULL, 0 or 1.
type Session uint8

// Session values. SessionUnknown is SQL NULL (rows migrated from schema v1).
const (
	SessionUnknown Session = iota
	SessionNo
	SessionYes
)

// String names the value as SQL would show it.
func (s Session) String() string {
	switch s {
	case SessionNo:
		return "0"
	case SessionYes:
		return "1"
	}
	return "NULL"
}

// Origin records how a client record came to exist (informational).
type Origin uint8

// Origin flags.
const (
	OriginLegacyDir Origin = 1 << iota // created from a v4recovery directory
	OriginImported                     // imported from nfsdcltrack's sqlite
)

// Client is one nfsdcltrack client record.
type Client struct {
	ID         []byte  // raw client name, 0..MaxIDLen bytes
	Time       int64   // UTC epoch seconds of the last create / v4.0 check
	HasSession Session // v4.1+ client?
	Origin     Origin
}

// Record layout (value): time int64 BE | has_session u8 | origin u8.
const clientValueLen = 10

func clientKey(id []byte) []byte { return append([]byte{'i'}, id...) }

func encodeClient(c Client) []byte {
	v := make([]byte, clientValueLen)
	binary.BigEndian.PutUint64(v, uint64(c.Time))
	v[8], v[9] = byte(c.HasSession), byte(c.Origin)
	return v
}

// decodeClient decodes a key/value pair, copying the id.
func decodeClient(k, v []byte) (Client, error) {
	c, err := viewClient(k, v)
	c.ID = bytes.Clone(c.ID)
	return c, err
}

// viewClient decodes a key/value pair; the ID aliases k.
func viewClient(k, v []byte) (Client, error) {
	if len(k) == 0 || k[0] != 'i' || len(k)-1 > MaxIDLen {
		return Client{}, fmt.Errorf("client key %x: %w: bad key", k, ErrCorrupt)
	}
	if len(v) != clientValueLen || v[8] > byte(SessionYes) {
		return Client{}, fmt.Errorf("client %x: %w: bad value %x", k[1:], ErrCorrupt, v)
	}
	return Client{
		ID:         k[1:],
		Time:       int64(binary.BigEndian.Uint64(v)),
		HasSession: Session(v[8]),
		Origin:     Origin(v[9]),
	}, nil
}

func (tx *Tx) clients() *bolt.Bucket { return tx.tx.Bucket(bucketClients) }

// Client returns the record for id.
func (tx *Tx) Client(id []byte) (Client, bool, error) {
	v := tx.clients().Get(clientKey(id))
	if v == nil {
		return Client{}, false, nil
	}
	c, err := decodeClient(clientKey(id), v)
	return c, err == nil, err
}

// PutClient inserts or replaces a record.
func (tx *Tx) PutClient(c Client) error {
	if len(c.ID) > MaxIDLen {
		return fmt.Errorf("client id of %d bytes exceeds %d", len(c.ID), MaxIDLen)
	}
	return tx.clients().Put(clientKey(c.ID), encodeClient(c))
}

// DeleteClient removes id; a missing record is not an error.
func (tx *Tx) DeleteClient(id []byte) error { return tx.clients().Delete(clientKey(id)) }

// ForEachClient calls fn for every record in id order (byte order, as
// SQLite orders BLOBs).
func (tx *Tx) ForEachClient(fn func(Client) error) error {
	return tx.clients().ForEach(func(k, v []byte) error {
		c, err := decodeClient(k, v)
		if err != nil {
			return err
		}
		return fn(c)
	})
}

// DeleteClientsWhere deletes every record for which drop is true and
// returns how many it deleted. drop sees records whose ID aliases the
// database: it must not keep them. When most records go, the bucket is
// rebuilt from the survivors, which turns a gracedone over 100,000
// clients into freeing the old pages at once instead of 100,000 B+tree
// deletions; nothing is copied but what is kept.
func (tx *Tx) DeleteClientsWhere(drop func(Client) bool) (int, error) {
	doomed, total := 0, 0
	err := tx.scanClients(func(k, v []byte, c Client) error {
		total++
		if drop(c) {
			doomed++
		}
		return nil
	})
	if err != nil || doomed == 0 {
		return 0, err
	}
	if doomed*2 > total {
		return doomed, tx.rebuildClients(drop, total-doomed)
	}
	keys := make([][]byte, 0, doomed)
	_ = tx.scanClients(func(k, _ []byte, c Client) error {
		if drop(c) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range keys {
		if err := tx.clients().Delete(k); err != nil {
			return 0, err
		}
	}
	return doomed, nil
}

// rebuildClients replaces the bucket by one holding only the survivors.
func (tx *Tx) rebuildClients(drop func(Client) bool, keep int) error {
	// Copy survivors out: the old pages are freed with the bucket.
	arena := make([]byte, 0, keep*(clientValueLen+32))
	spans := make([][2]int, 0, keep)
	_ = tx.scanClients(func(k, v []byte, c Client) error {
		if !drop(c) {
			start := len(arena)
			arena = append(append(arena, k...), v...)
			spans = append(spans, [2]int{start, len(k)})
		}
		return nil
	})
	if err := tx.tx.DeleteBucket(bucketClients); err != nil {
		return err
	}
	b, err := tx.tx.CreateBucket(bucketClients)
	if err != nil {
		return err
	}
	b.FillPercent = 0.9 // survivors arrive in key order
	for i, sp := range spans {
		end := len(arena)
		if i+1 < len(spans) {
			end = spans[i+1][0]
		}
		if err := b.Put(arena[sp[0]:sp[0]+sp[1]], arena[sp[0]+sp[1]:end]); err != nil {
			return err
		}
	}
	return nil
}

// scanClients visits every record without copying: k, v and c.ID alias
// the database and are valid only during the call.
func (tx *Tx) scanClients(fn func(k, v []byte, c Client) error) error {
	cur := tx.clients().Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		c, err := viewClient(k, v)
		if err != nil {
			return err
		}
		if err := fn(k, v, c); err != nil {
			return err
		}
	}
	return nil
}

// AnyClient reports whether some record satisfies pred, stopping at the
// first one. pred must not keep the record's ID.
func (tx *Tx) AnyClient(pred func(Client) bool) (bool, error) {
	errFound := errors.New("found")
	err := tx.scanClients(func(_, _ []byte, c Client) error {
		if pred(c) {
			return errFound
		}
		return nil
	})
	if err == errFound {
		return true, nil
	}
	return false, err
}

// DeleteAllClients empties the client records.
func (tx *Tx) DeleteAllClients() error {
	if err := tx.tx.DeleteBucket(bucketClients); err != nil {
		return err
	}
	_, err := tx.tx.CreateBucket(bucketClients)
	return err
}
