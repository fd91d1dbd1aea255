// Package fileutil holds the durable file operations every legacy exporter
// needs: write to a temporary file, fsync, rename, fsync the directory.
package fileutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrExists is returned when the target exists and overwrite is false.
var ErrExists = errors.New("already exists (use --force to replace it)")

// WriteAtomic creates path by letting fill write a temporary file beside
// it, then fsyncs it, sets mode, renames it over path and fsyncs the
// directory. On any error the temporary file is removed and path is left
// as it was. Without overwrite an existing path is an error.
func WriteAtomic(path string, overwrite bool, mode os.FileMode, fill func(tmp string) error) error {
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncChmod(tmp, mode); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if !overwrite {
		// Link fails if path appeared meanwhile: never clobber silently.
		if err := os.Link(tmp, path); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		os.Remove(tmp)
	} else if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	ok = true
	return SyncDir(dir)
}

func syncChmod(path string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	return f.Sync()
}

// SyncDir fsyncs a directory so entries created in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Owner returns the uid and gid that own path.
func Owner(path string) (uid, gid int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no ownership information", path)
	}
	return int(sys.Uid), int(sys.Gid), nil
}
