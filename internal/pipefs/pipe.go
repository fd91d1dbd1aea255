//go:build linux

package pipefs

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// upcall is one message from the "kernel", outstanding until its final
// downcall.
type upcall struct {
	xid      uint32
	msg      []byte
	inflight bool          // fully read by a reader
	each     func([]byte)  // called with every -EINPROGRESS downcall, in the writer's goroutine
	final    chan []byte   // the final downcall
	failed   chan struct{} // closed when the upcall fails
}

// pipe is the nfsd/cld node.
type pipe struct {
	f   *FS
	ino uint64

	mu       sync.Mutex
	gone     bool
	queue    []*upcall // not yet taken by a reader
	calls    map[uint32]*upcall
	handles  map[*handle]bool
	wakeups  []fuse.PollWakeup
	rejected []string
}

func newPipe(f *FS, ino uint64) *pipe {
	return &pipe{f: f, ino: ino, calls: map[uint32]*upcall{}, handles: map[*handle]bool{}}
}

// A size far past any write keeps FUSE from taking the inode lock for
// writes "past EOF": with parallelDirectWrites, writes run concurrently,
// as rpc_pipefs's do (it takes no inode lock on write).
const fakeSize = 1 << 40

// Open flags bazil.org/fuse does not name: FOPEN_STREAM (no file position,
// so no f_pos lock between writers, as for rpc_pipefs's stream-like
// file) and FOPEN_PARALLEL_DIRECT_WRITES (Linux 6.2).
const (
	openStream           = fuse.OpenResponseFlags(1 << 4)
	parallelDirectWrites = fuse.OpenResponseFlags(1 << 6)
)

func (p *pipe) Attr(_ context.Context, a *fuse.Attr) error {
	a.Inode, a.Mode, a.Size = p.ino, 0o600, fakeSize
	return nil
}

// Open gives every opener its own handle (its own current message).
func (p *pipe) Open(_ context.Context, _ *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return nil, syscall.ENOENT
	}
	h := &handle{p: p}
	p.handles[h] = true
	resp.Flags |= fuse.OpenDirectIO | fuse.OpenNonSeekable | openStream | parallelDirectWrites
	return h, nil
}

// enqueue adds an upcall and wakes the pollers.
func (p *pipe) enqueue(msg []byte, each func([]byte)) (*upcall, error) {
	if len(msg) < 8 {
		return nil, fmt.Errorf("pipefs: upcall of %d bytes", len(msg))
	}
	u := &upcall{xid: xidOf(msg), msg: append([]byte(nil), msg...), each: each, final: make(chan []byte, 1), failed: make(chan struct{})}
	p.mu.Lock()
	switch {
	case p.gone:
		p.mu.Unlock()
		return nil, ErrNoPipe
	case p.calls[u.xid] != nil:
		p.mu.Unlock()
		return nil, fmt.Errorf("pipefs: xid %d already outstanding", u.xid)
	}
	p.calls[u.xid] = u
	p.queue = append(p.queue, u)
	p.mu.Unlock()
	p.wake()
	return u, nil
}

// forget drops an upcall its caller gave up on.
func (p *pipe) forget(u *upcall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.calls, u.xid)
	for i, q := range p.queue {
		if q == u {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			break
		}
	}
}

// wake tells every poller to poll again.
func (p *pipe) wake() {
	p.mu.Lock()
	w := p.wakeups
	p.wakeups = nil
	p.mu.Unlock()
	for _, k := range w {
		p.f.server.NotifyPollWakeup(k)
	}
}

// remove is the unlink: outstanding upcalls fail, descriptors go stale.
func (p *pipe) remove() {
	p.mu.Lock()
	p.gone = true
	for _, u := range p.calls {
		close(u.failed)
	}
	p.calls, p.queue = map[uint32]*upcall{}, nil
	p.mu.Unlock()
	p.wake()
}

// handle is one open descriptor of the pipe.
type handle struct {
	p   *pipe
	cur *upcall // the message being read
	off int
}

// Read returns up to req.Size bytes of the current message, and no bytes
// when nothing is queued.
func (h *handle) Read(_ context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return syscall.EPIPE
	}
	if h.cur == nil {
		if len(p.queue) == 0 {
			resp.Data = resp.Data[:0]
			return nil
		}
		h.cur, h.off = p.queue[0], 0
		p.queue = p.queue[1:]
	}
	n := min(req.Size, len(h.cur.msg)-h.off)
	resp.Data = append(resp.Data[:0], h.cur.msg[h.off:h.off+n]...)
	h.off += n
	if h.off == len(h.cur.msg) {
		h.cur.inflight, h.cur = true, nil
	}
	return nil
}

// Write is one downcall, checked as cld_pipe_downcall does.
func (h *handle) Write(_ context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	p := h.p
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return syscall.EPIPE
	}
	u, errno := p.check(req.Data)
	if errno != 0 {
		p.rejected = append(p.rejected, fmt.Sprintf("%d-byte downcall: %v", len(req.Data), errno))
		p.mu.Unlock()
		return errno
	}
	final := status(req.Data) != einprogress
	if final {
		delete(p.calls, u.xid)
	}
	p.mu.Unlock()
	if final {
		u.final <- append([]byte(nil), req.Data...)
	} else {
		u.each(req.Data)
	}
	resp.Size = len(req.Data)
	return nil
}

// check validates a downcall against the outstanding upcalls.
func (p *pipe) check(d []byte) (*upcall, syscall.Errno) {
	if len(d) < 8 {
		return nil, syscall.EINVAL
	}
	u := p.calls[xidOf(d)]
	switch {
	case u == nil || !u.inflight:
		return nil, syscall.EINVAL
	case len(d) != len(u.msg):
		return nil, syscall.EINVAL
	case status(d) == einprogress && u.msg[1] != cmdGraceStart:
		return nil, syscall.EFAULT
	case status(d) == einprogress:
		if n := int(binary.NativeEndian.Uint16(d[8:])); n < 1 || n > maxName {
			return nil, syscall.EINVAL
		}
	}
	return u, 0
}

// Poll: IN when a message is pending for this reader, ERR|HUP once the
// pipe was removed.
func (h *handle) Poll(_ context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		resp.REvents = fuse.PollError | fuse.PollHangup
		return nil
	}
	resp.REvents = fuse.PollOut | fuse.PollWriteNormal
	if h.cur != nil || len(p.queue) > 0 {
		resp.REvents |= fuse.PollIn | fuse.PollReadNormal
	}
	if w, ok := req.Wakeup(); ok {
		p.wakeups = append(p.wakeups, w)
	}
	return nil
}

// Release closes the descriptor: a half-read message is queued again; on
// the last close, upcalls already read fail (cld_release_pipe).
func (h *handle) Release(context.Context, *fuse.ReleaseRequest) error {
	p := h.p
	p.mu.Lock()
	delete(p.handles, h)
	if h.cur != nil && !p.gone {
		p.queue = append(p.queue, h.cur)
		h.cur = nil
	}
	if len(p.handles) == 0 {
		for x, u := range p.calls {
			if u.inflight {
				delete(p.calls, x)
				close(u.failed)
			}
		}
	}
	p.mu.Unlock()
	p.wake()
	return nil
}
