package oncrpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ErrNoReply means one transmission got no reply within its timeout.
var ErrNoReply = errors.New("oncrpc: no reply")

// UDPCaller makes many concurrent calls over one UDP socket. A single
// reader hands each reply to the call waiting for its XID, so replies are
// never lost to a busy socket (the real sm-notify's weakness); callers
// decide on retransmission. Run must be running.
type UDPCaller struct {
	Conn *net.UDPConn
	// From, when valid, is the only source accepted for replies.
	From netip.Addr

	mu      sync.Mutex
	waiting map[uint32]chan []byte
}

// NewUDPCaller returns a caller on conn with a large receive buffer.
func NewUDPCaller(conn *net.UDPConn) *UDPCaller {
	conn.SetReadBuffer(4 << 20)
	return &UDPCaller{Conn: conn, waiting: map[uint32]chan []byte{}}
}

// Run reads replies until ctx ends.
func (u *UDPCaller) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { u.Conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, from, err := u.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if n < 4 || u.From.IsValid() && from.Addr().Unmap() != u.From {
			continue
		}
		xid := binary.BigEndian.Uint32(buf)
		u.mu.Lock()
		ch := u.waiting[xid]
		delete(u.waiting, xid)
		u.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), buf[:n]...)
		}
	}
}

// Call sends one call to to and waits up to timeout for an accepted,
// successful reply, returning its results. It does not retransmit.
func (u *UDPCaller) Call(ctx context.Context, to netip.AddrPort, prog, vers, proc uint32, args []byte, timeout time.Duration) ([]byte, error) {
	xid := NewXID()
	ch := make(chan []byte, 1)
	u.mu.Lock()
	u.waiting[xid] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.waiting, xid)
		u.mu.Unlock()
	}()
	msg := AppendCall(nil, xid, prog, vers, proc, Auth{}, args)
	if _, err := u.Conn.WriteToUDPAddrPort(msg, to); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rec := <-ch:
		return checkReply(rec, xid)
	case <-t.C:
		return nil, fmt.Errorf("%w from %s in %v", ErrNoReply, to, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
