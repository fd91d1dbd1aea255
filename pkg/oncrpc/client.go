package oncrpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// ErrRejected wraps every reply that is not an accepted success.
var ErrRejected = errors.New("oncrpc: call not accepted")

// NewXID returns a random transaction id. math/rand/v2's generator is
// ChaCha8 seeded by the runtime from the OS, so an off-path host cannot
// predict it to spoof a reply, and crypto/rand (with its math/big and
// 32 MiB DRBG arena) stays out of the binary.
func NewXID() uint32 { return rand.Uint32() }

// Call sends one call with AUTH_NONE and returns the results of its
// accepted, successful reply. network is "udp", "udp4", "udp6", "tcp",
// "tcp4", "tcp6" or "unix". Over UDP the call is retransmitted every
// second until ctx ends; ctx must carry a deadline or be cancelled.
func Call(ctx context.Context, network, address string, prog, vers, proc uint32, args []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	xid := NewXID()
	msg := AppendCall(nil, xid, prog, vers, proc, Auth{}, args)
	var rec []byte
	if _, ok := c.(*net.UDPConn); ok {
		rec, err = udpExchange(ctx, c, msg, xid)
	} else {
		rec, err = streamExchange(c, msg)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("oncrpc: call %d/%d/%d to %s %s: %w", prog, vers, proc, network, address, err)
	}
	return checkReply(rec, xid)
}

func udpExchange(ctx context.Context, c net.Conn, msg []byte, xid uint32) ([]byte, error) {
	buf := make([]byte, 65536)
	for {
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		next := time.Now().Add(time.Second)
		for {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.SetReadDeadline(next)
			n, err := c.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break // retransmit
			}
			if err != nil {
				return nil, err
			}
			if n >= 4 && binary.BigEndian.Uint32(buf) == xid {
				return append([]byte(nil), buf[:n]...), nil
			}
		}
	}
}

func streamExchange(c net.Conn, msg []byte) ([]byte, error) {
	if _, err := c.Write(AppendRecordMark(nil, msg)); err != nil {
		return nil, err
	}
	return ReadRecord(c, 1<<20)
}

func checkReply(rec []byte, xid uint32) ([]byte, error) {
	h, err := DecodeReply(rec)
	switch {
	case err != nil:
		return nil, err
	case h.XID != xid:
		return nil, fmt.Errorf("%w: reply xid %#x for call %#x", ErrReply, h.XID, xid)
	case !h.Accepted:
		return nil, fmt.Errorf("%w: denied (reject_stat %d, auth_stat %d)", ErrRejected, h.RejectStat, h.AuthStat)
	case h.AcceptStat != Success:
		return nil, fmt.Errorf("%w: accept_stat %d", ErrRejected, h.AcceptStat)
	}
	return h.Results, nil
}
