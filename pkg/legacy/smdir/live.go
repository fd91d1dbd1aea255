package smdir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/store"
)

// This file holds what rpc.statd and sm-notify do to a state directory
// while they run, as nfs-utils does it, but durably: every change is
// fsync'd, and so is its directory.

// File modes as nfs-utils 2.6.2 leaves them (the mirror test compares them
// with the real rpc.statd's): a record file is created 0600, and a
// rewritten one is 0640 (0644 under rpc.statd's umask 007).
const (
	modeNew       = 0o600
	modeRewritten = 0o640
	modeState     = 0o644
)

// ReadLive loads a state directory as rpc.statd and sm-notify do at
// start, tolerantly: a file with a line that does not parse is skipped
// whole (nfs-utils logs "Failed to read monitor data"), an empty file
// holds no record, and the state is the native-endian int nfs-utils
// reads. Everything not read is listed in Skipped.
func ReadLive(dir string) Dir {
	var d Dir
	d.Monitors = readLiveList(filepath.Join(dir, "sm"), &d)
	d.Notify = readLiveList(filepath.Join(dir, "sm.bak"), &d)
	path := filepath.Join(dir, "state")
	raw, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %v", path, err))
	case len(raw) < 4:
		d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %d bytes, not a state number", path, len(raw)))
	default:
		d.State, d.HasState = int32(binary.NativeEndian.Uint32(raw)), true
	}
	return d
}

func readLiveList(dir string, d *Dir) []store.Monitor {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %v", dir, err))
		}
		return nil
	}
	var out []store.Monitor
	for _, e := range ents {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".new") || !e.Type().IsRegular() {
			continue
		}
		ms, err := readFile(path, name)
		if err != nil {
			d.Skipped = append(d.Skipped, err.Error())
			continue
		}
		out = append(out, ms...)
	}
	return out
}

// HasState reports whether dir has a state file (without reading the
// record files).
func HasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "state"))
	return err == nil
}

// HasAny reports whether dir holds NSM state of its own: a record file
// (even an empty one) in sm/ or sm.bak/, or a state file.
func HasAny(dir string) bool {
	if HasState(dir) {
		return true
	}
	for _, sub := range []string{"sm", "sm.bak"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".new") {
				return true
			}
		}
	}
	return false
}

// sameRecord is nfs-utils' identity of a line within a file: the exact
// mon_name and my_name.
func sameRecord(a, b store.Monitor) bool { return a.MonName == b.MonName && a.MyName == b.MyName }

// AddRecord writes m into sub/<m.DNSName>, sub being "sm" or "sm.bak",
// replacing a line with the same mon_name and my_name, as rpc.statd does
// for SM_MON.
func AddRecord(dir, sub string, m store.Monitor) error {
	if err := ValidName(m.DNSName); err != nil {
		return fmt.Errorf("smdir: %w", err)
	}
	list, err := ensureList(dir, sub)
	if err != nil {
		return err
	}
	path := filepath.Join(list, m.DNSName)
	old, err := readFile(path, m.DNSName)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return createRecord(path, FormatLine(m))
	case err != nil:
		return err
	}
	// As rpc.statd: the line with the same names goes first (the file
	// with it when it was the only one), then the new line is appended,
	// or written to a new file.
	var lines []string
	for _, o := range old {
		if !sameRecord(o, m) {
			lines = append(lines, FormatLine(o))
		}
	}
	if len(lines) == 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("smdir: %w", err)
		}
		return createRecord(path, FormatLine(m))
	}
	return rewrite(path, append(lines, FormatLine(m)))
}

// ensureList returns dir/sub, creating it (0700, owned like dir) durably
// when it is missing: its entry in dir must survive a power cut as much
// as the records in it.
func ensureList(dir, sub string) (string, error) {
	list := filepath.Join(dir, sub)
	if _, err := os.Stat(list); err == nil {
		return list, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("smdir: %w", err)
	}
	if err := os.Mkdir(list, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("smdir: %w", err)
	}
	if err := ownLikeDir(list); err != nil {
		return "", fmt.Errorf("smdir: %w", err)
	}
	return list, fileutil.SyncDir(dir)
}

// createRecord writes a new record file, durably.
func createRecord(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, modeNew)
	if err != nil {
		return fmt.Errorf("smdir: %w", err)
	}
	_, err = f.WriteString(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ownLikeDir(path)
	}
	if err == nil {
		err = fileutil.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("smdir: %s: %w", path, err)
	}
	return nil
}

// ownLikeDir gives a file the owner of its directory when root writes it,
// so that statd and sm-notify, which run as the owner of sm/, can rewrite
// what was written before they dropped privileges.
func ownLikeDir(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := fileutil.Owner(filepath.Dir(path))
	if err != nil || uid == 0 {
		return err
	}
	return os.Lchown(path, uid, gid)
}

// rewrite replaces path with lines, atomically and durably.
func rewrite(path string, lines []string) error {
	if err := writeSynced(path, []byte(strings.Join(lines, ""))); err != nil {
		return err
	}
	return fileutil.SyncDir(filepath.Dir(path))
}

// RemoveRecord removes m's line (same mon_name and my_name) from
// sub/<m.DNSName>, sub being "sm" or "sm.bak"; a file left empty is
// removed. A missing file or line is not an error.
func RemoveRecord(dir, sub string, m store.Monitor) error {
	return RemoveRecords(dir, sub, []store.Monitor{m})
}

// RemoveRecords removes many records at once: each file is rewritten
// once, and the directory is synced once, so that sm-notify's removals of
// hundreds of answering peers cost a few fsyncs, not hundreds.
func RemoveRecords(dir, sub string, ms []store.Monitor) error {
	byFile := map[string][]store.Monitor{}
	for _, m := range ms {
		byFile[m.DNSName] = append(byFile[m.DNSName], m)
	}
	changed := false
	for name, gone := range byFile {
		c, err := removeLines(filepath.Join(dir, sub, name), name, gone)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if !changed {
		return nil
	}
	return fileutil.SyncDir(filepath.Join(dir, sub))
}

// removeLines rewrites one record file without the lines of gone (or
// removes it when none is left), leaving the directory to be synced; it
// reports whether it changed anything.
func removeLines(path, name string, gone []store.Monitor) (bool, error) {
	old, err := readFile(path, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	var lines []string
	for _, o := range old {
		if !slices.ContainsFunc(gone, func(g store.Monitor) bool { return sameRecord(o, g) }) {
			lines = append(lines, FormatLine(o))
		}
	}
	if len(lines) == len(old) && len(old) > 0 {
		return false, nil
	}
	if len(lines) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return false, fmt.Errorf("smdir: %w", err)
		}
		return true, nil
	}
	return true, writeSynced(path, []byte(strings.Join(lines, "")))
}

// writeSynced replaces path through a synced temporary file and a rename;
// the caller syncs the directory.
func writeSynced(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, modeRewritten)
	if err != nil {
		return fmt.Errorf("smdir: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(modeRewritten)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ownLikeDir(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("smdir: %s: %w", path, err)
	}
	return nil
}

// Retire moves every record file from sm/ to sm.bak/ (a file already
// there is replaced), as sm-notify does at start.
func Retire(dir string) error {
	sm, bak := filepath.Join(dir, "sm"), filepath.Join(dir, "sm.bak")
	ents, err := os.ReadDir(sm)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("smdir: %w", err)
	}
	if _, err := ensureList(dir, "sm.bak"); err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.Rename(filepath.Join(sm, n), filepath.Join(bak, n)); err != nil {
			return fmt.Errorf("smdir: retire %s: %w", n, err)
		}
	}
	if err := fileutil.SyncDir(bak); err != nil {
		return err
	}
	return fileutil.SyncDir(sm)
}

// WriteState stores the state as the native-endian int nfs-utils reads,
// atomically and durably.
func WriteState(dir string, state int32) error {
	b := binary.NativeEndian.AppendUint32(nil, uint32(state))
	return fileutil.WriteAtomic(filepath.Join(dir, "state"), true, modeState, func(tmp string) error {
		if err := os.WriteFile(tmp, b, modeState); err != nil {
			return err
		}
		return ownLikeDir(tmp)
	})
}
