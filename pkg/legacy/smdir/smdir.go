// Package smdir reads and writes nfs-utils' statd state directory
// (/var/lib/nfs): the monitor list sm/, the notify list sm.bak/ and the
// 4-byte state file.
//
// Each file in sm/ or sm.bak/ is named after a peer's canonical name and
// holds one line per monitor record, seven space-separated fields:
//
//	0100007f 000186b5 00000003 00000010 <32 hex priv> <mon_name> <my_name>
//
// The first field is 127.0.0.1's in-memory address printed as a host-order
// integer (0100007f on little-endian hosts); prog, vers and proc are %08x;
// my_name is the rest of the line. The state file is a native-endian C int.
//
// Read is strict: a line that does not parse is an error naming the file
// and line, so an import never loses a record silently. Temporary files
// (".name.new", "name.new") and dot files are skipped and reported.
package smdir

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/store"
)

// Dir is the content of a state directory.
type Dir struct {
	Monitors []store.Monitor // sm/
	Notify   []store.Monitor // sm.bak/
	State    int32
	HasState bool
	Skipped  []string // entries not read, with the reason
}

// maxLine is nfs-utils' line buffer: longer records cannot exist.
const maxLine = 1096

// ParseLine parses one record line of the file named dnsName.
func ParseLine(dnsName, line string) (store.Monitor, error) {
	m := store.Monitor{DNSName: dnsName}
	rest := strings.TrimRight(line, "\n")
	var f [6]string
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok || f[i] == "" {
			return m, fmt.Errorf("%d fields, want 7", i+1)
		}
	}
	m.MyName = strings.TrimLeft(rest, " ")
	if m.MyName == "" {
		return m, fmt.Errorf("6 fields, want 7")
	}
	nums := []*uint32{nil, &m.Prog, &m.Vers, &m.Proc}
	for i := 0; i < 4; i++ {
		v, err := strconv.ParseUint(f[i], 16, 32)
		if err != nil || len(f[i]) > 8 {
			return m, fmt.Errorf("field %d %q is not hex", i+1, f[i])
		}
		if nums[i] != nil {
			*nums[i] = uint32(v)
		}
	}
	priv, err := hex.DecodeString(f[4])
	if err != nil || len(priv) != 16 {
		return m, fmt.Errorf("priv %q is not 32 hex digits", f[4])
	}
	copy(m.Priv[:], priv)
	m.MonName = f[5]
	return m, nil
}

// FormatLine renders a record exactly as nfs-utils writes it.
func FormatLine(m store.Monitor) string {
	addr := binary.NativeEndian.Uint32([]byte{127, 0, 0, 1})
	return fmt.Sprintf("%08x %08x %08x %08x %x %s %s\n", addr, m.Prog, m.Vers, m.Proc, m.Priv, m.MonName, m.MyName)
}

// Read loads a state directory. A missing sm.bak/ or state is fine; a
// missing sm/ is an error (statd cannot run without it).
func Read(dir string) (Dir, error) {
	var d Dir
	var err error
	if d.Monitors, err = readList(filepath.Join(dir, "sm"), &d, false); err != nil {
		return d, err
	}
	if d.Notify, err = readList(filepath.Join(dir, "sm.bak"), &d, true); err != nil {
		return d, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "state"))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return d, fmt.Errorf("smdir: %w", err)
	case len(raw) < 4:
		d.Skipped = append(d.Skipped, fmt.Sprintf("%s: %d bytes, not a state number", filepath.Join(dir, "state"), len(raw)))
	default:
		d.State, d.HasState = pickState(raw[:4]), true
	}
	return d, nil
}

// pickState reads a state written on either kind of host: the reading
// that is odd wins (statd keeps it odd); with two odd readings, the
// smaller one.
func pickState(b []byte) int32 {
	le, be := int32(binary.LittleEndian.Uint32(b)), int32(binary.BigEndian.Uint32(b))
	switch {
	case le%2 != 0 && be%2 == 0:
		return le
	case be%2 != 0 && le%2 == 0:
		return be
	case uint32(be) < uint32(le):
		return be
	}
	return le
}

func readList(dir string, d *Dir, optional bool) ([]store.Monitor, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("smdir: %w", err)
	}
	var out []store.Monitor
	for _, e := range ents {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(name, "."), strings.HasSuffix(name, ".new"):
			d.Skipped = append(d.Skipped, path+": temporary or hidden file")
			continue
		case !e.Type().IsRegular():
			d.Skipped = append(d.Skipped, path+": not a regular file")
			continue
		}
		ms, err := readFile(path, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

func readFile(path, dnsName string) ([]store.Monitor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("smdir: %w", err)
	}
	var out []store.Monitor
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, maxLine+1), maxLine+1)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		m, err := ParseLine(dnsName, sc.Text())
		if err != nil {
			return nil, fmt.Errorf("smdir: %s line %d: %v", path, n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smdir: %s: %w (lines are at most %d bytes)", path, err, maxLine)
	}
	return out, nil
}

// NameMax is the longest file name Linux file systems take (NAME_MAX).
const NameMax = 255

// ValidName returns an error when a peer's DNS name cannot be the name of
// its record file in sm/, as rpc.statd's own create would fail on it: it
// is empty, starts with a dot, holds a slash, white space or a control
// character, or is longer than NameMax bytes.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("empty peer name")
	case len(name) > NameMax:
		return fmt.Errorf("peer name of %d bytes is longer than a file name may be (%d)", len(name), NameMax)
	case strings.HasPrefix(name, "."), strings.ContainsRune(name, '/'):
		return fmt.Errorf("peer name %q cannot be a file name", name)
	}
	for _, c := range name {
		if c < 0x21 || c == 0x7f {
			return fmt.Errorf("peer name %q has white space or a control character", name)
		}
	}
	return nil
}

// Write creates sm/ and sm.bak/ (0700) and the state file in dir. Files
// are written atomically, one per DNS name, lines sorted. Without force,
// existing non-empty lists are an error; with force, their files are
// replaced and files of peers no longer listed removed. Every name is
// checked, and the target lists, before anything is written, so bad
// input leaves dir as it was.
func Write(dir string, d Dir, force bool) error {
	lists := []struct {
		sub string
		ms  []store.Monitor
	}{{"sm", d.Monitors}, {"sm.bak", d.Notify}}
	for _, l := range lists {
		for _, m := range l.ms {
			if err := ValidName(m.DNSName); err != nil {
				return fmt.Errorf("smdir: %s record for %q: %w", l.sub, m.MonName, err)
			}
		}
		sub := filepath.Join(dir, l.sub)
		if old, _ := os.ReadDir(sub); len(old) > 0 && !force {
			return fmt.Errorf("smdir: %s is not empty (use --force to replace it)", sub)
		}
	}
	for _, l := range lists {
		if err := writeList(filepath.Join(dir, l.sub), l.ms); err != nil {
			return err
		}
	}
	if !d.HasState {
		return nil
	}
	state := binary.NativeEndian.AppendUint32(nil, uint32(d.State))
	return fileutil.WriteAtomic(filepath.Join(dir, "state"), true, 0o644, func(tmp string) error {
		return os.WriteFile(tmp, state, 0o644)
	})
}

// writeList writes one list whose names Write has checked.
func writeList(dir string, ms []store.Monitor) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("smdir: %w", err)
	}
	old, _ := os.ReadDir(dir)
	files := map[string][]string{}
	for _, m := range ms {
		files[m.DNSName] = append(files[m.DNSName], FormatLine(m))
	}
	for name, lines := range files {
		sort.Strings(lines)
		data := []byte(strings.Join(lines, ""))
		err := fileutil.WriteAtomic(filepath.Join(dir, name), true, 0o600, func(tmp string) error {
			return os.WriteFile(tmp, data, 0o600)
		})
		if err != nil {
			return fmt.Errorf("smdir: %w", err)
		}
	}
	for _, e := range old {
		if _, keep := files[e.Name()]; !keep {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return fileutil.SyncDir(dir)
}
