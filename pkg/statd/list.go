package statd

import (
	"strings"
	"sync"

	"nfsrecover/pkg/store"
)

// Entry is a monitor record in memory, with the peer's last state seen in
// an SM_NOTIFY (0 at load, never persisted, as in nfs-utils).
type Entry struct {
	store.Monitor
	LastState int32
	lastSeq   uint64 // arrival order of the SM_NOTIFY that set LastState
}

// List is the in-memory monitor list, indexed by lower-cased mon_name and
// DNS name so that lookups stay constant-time as it grows.
type List struct {
	mu     sync.Mutex
	byName map[string][]*Entry // key: lower(MonName) and lower(DNSName)
	n      int
}

// NewList returns an empty list.
func NewList() *List { return &List{byName: map[string][]*Entry{}} }

func keysOf(m store.Monitor) []string {
	a, b := strings.ToLower(m.MonName), strings.ToLower(m.DNSName)
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// Len returns the number of entries.
func (l *List) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// add inserts e; the caller holds mu.
func (l *List) add(e *Entry) {
	for _, k := range keysOf(e.Monitor) {
		l.byName[k] = append(l.byName[k], e)
	}
	l.n++
}

// remove deletes e; the caller holds mu.
func (l *List) remove(e *Entry) {
	for _, k := range keysOf(e.Monitor) {
		es := l.byName[k]
		for i, x := range es {
			if x == e {
				es = append(es[:i:i], es[i+1:]...)
				break
			}
		}
		if len(es) == 0 {
			delete(l.byName, k)
		} else {
			l.byName[k] = es
		}
	}
	l.n--
}

// candidates returns the entries whose mon_name or DNS name equals name
// (case-insensitively); the caller holds mu.
func (l *List) candidates(name string) []*Entry {
	return l.byName[strings.ToLower(name)]
}

// Load replaces the list with the records of the database.
func (l *List) Load(ms []store.Monitor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byName, l.n = map[string][]*Entry{}, 0
	for _, m := range ms {
		l.add(&Entry{Monitor: m})
	}
}

// Snapshot returns copies of all entries (for tests and dumps).
func (l *List) Snapshot() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[*Entry]bool{}
	var out []Entry
	for _, es := range l.byName {
		for _, e := range es {
			if !seen[e] {
				seen[e] = true
				out = append(out, *e)
			}
		}
	}
	return out
}
