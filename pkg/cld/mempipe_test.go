package cld

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
)

// memPipe is an in-memory pipe with rpc_pipefs's reader semantics: reads
// return part of the current upcall, 0 bytes when nothing is queued; a
// write is one downcall; once removed, every call fails.
type memPipe struct {
	mu       sync.Mutex
	queue    [][]byte
	cur      []byte
	chunk    int // most bytes one read returns (0: no limit)
	gone     bool
	closed   bool
	notify   chan struct{}
	replies  chan []byte
	reads    int // reads that returned 0 bytes
	waits    int
	openedAt int           // sequence number of the open
	hold     chan struct{} // when set, Write waits until it is closed
}

func newMemPipe(chunk int) *memPipe {
	return &memPipe{chunk: chunk, notify: make(chan struct{}, 1), replies: make(chan []byte, 100000)}
}

func (p *memPipe) push(msg []byte) {
	p.mu.Lock()
	p.queue = append(p.queue, msg)
	p.mu.Unlock()
	p.kick()
}

func (p *memPipe) kick() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *memPipe) remove() {
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	p.kick()
}

func (p *memPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return 0, ErrPipeGone
	}
	if p.cur == nil {
		if len(p.queue) == 0 {
			p.reads++
			return 0, nil
		}
		p.cur, p.queue = p.queue[0], p.queue[1:]
	}
	n := len(b)
	if p.chunk > 0 {
		n = min(n, p.chunk)
	}
	n = copy(b[:n], p.cur)
	p.cur = p.cur[n:]
	if len(p.cur) == 0 {
		p.cur = nil
	}
	return n, nil
}

func (p *memPipe) Write(b []byte) (int, error) {
	if p.hold != nil {
		<-p.hold
	}
	p.mu.Lock()
	gone := p.gone
	p.mu.Unlock()
	if gone {
		return 0, ErrPipeGone
	}
	p.replies <- append([]byte(nil), b...)
	return len(b), nil
}

func (p *memPipe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

func (p *memPipe) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		p.waits++
		pending, gone := p.cur != nil || len(p.queue) > 0, p.gone
		p.mu.Unlock()
		switch {
		case gone:
			return ErrPipeGone
		case pending:
			return nil
		}
		select {
		case <-p.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// memOpener hands out the pipes a test provides, in order, blocking
// until the next one is given (the kernel creating the pipe again).
type memOpener struct {
	pipes  chan *memPipe
	mu     sync.Mutex
	events []string // "open N", as they happen
	opened int
}

func newMemOpener() *memOpener { return &memOpener{pipes: make(chan *memPipe, 8)} }

func (o *memOpener) Open(ctx context.Context) (Pipe, error) {
	select {
	case p := <-o.pipes:
		o.mu.Lock()
		o.opened++
		p.openedAt = o.opened
		o.events = append(o.events, fmt.Sprint("open ", o.opened))
		o.mu.Unlock()
		return &trackedPipe{memPipe: p, o: o}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// trackedPipe records its close in the opener's event list.
type trackedPipe struct {
	*memPipe
	o *memOpener
}

func (t *trackedPipe) Close() error {
	t.o.mu.Lock()
	t.o.events = append(t.o.events, fmt.Sprint("close ", t.openedAt))
	t.o.mu.Unlock()
	return t.memPipe.Close()
}

func (o *memOpener) log() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...)
}

// upcall encodes a message with the given xid.
func upcall(m Msg, xid uint32) []byte {
	m.XID = xid
	b, err := Encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

func statusOf(b []byte) int16 { return int16(binary.NativeEndian.Uint16(b[2:])) }
