package applets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"nfsrecover/pkg/fileutil"
)

// install implements --install [-s] [DIR].
func install(args []string, stdout, stderr io.Writer) int {
	symlink, dir := false, ""
	for _, a := range args {
		switch {
		case a == "-s":
			symlink = true
		case dir == "" && len(a) > 0 && a[0] != '-':
			dir = a
		default:
			fmt.Fprintf(stderr, "nfsrecover: --install: unexpected argument %q (usage: --install [-s] [DIR])\n", a)
			return 1
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "nfsrecover: --install: cannot find this program: %v\n", err)
		return 1
	}
	status := 0
	for _, a := range Table {
		for _, l := range a.Links {
			d := a.Dir
			if dir != "" {
				d = dir
			}
			install := installLink
			if a.Install == Copy {
				install = installCopy
			}
			msg, err := install(exe, filepath.Join(d, l), symlink)
			if err != nil {
				fmt.Fprintf(stderr, "nfsrecover: --install: %v\n", err)
				status = 1
				continue
			}
			fmt.Fprintln(stdout, msg)
		}
	}
	return status
}

// installLink makes link point at exe. A link that already does is fine;
// anything else at that path is left alone and reported.
func installLink(exe, link string, symlink bool) (string, error) {
	if st, err := os.Lstat(link); err == nil {
		if isOurs(exe, link, st) {
			return link + ": already installed", nil
		}
		return "", fmt.Errorf("%s exists and is not a link to %s; not replacing it", link, exe)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	if symlink {
		if err := os.Symlink(exe, link); err != nil {
			return "", err
		}
		return link + " -> " + exe, nil
	}
	if err := os.Link(exe, link); err != nil {
		return "", fmt.Errorf("%w (use -s for symbolic links across file systems)", err)
	}
	return link + ": hard link to " + exe, nil
}

func isOurs(exe, link string, st os.FileInfo) bool {
	want, err := os.Stat(exe)
	if err != nil {
		return false
	}
	if st.Mode()&os.ModeSymlink != 0 {
		got, err := os.Stat(link) // follows the chain
		return err == nil && os.SameFile(got, want)
	}
	return os.SameFile(st, want)
}

// installCopy makes path a file of its own holding this program (see
// Copy). An identical copy is fine; a link to this program is replaced by
// a copy; anything else is left alone and reported.
func installCopy(exe, path string, _ bool) (string, error) {
	if st, err := os.Lstat(path); err == nil {
		switch {
		case !isOurs(exe, path, st) && sameContent(exe, path):
			return path + ": already installed (a copy)", nil
		case !isOurs(exe, path, st):
			return "", fmt.Errorf("%s exists and is not a copy of %s; not replacing it", path, exe)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	err := fileutil.WriteAtomic(path, true, 0o755, func(tmp string) error {
		data, err := os.ReadFile(exe)
		if err != nil {
			return err
		}
		return os.WriteFile(tmp, data, 0o755)
	})
	if err != nil {
		return "", err
	}
	return path + ": copy of " + exe + " (a file of its own: killall by path must not find the other applets)", nil
}

// sameContent reports whether two files hold the same bytes.
func sameContent(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
