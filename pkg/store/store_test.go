package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

func open(t testing.TB, path string, opts *Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrationsTableMatchesVersion(t *testing.T) {
	if len(migrations) != int(SchemaVersion) {
		t.Fatalf("%d migrations for schema %d", len(migrations), SchemaVersion)
	}
}

func TestOpenCreatesDirAndSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "x.db")
	db := open(t, path, nil)
	if db.Schema() != SchemaVersion {
		t.Errorf("schema %d", db.Schema())
	}
	db.Close()
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", st.Mode(), err)
	}
	if fst, _ := os.Stat(path); fst.Mode().Perm() != 0o600 {
		t.Errorf("db mode %v", fst.Mode())
	}
	// Only the last component is created, as nfsdcltrack does.
	_, err = Open(filepath.Join(dir, "a", "b", "x.db"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing grandparent: %v", err)
	}
}

func TestSchemaTooNewAndNotADatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucket(bucketMeta)
		var raw [4]byte
		binary.BigEndian.PutUint32(raw[:], SchemaVersion+1)
		return m.Put(keySchema, raw[:])
	})
	b.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("newer schema: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, make([]byte, 8192), 0o600)
	if _, err := Open(junk, nil); !errors.Is(err, ErrNotDatabase) {
		t.Errorf("junk file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "absent"), &Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v", err)
	}
}

func TestLockWaitAndTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	open(t, path, nil).Close()
	holder, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Open(path, &Options{Timeout: 150 * time.Millisecond})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("want lock timeout, got %v", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Errorf("gave up before the timeout")
	}
	// Released while we wait: Open succeeds.
	fd := int(holder.Fd())
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(50 * time.Millisecond)
		unix.Flock(fd, unix.LOCK_UN)
	}()
	db, err := Open(path, &Options{Timeout: 5 * time.Second})
	<-released
	if err != nil {
		t.Fatalf("open after release: %v", err)
	}
	db.Close()
}

func fill(t testing.TB, db *DB, n int, timeOf func(i int) int64) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		for i := 0; i < n; i++ {
			c := Client{ID: []byte(fmt.Sprintf("client-%06d", i)), Time: timeOf(i), HasSession: SessionYes}
			if err := tx.PutClient(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteClientsWhere(t *testing.T) {
	// Few deletions (in place) and most deletions (rebuild) must agree.
	for _, cut := range []int{100, 900, 1000, 0} {
		db := open(t, filepath.Join(t.TempDir(), "x.db"), nil)
		fill(t, db, 1000, func(i int) int64 { return int64(i) })
		var n int
		err := db.Update(func(tx *Tx) (err error) {
			n, err = tx.DeleteClientsWhere(func(c Client) bool { return c.Time < int64(cut) })
			return err
		})
		if err != nil || n != cut {
			t.Fatalf("cut %d: deleted %d, %v", cut, n, err)
		}
		c, err := db.Dump()
		if err != nil || len(c.Clients) != 1000-cut {
			t.Fatalf("cut %d: %d left, %v", cut, len(c.Clients), err)
		}
		for i, cl := range c.Clients {
			if want := fmt.Sprintf("client-%06d", cut+i); string(cl.ID) != want || cl.Time != int64(cut+i) {
				t.Fatalf("cut %d: survivor %d is %q/%d", cut, i, cl.ID, cl.Time)
			}
		}
		if p := db.Check(); len(p) != 0 {
			t.Fatalf("check after delete: %v", p)
		}
		db.Close()
	}
}

func TestCheckFindsCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db := open(t, path, nil)
	fill(t, db, 3, func(int) int64 { return 1 })
	db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClients).Put([]byte("ibad"), []byte{1, 2, 3})
	})
	problems := db.Check()
	if len(problems) != 1 || !errors.Is(problems[0], ErrCorrupt) {
		t.Fatalf("problems %v", problems)
	}
	if _, err := db.Dump(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("dump of corrupt record: %v", err)
	}
	db.Close()
}

func TestHashNames(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "x.db"), nil)
	defer db.Close()
	err := db.Update(func(tx *Tx) error { return tx.PutHash("0123456789ABCDEF0123456789abcdef") })
	if err == nil {
		t.Errorf("uppercase hash accepted")
	}
	err = db.Update(func(tx *Tx) error { return tx.PutHash("900150983cd24fb0d6963f7d28e17f72") })
	if err != nil {
		t.Fatal(err)
	}
	c, _ := db.Dump()
	if len(c.Hashes) != 1 {
		t.Errorf("hashes %v", c.Hashes)
	}
}

func FuzzDecodeClient(f *testing.F) {
	f.Add([]byte("iabc"), []byte{0, 0, 0, 0, 0, 0, 0, 1, 2, 0})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		c, err := decodeClient(k, v)
		if err != nil {
			return
		}
		back := encodeClient(c)
		if string(clientKey(c.ID)) != string(k) || string(back[:9]) != string(v[:9]) {
			t.Fatalf("round trip %x/%x -> %+v", k, v, c)
		}
	})
}

// FuzzDecodeMonitor: a monitor record decodes only when its key and value
// are exactly what encoding the result gives.
func FuzzDecodeMonitor(f *testing.F) {
	m := Monitor{MonName: "client", DNSName: "client.example", MyName: "srv", Prog: 100021, Vers: 3, Proc: 16, Created: 1700000000}
	copy(m.Priv[:], "0123456789abcdef")
	f.Add(monitorKey(m), encodeMonitor(m))
	f.Add([]byte{0, 0, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		m, err := decodeMonitor(k, v)
		if err != nil {
			return
		}
		if !bytes.Equal(monitorKey(m), k) || !bytes.Equal(encodeMonitor(m), v) {
			t.Fatalf("round trip %x/%x -> %+v", k, v, m)
		}
	})
}

// FuzzDecodeStable: a stored stable restart file decodes only when its
// value is exactly what encoding the result gives.
func FuzzDecodeStable(f *testing.F) {
	f.Add([]byte("/var/db/nfs-stablerestart"), encodeStable(StableFile{Arch: "amd64", Imported: 1700000000, Data: []byte{1, 2, 3}}))
	f.Add([]byte("k"), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 200})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		s, err := decodeStable(k, v)
		if err != nil {
			return
		}
		if s.Key != string(k) || !bytes.Equal(encodeStable(s), v) {
			t.Fatalf("round trip %x -> %+v", v, s)
		}
	})
}

func BenchmarkGracedone100k(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("%d.db", i))
		db := open(b, path, nil)
		fill(b, db, 100_000, func(int) int64 { return 1 })
		b.StartTimer()
		err := db.Update(func(tx *Tx) error {
			_, err := tx.DeleteClientsWhere(func(c Client) bool { return c.Time < 2 })
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

func BenchmarkOpenLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "x.db")
	db := open(b, path, nil)
	fill(b, db, 10_000, func(int) int64 { return 1 })
	db.Close()
	for i := 0; i < b.N; i++ {
		db := open(b, path, nil)
		err := db.View(func(tx *Tx) error {
			_, ok, err := tx.Client([]byte("client-005000"))
			if !ok {
				return errors.New("missing")
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// TestMigrateV1ToV2 builds a schema 1 file by hand and opens it: the
// migration adds the stable restart bucket and keeps the client records.
func TestMigrateV1ToV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if err := createV1(tx); err != nil {
			return err
		}
		var raw [4]byte
		binary.BigEndian.PutUint32(raw[:], 1)
		if err := tx.Bucket(bucketMeta).Put(keySchema, raw[:]); err != nil {
			return err
		}
		return tx.Bucket(bucketClients).Put(clientKey([]byte("kept")), encodeClient(Client{Time: 9}))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil || ro.Schema() != 1 {
		t.Fatalf("read-only open must not migrate: %v %d", err, ro.Schema())
	}
	if c, err := ro.Dump(); err != nil || len(c.Clients) != 1 {
		t.Fatalf("read-only dump of v1: %v", err)
	}
	ro.Close()
	db := open(t, path, nil)
	defer db.Close()
	if db.Schema() != SchemaVersion {
		t.Fatalf("schema %d after open", db.Schema())
	}
	err = db.Update(func(tx *Tx) error {
		return tx.PutStableFile(StableFile{Key: "/var/db/nfs-stablerestart", Arch: "amd64", Imported: 5, Data: []byte{1, 2, 3}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Dump()
	if err != nil || len(c.Clients) != 1 || len(c.Stable) != 1 || string(c.Stable[0].Data) != "\x01\x02\x03" || c.Stable[0].Arch != "amd64" {
		t.Fatalf("after migration: %+v %v", c, err)
	}
	if p := db.Check(); len(p) != 0 {
		t.Errorf("check: %v", p)
	}
}

func TestMonitorRecords(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "x.db"), nil)
	defer db.Close()
	m := Monitor{MonName: "192.168.1.2", DNSName: "client.example", MyName: "server", Prog: 100021, Vers: 3, Proc: 16, Created: 7}
	copy(m.Priv[:], "0123456789abcdef")
	other := m
	other.MyName = "server2"
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutMonitor(m); err != nil {
			return err
		}
		return tx.PutMonitor(other)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Dump()
	if err != nil || len(c.Monitors) != 2 || c.Monitors[0] != m {
		t.Fatalf("dump: %+v %v", c.Monitors, err)
	}
	db.Update(func(tx *Tx) error { return tx.DeleteMonitor(m) })
	if c, _ := db.Dump(); len(c.Monitors) != 1 || c.Monitors[0].MyName != "server2" {
		t.Fatalf("after delete: %+v", c.Monitors)
	}
	bad := m
	bad.MonName = "a\x00b"
	if err := db.Update(func(tx *Tx) error { return tx.PutMonitor(bad) }); err == nil {
		t.Errorf("NUL in a name accepted")
	}
}
