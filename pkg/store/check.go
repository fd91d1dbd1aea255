package store

import "fmt"

// Contents is everything in the database, for dumps and exports.
type Contents struct {
	Path     string
	Schema   uint32
	Clients  []Client
	Hashes   []string
	Stable   []StableFile
	Monitors []Monitor
	Notify   []Monitor
}

// DumpFile opens path read-only and returns its contents.
func DumpFile(path string) (Contents, error) {
	db, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		return Contents{}, err
	}
	defer db.Close()
	return db.Dump()
}

// Dump reads the whole database in one transaction.
func (db *DB) Dump() (Contents, error) {
	out := Contents{Path: db.path, Schema: db.schema}
	err := db.View(func(tx *Tx) error {
		if tx.clients() == nil {
			return nil // read-only open of a file with no schema yet
		}
		if err := tx.ForEachClient(func(c Client) error {
			out.Clients = append(out.Clients, c)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.ForEachHash(func(h string) error {
			out.Hashes = append(out.Hashes, h)
			return nil
		}); err != nil {
			return err
		}
		if tx.tx.Bucket(bucketStable) != nil {
			if err := tx.ForEachStableFile(func(s StableFile) error {
				out.Stable = append(out.Stable, s)
				return nil
			}); err != nil {
				return err
			}
		}
		if tx.tx.Bucket(bucketMonitors) != nil {
			if err := tx.ForEachMonitor(func(m Monitor) error {
				out.Monitors = append(out.Monitors, m)
				return nil
			}); err != nil {
				return err
			}
		}
		if tx.tx.Bucket(bucketNotify) == nil {
			return nil
		}
		return tx.ForEachNotify(func(m Monitor) error {
			out.Notify = append(out.Notify, m)
			return nil
		})
	})
	return out, err
}

// Check verifies the file's structure (bbolt's page-level consistency
// check) and that every record decodes. It returns all problems found.
func (db *DB) Check() []error {
	var problems []error
	err := db.View(func(tx *Tx) error {
		for e := range tx.tx.Check() {
			problems = append(problems, fmt.Errorf("structure: %w", e))
		}
		if db.schema != SchemaVersion {
			problems = append(problems, fmt.Errorf("schema %d, want %d (open read-write to migrate)", db.schema, SchemaVersion))
			return nil
		}
		for _, b := range [][]byte{bucketMeta, bucketClients, bucketHashes, bucketStable, bucketMonitors, bucketNotify} {
			if tx.tx.Bucket(b) == nil {
				problems = append(problems, fmt.Errorf("bucket %s missing", b))
			}
		}
		if len(problems) > 0 {
			return nil
		}
		_ = tx.clients().ForEach(func(k, v []byte) error {
			if _, err := decodeClient(k, v); err != nil {
				problems = append(problems, err)
			}
			return nil
		})
		_ = tx.hashes().ForEach(func(k, _ []byte) error {
			if !ValidHashName(string(k)) {
				problems = append(problems, fmt.Errorf("hash-only key %x: %w", k, ErrCorrupt))
			}
			return nil
		})
		_ = tx.tx.Bucket(bucketStable).ForEach(func(k, v []byte) error {
			if _, err := decodeStable(k, v); err != nil {
				problems = append(problems, err)
			}
			return nil
		})
		for _, b := range [][]byte{bucketMonitors, bucketNotify} {
			_ = tx.tx.Bucket(b).ForEach(func(k, v []byte) error {
				if _, err := decodeMonitor(k, v); err != nil {
					problems = append(problems, err)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	return problems
}
