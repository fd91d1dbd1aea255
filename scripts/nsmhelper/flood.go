//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

// statdPort asks SERVER's rpcbind for statd's port on proto.
func statdPort(ctx context.Context, server string, proto uint32) (uint16, error) {
	port, err := oncrpc.Rpcbind{Network: "udp", Address: net.JoinHostPort(server, "111")}.PmapGetPort(ctx, nsm.Program, 1, proto)
	if err != nil || port == 0 {
		return 0, fmt.Errorf("no statd registered at %s: %v", server, err)
	}
	return port, nil
}

// flood runs the load-generating modes.
func flood(mode string, args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%s: missing SERVER", mode)
	}
	server, rest := args[0], args[1:]
	ints := func(n int) ([]int, error) {
		if len(rest) < n {
			return nil, fmt.Errorf("%s: %d numbers expected", mode, n)
		}
		out := make([]int, n)
		for i := range out {
			v, err := strconv.Atoi(rest[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %v", mode, rest[i], err)
			}
			out[i] = v
		}
		return out, nil
	}
	switch mode {
	case "flood-stat":
		n, err := ints(2)
		if err != nil {
			return err
		}
		return floodStat(server, n[0], n[1])
	case "flood-notify":
		n, err := ints(1)
		if err != nil {
			return err
		}
		return floodNotify(server, n[0], rest[1:])
	case "idle":
		n, err := ints(2)
		if err != nil {
			return err
		}
		return idle(server, n[0], time.Duration(n[1])*time.Second)
	}
	from := ""
	if len(rest) > 0 {
		from = rest[0]
	}
	return nullTCP(server, from)
}

// udpTo dials statd's UDP port on server.
func udpTo(server string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := statdPort(ctx, server, oncrpc.ProtoUDP)
	if err != nil {
		return nil, err
	}
	return net.Dial("udp4", net.JoinHostPort(server, fmt.Sprint(port)))
}

func floodStat(server string, n, nameLen int) error {
	c, err := udpTo(server)
	if err != nil {
		return err
	}
	defer c.Close()
	pad := strings.Repeat("x", max(nameLen-16, 0))
	for i := 0; i < n; i++ {
		args, _ := nsm.Encode(&nsm.SmName{MonName: fmt.Sprintf("%s%016d", pad, i)})
		c.Write(oncrpc.AppendCall(nil, uint32(i), nsm.Program, 1, nsm.ProcStat, oncrpc.Auth{}, args))
		if i%256 == 255 {
			time.Sleep(time.Millisecond) // keep the socket buffers from only dropping
		}
	}
	fmt.Println("sent", n)
	return nil
}

func floodNotify(server string, rounds int, names []string) error {
	c, err := udpTo(server)
	if err != nil {
		return err
	}
	defer c.Close()
	xid := uint32(0)
	for r := 1; r <= rounds; r++ {
		for _, name := range names {
			xid++
			args, _ := nsm.Encode(&nsm.StatChge{MonName: name, State: int32(2*r + 1)})
			c.Write(oncrpc.AppendCall(nil, xid, nsm.Program, 1, nsm.ProcNotify, oncrpc.Auth{}, args))
			if xid%256 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	last := int32(2*rounds + 3)
	addr := c.RemoteAddr().String()
	for _, name := range names {
		args, _ := nsm.Encode(&nsm.StatChge{MonName: name, State: last})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := oncrpc.Call(ctx, "udp4", addr, nsm.Program, 1, nsm.ProcNotify, args)
		cancel()
		if err != nil {
			return fmt.Errorf("last SM_NOTIFY for %s: %w", name, err)
		}
	}
	fmt.Println("last", last)
	return nil
}

// idle holds n TCP connections open without a word, reopening any the
// server closes and all of them every 29 s (as an attacker would, to stay
// under a 30 s idle timeout).
func idle(server string, n int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	port, err := statdPort(ctx, server, oncrpc.ProtoTCP)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(server, fmt.Sprint(port))
	var mu sync.Mutex
	reopened := 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.Dial("tcp4", addr)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				end := time.Now().Add(29 * time.Second)
				if dl, _ := ctx.Deadline(); dl.Before(end) {
					end = dl
				}
				c.SetReadDeadline(end)
				c.Read(make([]byte, 1)) // returns when closed by the server, or at 29 s
				c.Close()
				mu.Lock()
				reopened++
				mu.Unlock()
			}
		}()
	}
	fmt.Println("holding", n)
	wg.Wait()
	fmt.Println("reopened", reopened)
	return nil
}

// nullTCP sends SM_NULL over a new TCP connection, from the address from
// when it is not empty.
func nullTCP(server, from string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := statdPort(ctx, server, oncrpc.ProtoTCP)
	if err != nil {
		return err
	}
	d := net.Dialer{}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort(server, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(oncrpc.AppendRecordMark(nil, oncrpc.AppendCall(nil, 1, nsm.Program, 1, nsm.ProcNull, oncrpc.Auth{}, nil))); err != nil {
		return err
	}
	rec, err := oncrpc.ReadRecord(c, 1<<16)
	if err != nil {
		return err
	}
	if h, err := oncrpc.DecodeReply(rec); err != nil || !h.Accepted || h.AcceptStat != oncrpc.Success {
		return fmt.Errorf("SM_NULL reply %+v %v", h, err)
	}
	fmt.Println(time.Since(start))
	return nil
}
