package oncrpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one decoded call handed to a Handler.
type Request struct {
	CallHeader
	Addr      net.Addr
	Transport string // "udp" or "tcp"
	// Seq is the call's place in the order in which the server received
	// calls (over all transports), from 1. Calls are dispatched
	// concurrently, so a handler that must apply them in arrival order
	// (a peer's state updates) compares Seq.
	Seq uint64
}

// Handler serves the procedures of one program. It returns the
// accept_stat (Success, ProcUnavail, GarbageArgs, SystemErr) and, for
// Success, the encoded results. It may block (e.g. for a durable commit);
// each call runs in its own goroutine.
type Handler interface {
	Dispatch(ctx context.Context, r *Request) (stat uint32, results []byte)
}

// Server answers one RPC program over UDP and TCP. The zero values of the
// limits mean the defaults shown.
type Server struct {
	Handler          Handler
	Prog             uint32
	VersLow, VersHi  uint32
	MaxRecord        int           // TCP record cap; default DefaultMaxRecord
	MaxConns         int           // open TCP connections; default 64 (then the least recently used idle one is closed)
	MaxInflight      int           // concurrent UDP calls; default 256 (more are dropped)
	RecordTimeout    time.Duration // a whole TCP record must arrive within this; default 30s
	Log              *slog.Logger  // nil: discard
	AllowAuthFlavors []uint32      // default AUTH_NONE and AUTH_SYS
	seq              atomic.Uint64
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// reply builds the answer to one message, or nil to drop it silently
// (not a call, or too mangled to have a trustworthy XID).
func (s *Server) reply(ctx context.Context, msg []byte, addr net.Addr, transport string, seq uint64) []byte {
	h, err := DecodeCall(msg)
	switch {
	case errors.Is(err, ErrVersion):
		return AppendDenied(nil, h.XID, RPCMismatch, 0)
	case err != nil:
		s.log().Debug("dropped undecodable message", "from", addr.String(), "transport", transport, "err", err)
		return nil
	case !s.flavorOK(h.Cred.Flavor):
		return AppendDenied(nil, h.XID, AuthError, AuthBadCred)
	case h.Prog != s.Prog:
		return AppendAccepted(nil, h.XID, ProgUnavail, nil, 0, 0)
	case h.Vers < s.VersLow || h.Vers > s.VersHi:
		return AppendAccepted(nil, h.XID, ProgMismatch, nil, s.VersLow, s.VersHi)
	}
	stat, results := s.Handler.Dispatch(ctx, &Request{CallHeader: h, Addr: addr, Transport: transport, Seq: seq})
	return AppendAccepted(nil, h.XID, stat, results, 0, 0)
}

func (s *Server) flavorOK(f uint32) bool {
	allowed := s.AllowAuthFlavors
	if allowed == nil {
		allowed = []uint32{AuthNone, AuthSys}
	}
	for _, a := range allowed {
		if a == f {
			return true
		}
	}
	return false
}

// ServeUDP answers datagrams on pc until ctx ends or pc fails. Each call
// runs concurrently, at most MaxInflight at once; beyond that datagrams
// are dropped (UDP callers retransmit).
func (s *Server) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	if u, ok := pc.(*net.UDPConn); ok {
		u.SetReadBuffer(4 << 20) // a burst (or a flood) must not push out real calls
	}
	slots := make(chan struct{}, orDefault(s.MaxInflight, 256))
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, 65536)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			s.log().Warn("UDP call dropped: too many in flight", "from", addr.String())
			continue
		}
		msg := append([]byte(nil), buf[:n]...)
		seq := s.seq.Add(1) // in the order read
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if out := s.reply(ctx, msg, addr, "udp", seq); out != nil {
				pc.WriteTo(out, addr)
			}
		}()
	}
}

// ServeTCP accepts connections on l until ctx ends. Each connection reads
// one record at a time (bounded memory), answers it, and is closed on a
// record over MaxRecord or a record not complete within RecordTimeout.
// With MaxConns connections open, a new one closes the least recently
// used idle connection (see connTable): quiet clients cannot lock out a
// client that talks, and the local lock manager (127.0.0.1, ::1) always
// gets in.
func (s *Server) ServeTCP(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	table := newConnTable(orDefault(s.MaxConns, 64))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		e := table.add(c)
		if e == nil {
			s.log().Warn("TCP connection refused: every connection is in a call", "from", c.RemoteAddr().String())
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer table.remove(e)
			s.serveConn(ctx, table, e)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, table *connTable, e *tracked) {
	c := e.c
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	timeout := s.RecordTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for {
		c.SetReadDeadline(time.Now().Add(timeout))
		rec, err := ReadRecord(c, orDefault(s.MaxRecord, DefaultMaxRecord))
		if err != nil {
			if errors.Is(err, ErrRecordTooBig) {
				s.log().Warn("TCP record too large, connection closed", "from", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		table.begin(e)
		out := s.reply(ctx, rec, c.RemoteAddr(), "tcp", s.seq.Add(1))
		table.end(e)
		if out == nil {
			return // garbage on a stream: the framing can no longer be trusted
		}
		c.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := c.Write(AppendRecordMark(nil, out)); err != nil {
			return
		}
	}
}

// orDefault returns v, or def when v is not positive.
func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
