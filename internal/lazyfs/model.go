// Package lazyfs is a test file system that loses, on a simulated power
// cut, everything that was not made durable, after Jepsen's LazyFS.
//
// Writes, new entries, renames and removals land in memory (the "page
// cache"). A file's contents become durable when it is fsync'd or
// fdatasync'd; a directory's entries (files created, renamed into it or
// removed from it) become durable when the directory itself is fsync'd.
// Cut throws away everything else, exactly as a power failure on a file
// system that guarantees no more than POSIX does. A test mounts it with
// FUSE (Mount), runs programs on it, kills them, cuts, remounts, and
// checks that everything they acknowledged is still there.
//
// The model (this file) is plain Go and is tested without FUSE; fuse.go
// serves it. Caveats: metadata (modes, times) is kept as if always
// durable; symlinks and xattrs are not supported, and the kernel keeps
// flock locks locally.
package lazyfs

import (
	"bytes"
	"maps"
	"sync"
	"sync/atomic"
)

// FS is the in-memory file system with its durable shadow.
type FS struct {
	mu         sync.Mutex
	root       *node
	ignoreSync atomic.Bool
	nextIno    atomic.Uint64
	syncs      atomic.Int64
}

// IgnoreSync makes fsync and fdatasync do nothing from now on (or again
// count, with false): the harness's self-test, proving that the checks
// built on it can fail. It is safe to call while mounted.
func (f *FS) IgnoreSync(ignore bool) { f.ignoreSync.Store(ignore) }

// node is a file or a directory, with what a cut would leave of it.
type node struct {
	ino      uint64
	dir      bool
	mode     uint32 // permission bits
	uid, gid uint32
	// The state programs see.
	data []byte
	kids map[string]*node
	// What survives a cut.
	ddata []byte
	dkids map[string]*node
}

// New returns an empty file system whose root directory is durable.
func New() *FS {
	f := &FS{}
	f.root = f.newNode(true, 0o755)
	return f
}

func (f *FS) newNode(dir bool, mode uint32) *node {
	n := &node{ino: f.nextIno.Add(1) + 1, dir: dir, mode: mode}
	if dir {
		n.kids, n.dkids = map[string]*node{}, map[string]*node{}
	}
	return n
}

// Cut simulates a power failure: every file's contents and every
// directory's entries go back to what was last made durable, and files
// reachable only through entries that were never made durable are gone.
// Unmount before a cut and mount again after it: the kernel's caches must
// not outlive the "reboot".
func (f *FS) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[*node]bool{}
	var revert func(n *node)
	revert = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			n.data = bytes.Clone(n.ddata)
			return
		}
		n.kids = maps.Clone(n.dkids)
		for _, k := range n.kids {
			revert(k)
		}
	}
	revert(f.root)
}

// SyncAll makes everything durable, as a clean shutdown would; tests call
// it after preparing files.
func (f *FS) SyncAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	var walk func(n *node)
	walk = func(n *node) {
		if !n.dir {
			n.ddata = bytes.Clone(n.data)
			return
		}
		n.dkids = maps.Clone(n.kids)
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(f.root)
}

// Syncs returns how many fsync/fdatasync calls the file system has seen.
func (f *FS) Syncs() int64 { return f.syncs.Load() }

// sync makes n durable: a file's contents, or a directory's entries.
func (f *FS) sync(n *node) {
	f.syncs.Add(1)
	if f.ignoreSync.Load() {
		return
	}
	if n.dir {
		n.dkids = maps.Clone(n.kids)
	} else {
		n.ddata = bytes.Clone(n.data)
	}
}

// write stores data at off, growing the file with zeros as needed.
func (n *node) write(data []byte, off int64) {
	if end := off + int64(len(data)); end > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
	}
	copy(n.data[off:], data)
}

// truncate sets the file's size.
func (n *node) truncate(size uint64) {
	if size <= uint64(len(n.data)) {
		n.data = n.data[:size]
		return
	}
	n.data = append(n.data, make([]byte, size-uint64(len(n.data)))...)
}
