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
	// NSMState is statd's state number; HasNSMState is false when none
	// was stored yet.
	NSMState    int32
	HasNSMState bool
	// Cld is nfsdcld's state; nil until the cld applet first ran.
	Cld *CldContents
}

// CldContents is nfsdcld's grace table and every epoch's clients.
type CldContents struct {
	Epochs  Epochs
	Records map[uint64][]CldRecord
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
		if tx.tx.Bucket(bucketNotify) != nil {
			if err := tx.ForEachNotify(func(m Monitor) error {
				out.Notify = append(out.Notify, m)
				return nil
			}); err != nil {
				return err
			}
		}
		var err error
		if out.NSMState, out.HasNSMState, err = tx.NSMState(); err != nil {
			return err
		}
		out.Cld, err = tx.cldContents()
		return err
	})
	return out, err
}

// cldContents reads nfsdcld's state, or nil when there is none.
func (tx *Tx) cldContents() (*CldContents, error) {
	e, ok, err := tx.CldEpochs()
	if err != nil || !ok {
		return nil, err
	}
	c := &CldContents{Epochs: e, Records: map[uint64][]CldRecord{}}
	for _, n := range tx.CldEpochNumbers() {
		c.Records[n] = []CldRecord{}
		if err := tx.ForEachCldRecord(n, func(r CldRecord) error {
			c.Records[n] = append(c.Records[n], r)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
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
		for _, b := range [][]byte{bucketMeta, bucketClients, bucketHashes, bucketStable, bucketMonitors, bucketNotify, bucketCld, bucketCldEpochs} {
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
		problems = append(problems, tx.checkCld()...)
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	return problems
}

// checkCld verifies nfsdcld's state: the grace table decodes, its epochs
// exist, and every record decodes.
func (tx *Tx) checkCld() []error {
	e, ok, err := tx.CldEpochs()
	if err != nil {
		return []error{err}
	}
	var problems []error
	if ok {
		for _, n := range []uint64{e.Current, e.Recovery} {
			if _, err := tx.epoch(n); n != 0 && err != nil {
				problems = append(problems, err)
			}
		}
	}
	for _, n := range tx.CldEpochNumbers() {
		if err := tx.ForEachCldRecord(n, func(CldRecord) error { return nil }); err != nil {
			problems = append(problems, err)
		}
	}
	return problems
}
