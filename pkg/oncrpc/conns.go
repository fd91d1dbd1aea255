package oncrpc

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// connTable holds a server's open TCP connections in least-recently-used
// order, so that a full table makes room by closing a connection that has
// been quiet longest, as libtirpc does, rather than refusing the
// newcomer: clients that hold connections open without talking can never
// lock out one that talks. The connection closed is the least recently
// used one of the host that holds the most connections, so a host that
// floods the table only ever pushes out its own connections. A connection
// whose call is being dispatched is never closed (its reply is owed), and
// connections from 127.0.0.1 or ::1, which are the local lock manager's,
// are accepted even over the limit and are closed only when no remote
// connection is left to close.
type connTable struct {
	max   int
	mu    sync.Mutex
	order *list.List // of *tracked; front = least recently used
	bySrc map[netip.Addr]int
}

// tracked is one connection in the table.
type tracked struct {
	c     net.Conn
	src   netip.Addr
	local bool
	busy  int // calls being dispatched
	elem  *list.Element
}

func newConnTable(max int) *connTable {
	return &connTable{max: max, order: list.New(), bySrc: map[netip.Addr]int{}}
}

// source returns the host a connection comes from.
func source(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isLocal reports whether a is where the local lock manager calls from:
// exactly 127.0.0.1 or ::1 (other 127/8 addresses can be a network
// namespace's or a container's peers).
func isLocal(a net.Addr) bool {
	ip := source(a)
	return ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || ip == netip.IPv6Loopback()
}

// add admits c, closing the least recently used idle connection if the
// table is full. It returns nil when c must be refused: the table is full
// of connections in the middle of a call, and c is not local.
func (t *connTable) add(c net.Conn) *tracked {
	e := &tracked{c: c, src: source(c.RemoteAddr()), local: isLocal(c.RemoteAddr())}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.order.Len() >= t.max {
		victim := t.victim()
		switch {
		case victim != nil:
			t.drop(victim)
			victim.c.Close()
		case !e.local:
			return nil
		}
	}
	e.elem = t.order.PushBack(e)
	t.bySrc[e.src]++
	return e
}

// victim returns the connection to close for a newcomer: the least
// recently used idle remote connection of the host holding the most
// connections, else the least recently used idle local one; nil when
// every connection is busy. The caller holds t.mu.
func (t *connTable) victim() *tracked {
	var remote, local *tracked
	for el := t.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*tracked)
		switch {
		case e.busy > 0:
		case e.local:
			if local == nil {
				local = e
			}
		case remote == nil || t.bySrc[e.src] > t.bySrc[remote.src]:
			remote = e
		}
	}
	if remote != nil {
		return remote
	}
	return local
}

// drop takes e out of the table. The caller holds t.mu.
func (t *connTable) drop(e *tracked) {
	t.order.Remove(e.elem)
	e.elem = nil
	if t.bySrc[e.src]--; t.bySrc[e.src] == 0 {
		delete(t.bySrc, e.src)
	}
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
		t.drop(e)
	}
}

// len returns the number of connections in the table.
func (t *connTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}
