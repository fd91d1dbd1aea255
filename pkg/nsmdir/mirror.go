package nsmdir

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/store"
)

// Mirror keeps a state directory's nfs-utils files (sm/, sm.bak/, state)
// in step with the database while statd or sm-notify runs. HA agents copy,
// edit and delete those files, so they are a live interface: every change
// reaches them, durably, before it is acknowledged. The zero Dir means no
// mirror.
//
// The rule when files and database disagree is Reconcile's: at start, a
// directory holding any NSM file of its own is the record.
type Mirror struct {
	Dir string
	mu  sync.Mutex // one change at a time: record files are rewritten whole

	// Removals from sm.bak/ that wait for the next batch (Notified).
	bmu      sync.Mutex
	pending  []removal
	flushing bool
}

type removal struct {
	rec  store.Monitor
	done chan error
}

func (m *Mirror) do(f func() error) error {
	if m == nil || m.Dir == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return f()
}

// Monitor records rec in sm/ (SM_MON).
func (m *Mirror) Monitor(rec store.Monitor) error {
	return m.do(func() error { return smdir.AddRecord(m.Dir, "sm", rec) })
}

// Unmonitor removes rec from sm/ (SM_UNMON, SM_UNMON_ALL).
func (m *Mirror) Unmonitor(rec store.Monitor) error {
	return m.do(func() error { return smdir.RemoveRecord(m.Dir, "sm", rec) })
}

// Notified removes rec from sm.bak/ once its peer answered (sm-notify),
// and returns once that is durable. Concurrent calls share batches: the
// caller that finds no batch running writes every removal queued until
// the queue is empty, each file rewritten once and the directory synced
// once per batch.
func (m *Mirror) Notified(rec store.Monitor) error {
	if m == nil || m.Dir == "" {
		return nil
	}
	r := removal{rec, make(chan error, 1)}
	m.bmu.Lock()
	m.pending = append(m.pending, r)
	if m.flushing {
		m.bmu.Unlock()
		return <-r.done
	}
	m.flushing = true
	for len(m.pending) > 0 {
		batch := m.pending
		m.pending = nil
		m.bmu.Unlock()
		recs := make([]store.Monitor, len(batch))
		for i, b := range batch {
			recs[i] = b.rec
		}
		err := m.do(func() error { return smdir.RemoveRecords(m.Dir, "sm.bak", recs) })
		for _, b := range batch {
			b.done <- err
		}
		m.bmu.Lock()
	}
	m.flushing = false
	m.bmu.Unlock()
	return <-r.done
}

// Retire moves sm/ into sm.bak/ (sm-notify, before it sends anything).
func (m *Mirror) Retire() error { return m.do(func() error { return smdir.Retire(m.Dir) }) }

// SetState writes the state file.
func (m *Mirror) SetState(s int32) error {
	return m.do(func() error { return smdir.WriteState(m.Dir, s) })
}

// Reconcile brings the database and the directory in step at start:
//
//   - a directory holding any NSM file of its own (a record file in sm/ or
//     sm.bak/, even empty, or a state file) is the record: the database's
//     monitor list, notify list and state become the files' (an agent may
//     have copied, edited or deleted them while we were stopped, or written
//     a random state, as Pacemaker's nfsserver does);
//   - an empty directory takes the database's lists and state, written out
//     as files (the first start over a database that predates the mirror).
//
// What cannot be read from the files is logged and skipped, as nfs-utils
// does ("Failed to read monitor data").
func Reconcile(db *store.DB, dir string, log *slog.Logger) error {
	if smdir.HasAny(dir) {
		d := smdir.ReadLive(dir)
		for _, s := range d.Skipped {
			log.Warn("Failed to read monitor data", "what", s)
		}
		if same, err := agrees(db, d); err != nil || same {
			return err // a restart: nothing to write
		}
		if err := db.Update(func(tx *store.Tx) error { return replaceLists(tx, d) }); err != nil {
			return fmt.Errorf("nsmdir: adopt %s: %w", dir, err)
		}
		return nil
	}
	c, err := db.Dump()
	if err != nil {
		return fmt.Errorf("nsmdir: %w", err)
	}
	var state int32
	var ok bool
	if err := db.View(func(tx *store.Tx) (err error) { state, ok, err = tx.NSMState(); return err }); err != nil {
		return fmt.Errorf("nsmdir: %w", err)
	}
	for _, l := range []struct {
		sub string
		ms  []store.Monitor
	}{{"sm", c.Monitors}, {"sm.bak", c.Notify}} {
		for _, r := range l.ms {
			if err := smdir.AddRecord(dir, l.sub, r); err != nil {
				return fmt.Errorf("nsmdir: write out %s: %w", dir, err)
			}
		}
	}
	if ok {
		if err := smdir.WriteState(dir, state); err != nil {
			return fmt.Errorf("nsmdir: write out %s: %w", dir, err)
		}
	}
	return nil
}

// agrees reports whether the database already holds d's lists and state.
func agrees(db *store.DB, d smdir.Dir) (bool, error) {
	c, err := db.Dump()
	if err != nil {
		return false, fmt.Errorf("nsmdir: %w", err)
	}
	var state int32
	var ok bool
	if err := db.View(func(tx *store.Tx) (err error) { state, ok, err = tx.NSMState(); return err }); err != nil {
		return false, fmt.Errorf("nsmdir: %w", err)
	}
	return sameRecords(c.Monitors, d.Monitors) && sameRecords(c.Notify, d.Notify) &&
		(!d.HasState || ok && state == d.State), nil
}

// sameRecords compares two lists as the files hold them: names, callback
// and cookie, in any order.
func sameRecords(a, b []store.Monitor) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]int, len(a))
	for _, m := range a {
		seen[m.DNSName+"/"+smdir.FormatLine(m)]++
	}
	for _, m := range b {
		k := m.DNSName + "/" + smdir.FormatLine(m)
		if seen[k] == 0 {
			return false
		}
		seen[k]--
	}
	return true
}

// replaceLists makes the database's lists and state those of d.
func replaceLists(tx *store.Tx, d smdir.Dir) error {
	if err := tx.ClearMonitorLists(); err != nil {
		return err
	}
	if err := tx.PutMonitorLists(d.Monitors, d.Notify); err != nil {
		return err
	}
	if d.HasState {
		return tx.PutNSMState(d.State)
	}
	return nil
}

// Differences lists how the database's contents and the state directory's
// files disagree, one line each (empty when they are in step): records
// only in one of them, per list, and the state number.
func Differences(c store.Contents, d smdir.Dir) []string {
	var out []string
	for _, l := range []struct {
		name      string
		db, files []store.Monitor
	}{{"sm/", c.Monitors, d.Monitors}, {"sm.bak/", c.Notify, d.Notify}} {
		count := map[string]int{}
		for _, m := range l.db {
			count[m.DNSName]++
		}
		for _, m := range l.files {
			count[m.DNSName]--
		}
		for name, n := range count {
			switch {
			case n > 0:
				out = append(out, fmt.Sprintf("%s: %q is in the database only", l.name, name))
			case n < 0:
				out = append(out, fmt.Sprintf("%s: %q is in the files only", l.name, name))
			}
		}
		if len(out) == 0 && !sameRecords(l.db, l.files) {
			out = append(out, fmt.Sprintf("%s: records differ in their names, callback or cookie", l.name))
		}
	}
	if d.HasState && (!c.HasNSMState || c.NSMState != d.State) {
		out = append(out, fmt.Sprintf("state: file says %d, database %s", d.State, stateText(c)))
	}
	slices.Sort(out)
	return out
}

func stateText(c store.Contents) string {
	if !c.HasNSMState {
		return "has none"
	}
	return fmt.Sprint(c.NSMState)
}
