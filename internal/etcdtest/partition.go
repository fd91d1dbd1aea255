package etcdtest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// partition is the peer network: one proxy in front of each member's peer
// port. It knows which member opened each connection from the
// X-Server-From header etcd puts on every peer request, so cutting a
// member off closes, and keeps refusing, every connection it opens or
// receives: a real partition of that member, in both directions. (etcd's
// own test proxy blackholes one listener; the member's own connections to
// the others then still carry its messages.)
type partition struct {
	mu    sync.Mutex
	cut   map[int]bool
	ids   map[string]int // member id (hex, as etcd prints it) -> index
	conns map[*link]struct{}
}

// link is one proxied connection between two members.
type link struct {
	from, to       int // member indexes; from is -1 when unknown
	client, server net.Conn
}

func newPartition() *partition {
	return &partition{cut: map[int]bool{}, ids: map[string]int{}, conns: map[*link]struct{}{}}
}

// serve proxies connections arriving at ln to member to's peer address.
func (p *partition) serve(ln net.Listener, to int, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c, to, addr)
	}
}

func (p *partition) handle(c net.Conn, to int, addr string) {
	br := bufio.NewReaderSize(c, 16<<10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(br)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	l := &link{from: -1, to: to, client: c}
	p.mu.Lock()
	if i, ok := p.ids[req.Header.Get("X-Server-From")]; ok {
		l.from = i
	}
	blocked := p.cut[l.to] || (l.from >= 0 && p.cut[l.from])
	p.mu.Unlock()
	if blocked {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", addr)
	if err != nil {
		c.Close()
		return
	}
	l.server = s
	p.mu.Lock()
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	defer p.drop(l)
	if err := req.Write(s); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, br); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
}

func (p *partition) drop(l *link) {
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// setCut cuts member i off (or heals it) and closes its open links.
func (p *partition) setCut(i int, cut bool) {
	p.mu.Lock()
	p.cut[i] = cut
	var doomed []*link
	for l := range p.conns {
		if cut { // all: links opened before the ids were known are re-tagged
			doomed = append(doomed, l)
		}
	}
	p.mu.Unlock()
	for _, l := range doomed {
		p.drop(l)
	}
}

func (p *partition) learn(id string, i int) {
	p.mu.Lock()
	p.ids[id] = i
	p.mu.Unlock()
}
