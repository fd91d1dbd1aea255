package oncrpc

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"testing"
	"time"
)

// echo serves proc 0 (NULL) and proc 1 (echo the arguments).
type echo struct{}

func (echo) Dispatch(_ context.Context, r *Request) (uint32, []byte) {
	switch r.Proc {
	case 0:
		return Success, nil
	case 1:
		return Success, r.Args
	}
	return ProcUnavail, nil
}

func startServer(t *testing.T, s *Server) (udp, tcp string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { s.ServeUDP(ctx, pc); done <- struct{}{} }()
	go func() { s.ServeTCP(ctx, l); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		pc.Close()
	})
	return pc.LocalAddr().String(), l.Addr().String()
}

// udpCall sends msg and waits for the reply, retransmitting every 200ms
// like a real client (a datagram can be lost in a full socket buffer)
// within a one-second budget.
func udpCall(t *testing.T, addr string, msg []byte) (ReplyHeader, error) {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 9000)
	for try := 0; ; try++ {
		if _, err := c.Write(msg); err != nil {
			return ReplyHeader{}, err
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return DecodeReply(buf[:n])
		}
		if try == 4 {
			return ReplyHeader{}, err
		}
	}
}

func tcpCall(c net.Conn, msg []byte) (ReplyHeader, error) {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(AppendRecordMark(nil, msg)); err != nil {
		return ReplyHeader{}, err
	}
	rec, err := ReadRecord(c, 9000)
	if err != nil {
		return ReplyHeader{}, err
	}
	return DecodeReply(rec)
}

func newServer() *Server {
	return &Server{Handler: echo{}, Prog: 100024, VersLow: 1, VersHi: 1, RecordTimeout: 300 * time.Millisecond, MaxConns: 4}
}

func TestDispatchAndRejections(t *testing.T) {
	udp, tcp := startServer(t, newServer())
	cases := []struct {
		name string
		msg  []byte
		want ReplyHeader
	}{
		{"null", AppendCall(nil, 1, 100024, 1, 0, Auth{}, nil), ReplyHeader{XID: 1, Accepted: true, Results: []byte{}}},
		{"echo", AppendCall(nil, 2, 100024, 1, 1, Auth{}, []byte{1, 2, 3, 4}), ReplyHeader{XID: 2, Accepted: true, Results: []byte{1, 2, 3, 4}}},
		{"proc unavail", AppendCall(nil, 3, 100024, 1, 7, Auth{}, nil), ReplyHeader{XID: 3, Accepted: true, AcceptStat: ProcUnavail}},
		{"prog mismatch", AppendCall(nil, 4, 100024, 2, 0, Auth{}, nil), ReplyHeader{XID: 4, Accepted: true, AcceptStat: ProgMismatch, Low: 1, High: 1}},
		{"prog unavail", AppendCall(nil, 5, 100021, 1, 0, Auth{}, nil), ReplyHeader{XID: 5, Accepted: true, AcceptStat: ProgUnavail}},
		{"auth_sys accepted", AppendCall(nil, 6, 100024, 1, 0, Auth{Flavor: AuthSys, Body: make([]byte, 20)}, nil), ReplyHeader{XID: 6, Accepted: true, Results: []byte{}}},
		{"gss refused", AppendCall(nil, 7, 100024, 1, 0, Auth{Flavor: 6}, nil), ReplyHeader{XID: 7, RejectStat: AuthError, AuthStat: AuthBadCred}},
	}
	conn, err := net.Dial("tcp4", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range cases {
		for _, transport := range []string{"udp", "tcp"} {
			var got ReplyHeader
			var err error
			if transport == "udp" {
				got, err = udpCall(t, udp, c.msg)
			} else {
				got, err = tcpCall(conn, c.msg)
			}
			if err != nil || got.XID != c.want.XID || got.Accepted != c.want.Accepted || got.AcceptStat != c.want.AcceptStat ||
				got.Low != c.want.Low || got.High != c.want.High || got.AuthStat != c.want.AuthStat || string(got.Results) != string(c.want.Results) {
				t.Errorf("%s over %s: %+v %v, want %+v", c.name, transport, got, err, c.want)
			}
		}
	}
	// RPC version 3: RPC_MISMATCH with the XID preserved.
	bad := AppendCall(nil, 8, 100024, 1, 0, Auth{}, nil)
	binary.BigEndian.PutUint32(bad[8:], 3)
	if got, err := udpCall(t, udp, bad); err != nil || got.Accepted || got.RejectStat != RPCMismatch || got.XID != 8 {
		t.Errorf("rpc version 3: %+v %v", got, err)
	}
}

// Garbage and truncated datagrams and hostile TCP records leave the server
// answering NULL promptly.
func TestRobustness(t *testing.T) {
	udp, tcp := startServer(t, newServer())
	rng := rand.New(rand.NewSource(1))
	g, _ := net.Dial("udp4", udp)
	good := AppendCall(nil, 9, 100024, 1, 1, Auth{}, make([]byte, 64))
	for i := 0; i < 3000; i++ {
		msg := make([]byte, rng.Intn(200))
		rng.Read(msg)
		if i%3 == 0 {
			msg = good[:rng.Intn(len(good))]
		}
		g.Write(msg)
	}
	g.Close()
	null := AppendCall(nil, 10, 100024, 1, 0, Auth{}, nil)
	if _, err := udpCall(t, udp, null); err != nil {
		t.Fatalf("NULL after a UDP garbage flood: %v", err)
	}
	// A 2^31-1 record mark: connection closed, nothing allocated.
	c, _ := net.Dial("tcp4", tcp)
	c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("oversized record: connection still open (%d bytes)", n)
	}
	c.Close()
	// Slow partial writers: more than MaxConns, each stuck mid-record.
	var slow []net.Conn
	for i := 0; i < 6; i++ {
		s, err := net.Dial("tcp4", tcp)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{0x80, 0, 0, 40, 1, 2})
		slow = append(slow, s)
	}
	defer func() {
		for _, s := range slow {
			s.Close()
		}
	}()
	// They are cut off after RecordTimeout; a new client is then served.
	deadline := time.Now().Add(2 * time.Second)
	for {
		conn, err := net.Dial("tcp4", tcp)
		if err == nil {
			_, err = tcpCall(conn, null)
			conn.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TCP NULL not answered after slow clients: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := udpCall(t, udp, null); err != nil {
		t.Errorf("UDP NULL while TCP is busy: %v", err)
	}
}

// Idle clients that fill every connection slot do not lock out a client
// that talks: the least recently used idle connection is closed for it,
// and a connection in the middle of a call is never the one closed.
func TestIdleConnectionsEvicted(t *testing.T) {
	srv := newServer()
	srv.RecordTimeout = time.Minute // idle holders are not timed out here
	_, tcp := startServer(t, srv)
	null := AppendCall(nil, 11, 100024, 1, 0, Auth{}, nil)
	// From 127.0.0.2: not the local lock manager, so no privilege.
	remote := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var idle []net.Conn
	for i := 0; i < 3*srv.MaxConns; i++ {
		c, err := remote.Dial("tcp4", tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	for round := 0; round < 3; round++ {
		conn, err := remote.Dial("tcp4", tcp)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := tcpCall(conn, null); err != nil {
			t.Fatalf("round %d: NULL over a new connection with %d idle ones open: %v", round, len(idle), err)
		}
		conn.Close()
	}
	// The first idle connections were the least recently used: closed.
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest idle connection is still open")
	}
}

func TestConnTableVictims(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
	tab := newConnTable(2)
	a := tab.add(fakeConn{remote})
	b := tab.add(fakeConn{local})
	tab.begin(a) // a is mid-call: b (local, idle) is the only victim
	if c := tab.add(fakeConn{remote}); c == nil || b.elem != nil || a.elem == nil {
		t.Fatalf("full table with a busy remote and an idle local: add=%v, local evicted=%v", c != nil, b.elem == nil)
	}
	c := tab.order.Back().Value.(*tracked)
	tab.begin(c)
	// Both busy: a remote newcomer is refused, a local one admitted.
	if d := tab.add(fakeConn{remote}); d != nil {
		t.Error("remote connection admitted while every slot is in a call")
	}
	if d := tab.add(fakeConn{local}); d == nil || tab.len() != 3 {
		t.Errorf("local connection refused while every slot is in a call (len %d)", tab.len())
	}
	tab.end(a)
	tab.end(c)
	// a is now the least recently used remote idle connection.
	tab.add(fakeConn{remote})
	if a.elem != nil {
		t.Error("least recently used idle remote connection kept")
	}
}

// fakeConn is a net.Conn with only a remote address.
type fakeConn struct{ remote net.Addr }

func (f fakeConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (f fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (f fakeConn) Close() error                     { return nil }
func (f fakeConn) LocalAddr() net.Addr              { return f.remote }
func (f fakeConn) RemoteAddr() net.Addr             { return f.remote }
func (f fakeConn) SetDeadline(time.Time) error      { return nil }
func (f fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f fakeConn) SetWriteDeadline(time.Time) error { return nil }

// A host that floods the table only pushes out its own connections: a
// connection of another host survives any number of newcomers from it.
func TestConnTableFairAcrossHosts(t *testing.T) {
	a := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}
	b := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 1}
	tab := newConnTable(8)
	for i := 0; i < 8; i++ {
		tab.add(fakeConn{a})
	}
	other := tab.add(fakeConn{b}) // evicts the oldest of a's
	if other == nil {
		t.Fatal("a second host's connection refused")
	}
	for i := 0; i < 1000; i++ {
		if tab.add(fakeConn{a}) == nil {
			t.Fatal("flooding host refused: its own idle connections should make room")
		}
	}
	if other.elem == nil {
		t.Error("the flooding host pushed out another host's connection")
	}
	if tab.len() != 8 || tab.bySrc[source(a)] != 7 || tab.bySrc[source(b)] != 1 {
		t.Errorf("table: %d connections, %v", tab.len(), tab.bySrc)
	}
}
