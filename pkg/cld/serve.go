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
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		if p != nil {
			p.Close()
		}
	}()
	slots := make(chan struct{}, MaxInFlight)
	for {
		raw, err := s.next(ctx, p)
		if errors.Is(err, errReopen) || errors.Is(err, ErrPipeGone) {
			s.log().Info("reopening the pipe", "why", err)
			if p, err = reopen(ctx, open, p); err != nil {
				return quiet(ctx, err)
			}
			continue
		}
		if err != nil {
			return quiet(ctx, err)
		}
		if !known(raw[1]) {
			// Answer -EOPNOTSUPP, then reopen, as nfsdcld does.
			s.log().Warn("unknown upcall", "err", s.Handle(context.WithoutCancel(ctx), raw, p))
			if p, err = reopen(ctx, open, p); err != nil {
				return quiet(ctx, err)
			}
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func(p Pipe) {
			defer func() { <-slots; wg.Done() }()
			if err := s.Handle(context.WithoutCancel(ctx), raw, p); err != nil {
				s.log().Error("upcall not answered", "err", err)
			}
		}(p)
	}
}

// reopen opens the pipe anew and only then closes the old descriptor.
func reopen(ctx context.Context, open Opener, old Pipe) (Pipe, error) {
	p, err := open.Open(ctx)
	old.Close()
	if err != nil {
		return nil, fmt.Errorf("cld: reopen pipe: %w", err)
	}
	return p, nil
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

// next returns the next whole upcall: the 8-byte header first, then the
// rest as its version's size says (nfs-utils 2.8.3's way, which never
// swallows part of the next upcall).
func (s *Server) next(ctx context.Context, p Pipe) ([]byte, error) {
	hdr := make([]byte, HdrSize, Size2)
	if err := readFull(ctx, p, hdr); err != nil {
		return nil, err
	}
	size := SizeOf(hdr[0])
	if size == 0 {
		s.log().Error("upcall of unknown version", "vers", hdr[0], "cmd", hdr[1])
		return nil, fmt.Errorf("%w %d", errReopen, hdr[0])
	}
	raw := hdr[:size]
	if err := readFull(ctx, p, raw[HdrSize:]); err != nil {
		return nil, err
	}
	return raw, nil
}

// readFull fills b from the pipe, waiting whenever it has nothing queued.
func readFull(ctx context.Context, p Pipe, b []byte) error {
	for got := 0; got < len(b); {
		n, err := p.Read(b[got:])
		if err != nil {
			return err
		}
		if n == 0 {
			if err := p.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		got += n
	}
	return nil
}
