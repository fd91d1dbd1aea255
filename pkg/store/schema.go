package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migrations[i] brings schema i to schema i+1. They run in order inside one
// write transaction. Append only; never edit a released step.
var migrations = []func(*bolt.Tx) error{
	0: createV1,
	1: addStableRestart,
	2: addMonitors,
	3: addNotifyList,
	4: addCld,
}

// SchemaVersion is the schema this program writes.
const SchemaVersion = uint32(5)

// Bucket names of schema 1.
var (
	bucketClients = []byte("cltrack.clients") // nfsdcltrack client records
	bucketHashes  = []byte("cltrack.hashes")  // hash-only records from v4recovery
)

// createV1 lays out an empty database.
func createV1(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketClients, bucketHashes} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Bucket of schema 2.
var bucketStable = []byte("stablerestart.files") // FreeBSD stable restart files

// addStableRestart (schema 1 -> 2) adds the stable restart files bucket.
func addStableRestart(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketStable)
	return err
}

// Bucket of schema 3.
var bucketMonitors = []byte("nsm.monitors") // statd's monitor list (legacy sm/)

// addMonitors (schema 2 -> 3) adds statd's monitor list.
func addMonitors(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketMonitors)
	return err
}

// Bucket of schema 4.
var bucketNotify = []byte("nsm.notify") // peers still to tell of our last reboot (legacy sm.bak/)

// addNotifyList (schema 3 -> 4) adds the notify list.
func addNotifyList(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketNotify)
	return err
}

func migrate(tx *bolt.Tx, from uint32) error {
	for v := from; v < SchemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("step %d->%d: %w", v, v+1, err)
		}
	}
	var raw [4]byte
	binary.BigEndian.PutUint32(raw[:], SchemaVersion)
	return tx.Bucket(bucketMeta).Put(keySchema, raw[:])
}
