package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Monitor is one statd monitor record: the lock manager (my_name and its
// callback program/version/procedure) asked to be told when MonName
// reboots, and gave Priv to hand back. DNSName is the canonical name the
// legacy sm/ file is named after. The peer's last known state is not
// stored: nfs-utils starts it at 0 on every load.
type Monitor struct {
	MonName, DNSName, MyName string
	Prog, Vers, Proc         uint32
	Priv                     [16]byte
	Created                  int64 // epoch seconds
}

// Key layout: dns \0 mon \0 my \0 prog vers proc (BE u32). Names never
// contain NUL (statd refuses them), so the key is unambiguous.
func monitorKey(m Monitor) []byte {
	k := make([]byte, 0, len(m.DNSName)+len(m.MonName)+len(m.MyName)+15)
	k = append(append(k, m.DNSName...), 0)
	k = append(append(k, m.MonName...), 0)
	k = append(append(k, m.MyName...), 0)
	k = binary.BigEndian.AppendUint32(k, m.Prog)
	k = binary.BigEndian.AppendUint32(k, m.Vers)
	return binary.BigEndian.AppendUint32(k, m.Proc)
}

// Value layout: version u8 (1) | priv [16] | created i64 BE.
func encodeMonitor(m Monitor) []byte {
	v := append([]byte{1}, m.Priv[:]...)
	return binary.BigEndian.AppendUint64(v, uint64(m.Created))
}

func decodeMonitor(k, v []byte) (Monitor, error) {
	var m Monitor
	parts := bytes.SplitN(k, []byte{0}, 4)
	if len(parts) != 4 || len(parts[3]) != 12 || len(v) != 25 || v[0] != 1 {
		return m, fmt.Errorf("monitor record %q: %w", k, ErrCorrupt)
	}
	m.DNSName, m.MonName, m.MyName = string(parts[0]), string(parts[1]), string(parts[2])
	m.Prog = binary.BigEndian.Uint32(parts[3])
	m.Vers = binary.BigEndian.Uint32(parts[3][4:])
	m.Proc = binary.BigEndian.Uint32(parts[3][8:])
	copy(m.Priv[:], v[1:17])
	m.Created = int64(binary.BigEndian.Uint64(v[17:]))
	return m, nil
}

// PutMonitor inserts or replaces (same names and callback) a record.
func (tx *Tx) PutMonitor(m Monitor) error { return tx.putIn(bucketMonitors, m) }

// DeleteMonitor removes the record with m's names and callback.
func (tx *Tx) DeleteMonitor(m Monitor) error {
	return tx.tx.Bucket(bucketMonitors).Delete(monitorKey(m))
}

// ForEachMonitor calls fn for every record, ordered by DNS name.
func (tx *Tx) ForEachMonitor(fn func(Monitor) error) error { return tx.eachIn(bucketMonitors, fn) }

// PutNotify adds a record to the notify list (peers to tell of our last
// reboot; the legacy sm.bak/).
func (tx *Tx) PutNotify(m Monitor) error { return tx.putIn(bucketNotify, m) }

// DeleteNotify removes a record from the notify list.
func (tx *Tx) DeleteNotify(m Monitor) error { return tx.tx.Bucket(bucketNotify).Delete(monitorKey(m)) }

// ForEachNotify calls fn for every notify-list record.
func (tx *Tx) ForEachNotify(fn func(Monitor) error) error { return tx.eachIn(bucketNotify, fn) }

// ClearMonitorLists empties both the monitor and the notify list.
func (tx *Tx) ClearMonitorLists() error {
	for _, b := range [][]byte{bucketMonitors, bucketNotify} {
		if err := tx.tx.DeleteBucket(b); err != nil {
			return err
		}
		if _, err := tx.tx.CreateBucket(b); err != nil {
			return err
		}
	}
	return nil
}

// PutMonitorLists adds monitors to the monitor list and notify to the
// notify list.
func (tx *Tx) PutMonitorLists(monitors, notify []Monitor) error {
	for _, l := range []struct {
		bucket []byte
		ms     []Monitor
	}{{bucketMonitors, monitors}, {bucketNotify, notify}} {
		for _, m := range l.ms {
			if err := tx.putIn(l.bucket, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tx *Tx) putIn(bucket []byte, m Monitor) error {
	if bytes.IndexByte([]byte(m.DNSName+m.MonName+m.MyName), 0) >= 0 {
		return fmt.Errorf("monitor %q: names must not contain NUL", m.MonName)
	}
	return tx.tx.Bucket(bucket).Put(monitorKey(m), encodeMonitor(m))
}

func (tx *Tx) eachIn(bucket []byte, fn func(Monitor) error) error {
	return tx.tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		m, err := decodeMonitor(k, v)
		if err != nil {
			return err
		}
		return fn(m)
	})
}
