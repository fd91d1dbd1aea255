package oncrpc

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// connTable holds a server's open TCP connections in least-recently-used
// order, so that a full table makes room by closing the connection that
// has been quiet longest, as libtirpc does, rather than refusing the
// newcomer: clients that hold connections open without talking can never
// lock out one that talks. A connection whose call is being dispatched is
// never closed (its reply is owed), and connections from 127.0.0.1 or ::1,
// which are the local lock manager's, are accepted even over the limit and are
// closed only when no remote connection is left to close.
type connTable struct {
	max   int
	mu    sync.Mutex
	order *list.List // of *tracked; front = least recently used
}

// tracked is one connection in the table.
type tracked struct {
	c     net.Conn
	local bool
	busy  int // calls being dispatched
	elem  *list.Element
}

func newConnTable(max int) *connTable { return &connTable{max: max, order: list.New()} }

// isLocal reports whether a is where the local lock manager calls from:
// exactly 127.0.0.1 or ::1 (other 127/8 addresses can be a network
// namespace's or a container's peers).
func isLocal(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	return ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || ip == netip.IPv6Loopback()
}

// add admits c, closing the least recently used idle connection if the
// table is full. It returns nil when c must be refused: the table is full
// of connections in the middle of a call, and c is not local.
func (t *connTable) add(c net.Conn) *tracked {
	e := &tracked{c: c, local: isLocal(c.RemoteAddr())}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.order.Len() >= t.max {
		victim := t.victim()
		switch {
		case victim != nil:
			t.order.Remove(victim.elem)
			victim.elem = nil
			victim.c.Close()
		case !e.local:
			return nil
		}
	}
	e.elem = t.order.PushBack(e)
	return e
}

// victim returns the least recently used idle connection, remote ones
// first; nil when every connection is busy. The caller holds t.mu.
func (t *connTable) victim() *tracked {
	var local *tracked
	for el := t.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*tracked)
		switch {
		case e.busy > 0:
		case !e.local:
			return e
		case local == nil:
			local = e
		}
	}
	return local
}

// begin marks a call on e as started: e becomes the most recently used
// and cannot be closed to make room until end.
func (t *connTable) begin(e *tracked) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.busy++
	if e.elem != nil {
		t.order.MoveToBack(e.elem)
	}
}

// end marks a call on e as answered.
func (t *connTable) end(e *tracked) {
	t.mu.Lock()
	e.busy--
	t.mu.Unlock()
}

// remove takes e out of the table (it may have been evicted already).
func (t *connTable) remove(e *tracked) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.elem != nil {
		t.order.Remove(e.elem)
		e.elem = nil
	}
}

// len returns the number of connections in the table.
func (t *connTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}
