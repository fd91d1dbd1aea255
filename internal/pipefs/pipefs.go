//go:build linux

// Package pipefs emulates the part of rpc_pipefs that nfsd's client
// tracking uses, with FUSE, so that a cld daemon (ours or nfsdcld) can be
// driven without a kernel NFS server: the directory nfsd/ and the pipe
// nfsd/cld, which the test creates and removes as the kernel does.
//
// The pipe behaves as net/sunrpc/rpc_pipe.c does for a reader:
//   - a read returns up to the requested bytes of the current upcall, the
//     rest on later reads, and 0 bytes when nothing is queued;
//   - one write is one downcall, checked as cld_pipe_downcall checks it
//     (length equal to the upcall's, xid of an upcall that was read,
//     -EINPROGRESS only for GraceStart, name length 1..1024);
//   - poll reports POLLIN only when an upcall is pending, and
//     POLLERR|POLLHUP once the pipe was removed; reads and writes on a
//     removed pipe fail with EPIPE;
//   - an upcall a closing reader had half read is queued again (the
//     kernel retries it on -EAGAIN).
//
// The node is a regular file opened with direct I/O, no seeking and
// parallel direct writes: a FIFO node would be served by the kernel's own
// FIFO code instead, and rpc_pipefs serializes no writes.
// go-fuse answers poll with ENOSYS (every file always readable), so this
// helper uses bazil.org/fuse, which passes poll to the file system.
package pipefs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// Protocol numbers the pipe checks downcalls against (include/uapi/linux/nfsd/cld.h).
const (
	cmdGraceStart = 4
	einprogress   = -115
	maxName       = 1024
)

// FS is a mounted emulation. Its methods are safe for concurrent use.
type FS struct {
	dir    string
	conn   *fuse.Conn
	server *fs.Server
	served chan error

	mu      sync.Mutex
	pipe    *pipe // nil while the pipe does not exist
	nextIno uint64
}

// Mount mounts an emulation at dir (an existing empty directory) with an
// empty nfsd/ directory; the pipe is created by CreatePipe. Unmount
// releases it.
func Mount(dir string) (*FS, error) {
	c, err := fuse.Mount(dir, fuse.FSName("rpc_pipefs"), fuse.Subtype("nfsrecover-pipefs"))
	if err != nil {
		return nil, fmt.Errorf("pipefs: mount %s: %w", dir, err)
	}
	f := &FS{dir: dir, conn: c, served: make(chan error, 1), nextIno: 10}
	f.server = fs.New(c, nil)
	go func() { f.served <- f.server.Serve(f) }()
	return f, nil
}

// Dir is the mount point: the pipefs directory a daemon is given (-p).
func (f *FS) Dir() string { return f.dir }

// PipePath is the pipe's path, <Dir>/nfsd/cld.
func (f *FS) PipePath() string { return filepath.Join(f.dir, "nfsd", "cld") }

// Unmount removes the pipe (failing every open descriptor) and unmounts.
func (f *FS) Unmount() error {
	f.mu.Lock()
	if f.pipe != nil {
		f.pipe.remove()
		f.pipe = nil
	}
	f.mu.Unlock()
	err := fuse.Unmount(f.dir)
	if err != nil {
		return fmt.Errorf("pipefs: unmount %s: %w", f.dir, err)
	}
	<-f.served
	return f.conn.Close()
}

// CreatePipe creates nfsd/cld through the mount point, as the kernel
// does when client tracking starts, so that inotify reports IN_CREATE.
func (f *FS) CreatePipe() error {
	if err := syscall.Mknod(f.PipePath(), syscall.S_IFREG|0o600, 0); err != nil {
		return fmt.Errorf("pipefs: create pipe: %w", err)
	}
	return nil
}

// RemovePipe unlinks the pipe, as nfsd does when it stops: open
// descriptors see POLLHUP and EPIPE, and queued upcalls fail.
func (f *FS) RemovePipe() error {
	if err := os.Remove(f.PipePath()); err != nil {
		return fmt.Errorf("pipefs: remove pipe: %w", err)
	}
	return nil
}

// Readers is how many descriptors have the current pipe open.
func (f *FS) Readers() int {
	p := f.current()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.handles)
}

// ErrNoPipe means the pipe does not exist.
var ErrNoPipe = errors.New("pipefs: no pipe")

// ErrFailed means an upcall failed: the pipe was removed, or its last
// reader closed it after reading the upcall.
var ErrFailed = errors.New("upcall failed: pipe removed or reader gone")

// Call sends one upcall and returns its downcalls: for GraceStart every
// -EINPROGRESS reply (in the order they were written) and the final one;
// for the others the one reply. It waits until the final reply or ctx's
// end.
func (f *FS) Call(ctx context.Context, msg []byte) ([][]byte, error) {
	var mu sync.Mutex
	var got [][]byte
	final, err := f.Stream(ctx, msg, func(d []byte) {
		mu.Lock()
		got = append(got, append([]byte(nil), d...))
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return got, err
	}
	return append(got, final), nil
}

// Stream sends one upcall, calls each with every -EINPROGRESS downcall
// (from the writing goroutine, possibly several at once; d is valid only
// during the call) and returns the final downcall.
func (f *FS) Stream(ctx context.Context, msg []byte, each func(d []byte)) ([]byte, error) {
	p := f.current()
	if p == nil {
		return nil, ErrNoPipe
	}
	u, err := p.enqueue(msg, each)
	if err != nil {
		return nil, err
	}
	select {
	case d := <-u.final:
		return d, nil
	case <-u.failed:
		return nil, fmt.Errorf("pipefs: upcall xid %d: %w", u.xid, ErrFailed)
	case <-ctx.Done():
		p.forget(u)
		return nil, fmt.Errorf("pipefs: upcall xid %d: %w", u.xid, ctx.Err())
	}
}

// Rejected returns the downcalls the pipe refused, with why.
func (f *FS) Rejected() []string {
	p := f.current()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.rejected...)
}

func (f *FS) current() *pipe {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pipe
}

func status(msg []byte) int16 { return int16(binary.NativeEndian.Uint16(msg[2:])) }
func xidOf(msg []byte) uint32 { return binary.NativeEndian.Uint32(msg[4:]) }

// Root implements fs.FS.
func (f *FS) Root() (fs.Node, error) { return rootDir{f}, nil }

type rootDir struct{ f *FS }

func (rootDir) Attr(_ context.Context, a *fuse.Attr) error {
	a.Inode, a.Mode = 1, os.ModeDir|0o555
	return nil
}

func (d rootDir) Lookup(_ context.Context, name string) (fs.Node, error) {
	if name == "nfsd" {
		return nfsdDir{d.f}, nil
	}
	return nil, syscall.ENOENT
}

func (rootDir) ReadDirAll(context.Context) ([]fuse.Dirent, error) {
	return []fuse.Dirent{{Inode: 2, Name: "nfsd", Type: fuse.DT_Dir}}, nil
}

type nfsdDir struct{ f *FS }

func (nfsdDir) Attr(_ context.Context, a *fuse.Attr) error {
	a.Inode, a.Mode = 2, os.ModeDir|0o755
	return nil
}

func (d nfsdDir) Lookup(_ context.Context, name string) (fs.Node, error) {
	if p := d.f.current(); name == "cld" && p != nil {
		return p, nil
	}
	return nil, syscall.ENOENT
}

func (d nfsdDir) ReadDirAll(context.Context) ([]fuse.Dirent, error) {
	if p := d.f.current(); p != nil {
		return []fuse.Dirent{{Inode: p.ino, Name: "cld", Type: fuse.DT_File}}, nil
	}
	return nil, nil
}

func (d nfsdDir) Mknod(_ context.Context, req *fuse.MknodRequest) (fs.Node, error) {
	if req.Name != "cld" {
		return nil, syscall.EPERM
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.pipe != nil {
		return nil, syscall.EEXIST
	}
	d.f.nextIno++
	d.f.pipe = newPipe(d.f, d.f.nextIno)
	return d.f.pipe, nil
}

func (d nfsdDir) Remove(_ context.Context, req *fuse.RemoveRequest) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if req.Name != "cld" || d.f.pipe == nil {
		return syscall.ENOENT
	}
	d.f.pipe.remove()
	d.f.pipe = nil
	return nil
}
