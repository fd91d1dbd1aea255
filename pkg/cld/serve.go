package cld

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Pipe is the daemon's end of <pipefs>/nfsd/cld, with rpc_pipefs's
// semantics: Read returns up to len(p) bytes of the current upcall, the
// rest of it on the next Read, and 0 bytes (with a nil error) when no
// upcall is queued; each Write is one whole downcall.
type Pipe interface {
	io.ReadWriteCloser
	// Wait blocks until an upcall is pending (nil), the pipe has been
	// removed (ErrPipeGone), or ctx ends (its error).
	Wait(ctx context.Context) error
}

// Opener opens the pipe, waiting for the kernel to create it when it is
// missing, until ctx ends.
type Opener interface {
	Open(ctx context.Context) (Pipe, error)
}

// ErrPipeGone means the kernel removed the pipe (nfsd stopped or
// rpc_pipefs unmounted): the open descriptor will never work again.
var ErrPipeGone = errors.New("cld pipe removed")

// MaxInFlight bounds the upcalls handled at once. The kernel has at most
// one outstanding upcall per nfsd thread.
const MaxInFlight = 256

// Serve reads upcalls from the pipe that open returns and answers them
// until ctx ends. Upcalls are handled concurrently, so creates from
// several nfsd threads share one commit. When the pipe is removed it
// waits for the kernel to create it again (no polling), opening the new
// pipe before it closes the old one, so the kernel never sees the pipe
// without a reader. Upcalls in flight when ctx ends are still answered.
func (s *Server) Serve(ctx context.Context, open Opener) error {
	p, err := open.Open(ctx)
	if err != nil {
		return fmt.Errorf("cld: open pipe: %w", err)
	}
	cur := &inUse{Pipe: p}
	defer func() {
		if cur != nil {
			cur.closeWhenDone()
		}
	}()
	slots := make(chan struct{}, MaxInFlight)
	for {
		raw, err := s.next(ctx, cur)
		if errors.Is(err, errReopen) || errors.Is(err, ErrPipeGone) {
			s.log().Info("reopening the pipe", "why", err)
			if cur, err = reopen(ctx, open, cur); err != nil {
				return quiet(ctx, err)
			}
			continue
		}
		if err != nil {
			return quiet(ctx, err)
		}
		if !known(raw[1]) {
			// Answer -EOPNOTSUPP, then reopen, as nfsdcld does.
			s.log().Warn("unknown upcall", "err", s.Handle(context.WithoutCancel(ctx), raw, cur))
			if cur, err = reopen(ctx, open, cur); err != nil {
				return quiet(ctx, err)
			}
			continue
		}
		slots <- struct{}{}
		cur.handlers.Add(1)
		go func(u *inUse) {
			defer func() { <-slots; u.handlers.Done() }()
			if err := s.Handle(context.WithoutCancel(ctx), raw, u); err != nil {
				s.log().Error("upcall not answered", "err", err)
			}
		}(cur)
	}
}

// inUse is an open pipe and the handlers still answering on it. It is
// closed only once they are done: a descriptor closed under a late reply
// could be reused by another file, and the reply written there.
type inUse struct {
	Pipe
	handlers sync.WaitGroup
}

func (u *inUse) closeWhenDone() {
	u.handlers.Wait()
	u.Pipe.Close()
}

// reopen opens the pipe anew and only then closes the old descriptor
// (once its handlers are done). On failure it returns nil.
func reopen(ctx context.Context, open Opener, old *inUse) (*inUse, error) {
	p, err := open.Open(ctx)
	old.closeWhenDone()
	if err != nil {
		return nil, fmt.Errorf("cld: reopen pipe: %w", err)
	}
	return &inUse{Pipe: p}, nil
}

// quiet turns an error caused by the end of ctx into a clean return.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// errReopen means the current upcall cannot be read (an unknown
// version); dropping the descriptor discards it, as rpc_pipefs does.
var errReopen = errors.New("upcall of unknown version")

func known(cmd uint8) bool { return cmd <= GetVersion }

// next returns the next whole upcall. A read never returns bytes of two
// upcalls, so one read of the largest size takes a whole upcall of either
// version; the rest of a partly read upcall is read to its version's size
// only (never further: nfs-utils before 2.8.3 read on into the next
// upcall and could hang nfsd).
func (s *Server) next(ctx context.Context, p Pipe) ([]byte, error) {
	buf := make([]byte, Size2)
	n, err := readSome(ctx, p, buf)
	for err == nil && n < HdrSize {
		var m int
		m, err = readSome(ctx, p, buf[n:HdrSize])
		n += m
	}
	if err != nil {
		return nil, err
	}
	size := SizeOf(buf[0])
	if size == 0 || n > size {
		s.log().Error("upcall of unknown version or size", "vers", buf[0], "cmd", buf[1], "read", n)
		return nil, fmt.Errorf("%w %d", errReopen, buf[0])
	}
	for n < size {
		m, err := readSome(ctx, p, buf[n:size])
		if err != nil {
			return nil, err
		}
		n += m
	}
	return buf[:size], nil
}

// readSome reads at least one byte into b, waiting whenever the pipe has
// nothing queued.
func readSome(ctx context.Context, p Pipe, b []byte) (int, error) {
	for {
		n, err := p.Read(b)
		if err != nil || n > 0 {
			return n, err
		}
		if err := p.Wait(ctx); err != nil {
			return 0, err
		}
	}
}
