//go:build linux

package cld

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PipeName is the pipe's name inside DirName, and DirName the directory
// rpc_pipefs creates for nfsd.
const (
	PipeName = "cld"
	DirName  = "nfsd"
)

// DirOpener opens <pipefs>/nfsd/cld. It watches the directory with
// inotify from Watch on, so a pipe the kernel creates later is opened as
// soon as it appears, without polling.
type DirOpener struct {
	dir     string
	inotify int
}

// Watch starts watching <pipefs>/nfsd for the pipe's creation. A missing
// directory is an error: rpc_pipefs is not mounted (nfsdcld exits 1).
// Close releases the watch.
func Watch(pipefs string) (*DirOpener, error) {
	dir := filepath.Join(pipefs, DirName)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	return &DirOpener{dir: dir, inotify: fd}, nil
}

// Path is the pipe's path.
func (o *DirOpener) Path() string { return filepath.Join(o.dir, PipeName) }

// Close stops watching.
func (o *DirOpener) Close() error { return unix.Close(o.inotify) }

// Open opens the pipe read-write, waiting for its creation when it is
// missing. Any error but a missing pipe is returned at once.
func (o *DirOpener) Open(ctx context.Context) (Pipe, error) {
	for {
		fd, err := unix.Open(o.Path(), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			return &filePipe{fd: fd}, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("open %s: %w", o.Path(), err)
		}
		if err := o.waitCreate(ctx); err != nil {
			return nil, err
		}
	}
}

// waitCreate blocks until the directory reports the pipe's creation.
func (o *DirOpener) waitCreate(ctx context.Context) error {
	buf := make([]byte, 4096)
	for {
		if _, err := waitReadable(ctx, o.inotify); err != nil {
			return err
		}
		n, err := unix.Read(o.inotify, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read inotify: %w", err)
		}
		created, lost := createdPipe(buf[:n])
		if lost {
			return o.rearm(ctx)
		}
		if created {
			return nil
		}
	}
}

// rearm waits for the nfsd directory to come back (rpc_pipefs mounted
// again) and watches it anew. A mount makes no inotify event, so it
// checks with a backoff from 250 ms to 10 s: never a busy loop, and
// never a wait on a watch that cannot fire (nfsdcld's hang).
func (o *DirOpener) rearm(ctx context.Context) error {
	delay := 250 * time.Millisecond
	for {
		if _, err := unix.InotifyAddWatch(o.inotify, o.dir, unix.IN_CREATE); err == nil {
			return nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// createdPipe reports whether a batch of inotify events holds the pipe's
// creation, or the loss of the watch.
func createdPipe(b []byte) (created, lost bool) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return created, lost
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		created = created || name == PipeName
		lost = lost || ev.Mask&unix.IN_IGNORED != 0
		b = b[end:]
	}
	return created, lost
}

// filePipe is the real pipe: a descriptor on rpc_pipefs, used with raw
// system calls (Go's os.File would read a 0-byte result as end of file).
type filePipe struct{ fd int }

func (p *filePipe) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(p.fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EPIPE):
			return 0, ErrPipeGone
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("read cld pipe: %w", err)
		}
		return n, nil
	}
}

func (p *filePipe) Write(b []byte) (int, error) {
	for {
		n, err := unix.Write(p.fd, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EPIPE):
			return n, ErrPipeGone
		case err != nil:
			return n, fmt.Errorf("write cld pipe: %w", err)
		}
		return n, nil
	}
}

func (p *filePipe) Close() error { return unix.Close(p.fd) }

// Wait polls the descriptor: POLLIN is a queued upcall, POLLERR or
// POLLHUP a removed pipe.
func (p *filePipe) Wait(ctx context.Context) error {
	for {
		revents, err := waitReadable(ctx, p.fd)
		switch {
		case err != nil:
			return err
		case revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0:
			return ErrPipeGone
		case revents&unix.POLLIN != 0:
			return nil
		}
	}
}

// waitReadable blocks until fd polls readable or in error, and returns
// the events it reported (a second poll to read them would cost a FUSE
// round trip on an emulated pipe), or until ctx ends. An eventfd
// signalled by ctx's end interrupts the poll.
func waitReadable(ctx context.Context, fd int) (int16, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(efd)
	stop := context.AfterFunc(ctx, func() {
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	defer stop()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll: %w", err)
		}
		if fds[1].Revents != 0 || ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if fds[0].Revents != 0 {
			return fds[0].Revents, nil
		}
	}
}
