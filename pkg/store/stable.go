package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// StableFile is a FreeBSD nfs-stablerestart file kept in the database:
// its exact bytes (so export is byte-identical), the architecture it was
// read as, and when it was imported. Its meaning is package
// stablerestart's business; the store only keeps it.
type StableFile struct {
	Key      string // the file's path, as given at import
	Arch     string
	Imported int64 // epoch seconds
	Data     []byte
}

// Value layout: version u8 (1) | imported i64 BE | len(arch) u8 | arch | data.
func encodeStable(s StableFile) []byte {
	v := make([]byte, 0, 10+len(s.Arch)+len(s.Data))
	v = append(v, 1)
	v = binary.BigEndian.AppendUint64(v, uint64(s.Imported))
	v = append(v, byte(len(s.Arch)))
	v = append(v, s.Arch...)
	return append(v, s.Data...)
}

func decodeStable(k, v []byte) (StableFile, error) {
	if len(v) < 10 || v[0] != 1 || len(v) < 10+int(v[9]) {
		return StableFile{}, fmt.Errorf("stable restart file %q: %w", k, ErrCorrupt)
	}
	n := int(v[9])
	return StableFile{
		Key:      string(k),
		Imported: int64(binary.BigEndian.Uint64(v[1:])),
		Arch:     string(v[10 : 10+n]),
		Data:     bytes.Clone(v[10+n:]),
	}, nil
}

// PutStableFile stores (or replaces) a stable restart file under s.Key.
func (tx *Tx) PutStableFile(s StableFile) error {
	if s.Key == "" || len(s.Arch) > 255 {
		return fmt.Errorf("stable restart file: bad key %q or arch %q", s.Key, s.Arch)
	}
	return tx.tx.Bucket(bucketStable).Put([]byte(s.Key), encodeStable(s))
}

// StableFile returns the file stored under key.
func (tx *Tx) StableFile(key string) (StableFile, bool, error) {
	v := tx.tx.Bucket(bucketStable).Get([]byte(key))
	if v == nil {
		return StableFile{}, false, nil
	}
	s, err := decodeStable([]byte(key), v)
	return s, err == nil, err
}

// ForEachStableFile calls fn for every stored file, in key order.
func (tx *Tx) ForEachStableFile(fn func(StableFile) error) error {
	return tx.tx.Bucket(bucketStable).ForEach(func(k, v []byte) error {
		s, err := decodeStable(k, v)
		if err != nil {
			return err
		}
		return fn(s)
	})
}
