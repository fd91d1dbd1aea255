// Package v4recovery reads and writes the Linux kernel's legacy NFSv4
// client-tracking directory (default /var/lib/nfs/v4recovery): one
// subdirectory per client, named by the md5 of the client id in 32
// lowercase hex digits. The id cannot be recovered from the name, so an
// import yields hash-only records.
//
// The kernel only checks that a name is 32 characters long. Read is
// stricter: it keeps directories whose names are 32 lowercase hex digits
// and reports every other entry (with the reason) so the operator sees it.
package v4recovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/store"
)

// DefaultDir is the kernel's default recovery directory.
const DefaultDir = "/var/lib/nfs/v4recovery"

// Skipped is an entry Read did not import, and why.
type Skipped struct {
	Name   string
	Reason string
}

// Scan is the result of reading a recovery directory.
type Scan struct {
	Names   []string // valid client names, sorted
	Skipped []Skipped
}

// Read lists the client directories in dir.
func Read(dir string) (Scan, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return Scan{}, fmt.Errorf("v4recovery: %w", err)
	}
	var s Scan
	for _, e := range ents {
		if reason := Classify(e.Name(), e.IsDir()); reason != "" {
			s.Skipped = append(s.Skipped, Skipped{e.Name(), reason})
			continue
		}
		s.Names = append(s.Names, e.Name())
	}
	return s, nil
}

// Classify returns why an entry is not a client directory, or "".
func Classify(name string, isDir bool) string {
	switch {
	case !isDir:
		return "not a directory"
	case len(name) != 32:
		return fmt.Sprintf("name is %d characters, not 32 (the kernel skips it too)", len(name))
	case store.ValidHashName(strings.ToLower(name)) && !store.ValidHashName(name):
		return "uppercase hex: the kernel never creates such names"
	case !store.ValidHashName(name):
		return "not a hex md5 name"
	}
	return ""
}

// Write creates a client directory (mode 0700) for every name in dir,
// creating dir (0700) if needed, and fsyncs dir. Existing directories are
// kept; a name that exists as something else is an error.
func Write(dir string, names []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("v4recovery: %w", err)
	}
	for _, n := range names {
		if !store.ValidHashName(n) {
			return fmt.Errorf("v4recovery: refusing to create %q: not 32 lowercase hex digits", n)
		}
		p := filepath.Join(dir, n)
		err := os.Mkdir(p, 0o700)
		if errors.Is(err, os.ErrExist) {
			if st, serr := os.Stat(p); serr == nil && st.IsDir() {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("v4recovery: %w", err)
		}
	}
	if err := fileutil.SyncDir(dir); err != nil {
		return fmt.Errorf("v4recovery: %w", err)
	}
	return nil
}
