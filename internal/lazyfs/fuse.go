package lazyfs

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mount serves f at dir (an existing directory) until Unmount. It needs
// root and /dev/fuse. Entries and attributes are not cached by the kernel,
// so every operation reaches the model.
func (f *FS) Mount(dir string) (*Mount, error) {
	zero := time.Duration(0)
	srv, err := fs.Mount(dir, &inode{fs: f, n: f.root}, &fs.Options{
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{DirectMount: true, AllowOther: true, FsName: "lazyfs", Name: "lazyfs"},
	})
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	return &Mount{srv: srv, Dir: dir}, nil
}

// Mount is one mount of the file system.
type Mount struct {
	srv *fuse.Server
	Dir string
}

// Unmount detaches the mount; every process using it must be gone.
func (m *Mount) Unmount() error {
	if err := m.srv.Unmount(); err != nil {
		return fmt.Errorf("lazyfs: unmount %s: %w", m.Dir, err)
	}
	m.srv.Wait()
	return nil
}

// inode serves one model node.
type inode struct {
	fs.Inode
	fs *FS
	n  *node
}

var (
	_ fs.NodeLookuper  = (*inode)(nil)
	_ fs.NodeGetattrer = (*inode)(nil)
	_ fs.NodeSetattrer = (*inode)(nil)
	_ fs.NodeCreater   = (*inode)(nil)
	_ fs.NodeMkdirer   = (*inode)(nil)
	_ fs.NodeUnlinker  = (*inode)(nil)
	_ fs.NodeRmdirer   = (*inode)(nil)
	_ fs.NodeRenamer   = (*inode)(nil)
	_ fs.NodeReaddirer = (*inode)(nil)
	_ fs.NodeOpener    = (*inode)(nil)
	_ fs.NodeReader    = (*inode)(nil)
	_ fs.NodeWriter    = (*inode)(nil)
	_ fs.NodeFsyncer   = (*inode)(nil)
	_ fs.NodeFlusher   = (*inode)(nil)
	_ fs.NodeLinker    = (*inode)(nil)
)

func (i *inode) child(ctx context.Context, n *node, out *fuse.EntryOut) *fs.Inode {
	fillAttr(n, &out.Attr)
	mode := uint32(fuse.S_IFREG)
	if n.dir {
		mode = fuse.S_IFDIR
	}
	return i.NewInode(ctx, &inode{fs: i.fs, n: n}, fs.StableAttr{Mode: mode, Ino: n.ino})
}

func fillAttr(n *node, a *fuse.Attr) {
	a.Ino, a.Uid, a.Gid, a.Nlink = n.ino, n.uid, n.gid, 1
	if n.dir {
		a.Mode = fuse.S_IFDIR | n.mode
		a.Nlink = 2
	} else {
		a.Mode = fuse.S_IFREG | n.mode
		a.Size = uint64(len(n.data))
		a.Blocks = (a.Size + 511) / 512
	}
}

func (i *inode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	k, ok := i.n.kids[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	return i.child(ctx, k, out), 0
}

func (i *inode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	fillAttr(i.n, &out.Attr)
	return 0
}

func (i *inode) Setattr(_ context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		if i.n.dir {
			return syscall.EISDIR
		}
		i.n.truncate(sz)
	}
	if m, ok := in.GetMode(); ok {
		i.n.mode = m & 0o7777
	}
	if u, ok := in.GetUID(); ok {
		i.n.uid = u
	}
	if g, ok := in.GetGID(); ok {
		i.n.gid = g
	}
	fillAttr(i.n, &out.Attr)
	return 0
}

// add creates a child under the lock, refusing an existing name.
func (i *inode) add(ctx context.Context, name string, dir bool, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !i.n.dir {
		return nil, syscall.ENOTDIR
	}
	if _, ok := i.n.kids[name]; ok {
		return nil, syscall.EEXIST
	}
	n := i.fs.newNode(dir, mode&0o7777)
	if c, ok := fuse.FromContext(ctx); ok {
		n.uid, n.gid = c.Uid, c.Gid
	}
	i.n.kids[name] = n
	return i.child(ctx, n, out), 0
}

func (i *inode) Create(ctx context.Context, name string, _ uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	c, errno := i.add(ctx, name, false, mode, out)
	return c, nil, 0, errno
}

func (i *inode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	return i.add(ctx, name, true, mode, out)
}

func (i *inode) Unlink(_ context.Context, name string) syscall.Errno {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	k, ok := i.n.kids[name]
	switch {
	case !ok:
		return syscall.ENOENT
	case k.dir:
		return syscall.EISDIR
	}
	delete(i.n.kids, name)
	return 0
}

func (i *inode) Rmdir(_ context.Context, name string) syscall.Errno {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	k, ok := i.n.kids[name]
	switch {
	case !ok:
		return syscall.ENOENT
	case !k.dir:
		return syscall.ENOTDIR
	case len(k.kids) > 0:
		return syscall.ENOTEMPTY
	}
	delete(i.n.kids, name)
	return 0
}

func (i *inode) Rename(_ context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags != 0 {
		return syscall.EINVAL // RENAME_NOREPLACE and RENAME_EXCHANGE are not modelled
	}
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	to := newParent.(*inode).n
	k, ok := i.n.kids[name]
	if !ok {
		return syscall.ENOENT
	}
	if old, ok := to.kids[newName]; ok {
		switch {
		case old == k:
			return 0
		case old.dir && !k.dir:
			return syscall.EISDIR
		case !old.dir && k.dir:
			return syscall.ENOTDIR
		case old.dir && len(old.kids) > 0:
			return syscall.ENOTEMPTY
		}
	}
	delete(i.n.kids, name)
	to.kids[newName] = k
	return 0
}

func (i *inode) Readdir(context.Context) (fs.DirStream, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	var list []fuse.DirEntry
	for name, k := range i.n.kids {
		mode := uint32(fuse.S_IFREG)
		if k.dir {
			mode = fuse.S_IFDIR
		}
		list = append(list, fuse.DirEntry{Name: name, Ino: k.ino, Mode: mode})
	}
	sort.Slice(list, func(a, b int) bool { return list[a].Name < list[b].Name })
	return fs.NewListDirStream(list), 0
}

func (i *inode) Open(context.Context, uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, 0
}

func (i *inode) Read(_ context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	if off >= int64(len(i.n.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(i.n.data)))
	return fuse.ReadResultData(append([]byte(nil), i.n.data[off:end]...)), 0
}

func (i *inode) Write(_ context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	i.n.write(data, off)
	return uint32(len(data)), 0
}

// Fsync serves fsync and fdatasync of files and directories alike.
func (i *inode) Fsync(context.Context, fs.FileHandle, uint32) syscall.Errno {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	i.fs.sync(i.n)
	return 0
}

func (i *inode) Flush(context.Context, fs.FileHandle) syscall.Errno { return 0 }

// Link adds a hard link: one more entry for the same file.
func (i *inode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	i.fs.mu.Lock()
	defer i.fs.mu.Unlock()
	t := target.(*inode).n
	switch _, exists := i.n.kids[name]; {
	case t.dir:
		return nil, syscall.EPERM
	case exists:
		return nil, syscall.EEXIST
	}
	i.n.kids[name] = t
	return i.child(ctx, t, out), 0
}
