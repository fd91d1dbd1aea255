package stablerestart

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Kernel constants (sys/fs/nfs).
const (
	HeaderSize   = 8     // struct nfsf_rec
	MaxBoots     = 10000 // NFSNSF_MAXNUMBOOTS
	MaxIDLen     = 1024  // NFSV4_OPAQUELIMIT
	RecordHeader = 3     // u16 len + u8 flag, as written (sizeof(nfst_rec) - 1)
	LeaseDelta   = 15    // NFSRV_LEASEDELTA, seconds added to the lease for grace
	readBuf      = RecordHeader + MaxIDLen
)

// Record flags.
const (
	FlagNewState  = 0x1 // on disk: client got state
	FlagRevoke    = 0x2 // on disk: client's state was revoked
	FlagGotState  = 0x4 // kernel memory only
	FlagReclaimed = 0x8 // kernel memory only
)

// ByteOrder reads and appends integers (binary.LittleEndian, BigEndian).
type ByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// Layout is an architecture's byte order and time_t size.
type Layout struct {
	Name     string
	TimeSize int // 4 or 8
	Order    ByteOrder
}

// Layouts FreeBSD uses, by architecture name (uname -p).
var archs = map[string]Layout{
	"amd64":       {"amd64", 8, binary.LittleEndian},
	"arm64":       {"arm64", 8, binary.LittleEndian},
	"aarch64":     {"arm64", 8, binary.LittleEndian},
	"riscv64":     {"riscv64", 8, binary.LittleEndian},
	"armv7":       {"armv7", 8, binary.LittleEndian},
	"powerpc64le": {"powerpc64le", 8, binary.LittleEndian},
	"powerpc64":   {"powerpc64", 8, binary.BigEndian},
	"powerpc":     {"powerpc", 8, binary.BigEndian},
	"i386":        {"i386", 4, binary.LittleEndian},
}

// Arch returns the layout of a FreeBSD architecture.
func Arch(name string) (Layout, error) {
	if l, ok := archs[strings.ToLower(name)]; ok {
		return l, nil
	}
	var names []string
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	return Layout{}, fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(names, ", "))
}

// Status is how the kernel treats a file at boot.
type Status int

// Statuses.
const (
	Valid   Status = iota // read; grace for the clients it lists
	NoGrace               // header unusable: ignored, no grace, no history
	Corrupt               // records corrupt: everything discarded, no grace
)

func (s Status) String() string {
	return [...]string{"valid", "no-grace", "corrupt"}[s]
}

// Problem is why a file is not Valid, and where.
type Problem struct {
	Offset int64
	Msg    string
}

func (p *Problem) Error() string { return fmt.Sprintf("offset %d: %s", p.Offset, p.Msg) }

// Record is one client record as stored. ID aliases the decoded bytes.
type Record struct {
	Offset int64
	Flag   byte
	ID     []byte
}

// File is a decoded stable restart file. When Status is not Valid it
// holds what was read before the problem.
type File struct {
	Layout   Layout
	Size     int64
	Lease    uint32
	NumBoots uint32
	Boots    []int64 // newest first
	Records  []Record
	Status   Status
	Problem  *Problem // nil when Valid
}

// RecordsStart is the offset of the first record.
func (f *File) RecordsStart() int64 { return HeaderSize + int64(f.NumBoots)*int64(f.Layout.TimeSize) }

// Decode parses data exactly as the FreeBSD kernel does at boot. It never
// fails: the verdict is in Status and Problem. Memory is bounded by the
// input: at most MaxBoots boot times and one Record per 3 input bytes.
func Decode(data []byte, l Layout) *File {
	f := &File{Layout: l, Size: int64(len(data))}
	bad := func(s Status, off int64, format string, args ...any) *File {
		f.Status, f.Problem = s, &Problem{Offset: off, Msg: fmt.Sprintf(format, args...)}
		return f
	}
	if len(data) == 0 {
		return bad(NoGrace, 0, "file is empty: no history, no grace")
	}
	if len(data) < HeaderSize {
		return bad(NoGrace, 0, "header truncated: %d of %d bytes", len(data), HeaderSize)
	}
	f.Lease, f.NumBoots = l.Order.Uint32(data[0:]), l.Order.Uint32(data[4:])
	switch {
	case f.NumBoots == 0:
		return bad(NoGrace, 4, "numboots is 0: the kernel ignores the file")
	case f.NumBoots > MaxBoots:
		return bad(NoGrace, 4, "numboots %d exceeds %d: the kernel ignores the file", f.NumBoots, MaxBoots)
	}
	start := f.RecordsStart()
	if int64(len(data)) < start {
		return bad(NoGrace, HeaderSize, "boot-time list truncated: %d boot times need %d bytes, %d present",
			f.NumBoots, start-HeaderSize, int64(len(data))-HeaderSize)
	}
	f.Boots = make([]int64, f.NumBoots)
	for i := range f.Boots {
		f.Boots[i] = readTime(data[HeaderSize+i*l.TimeSize:], l)
	}
	return decodeRecords(f, data, start, bad)
}

func decodeRecords(f *File, data []byte, off int64, bad func(Status, int64, string, ...any) *File) *File {
	l := f.Layout
	for off < int64(len(data)) {
		rem := int64(len(data)) - off
		if rem < RecordHeader+1 {
			if rem == RecordHeader && l.Order.Uint16(data[off:]) == 0 {
				return bad(Corrupt, off, "trailing record with a zero-length id: the kernel reads it as corruption")
			}
			return bad(Corrupt, off, "%d trailing bytes, shorter than a record header", rem)
		}
		n := int64(l.Order.Uint16(data[off:]))
		if avail := min(rem, readBuf); avail < RecordHeader+n {
			if n > MaxIDLen {
				return bad(Corrupt, off, "record id length %d exceeds %d", n, MaxIDLen)
			}
			return bad(Corrupt, off, "record of %d id bytes needs %d bytes, %d left", n, RecordHeader+n, rem)
		}
		f.Records = append(f.Records, Record{Offset: off, Flag: data[off+2], ID: data[off+RecordHeader : off+RecordHeader+n]})
		off += RecordHeader + n
	}
	f.Status = Valid
	return f
}

func readTime(b []byte, l Layout) int64 {
	if l.TimeSize == 4 {
		return int64(int32(l.Order.Uint32(b)))
	}
	return int64(l.Order.Uint64(b))
}

// Encode writes f's header, boot times and records in its layout. For a
// Valid file decoded from bytes b, Encode returns b exactly.
func Encode(f *File) []byte {
	l := f.Layout
	size := HeaderSize + len(f.Boots)*l.TimeSize
	for _, r := range f.Records {
		size += RecordHeader + len(r.ID)
	}
	out := make([]byte, HeaderSize, size)
	l.Order.PutUint32(out[0:], f.Lease)
	l.Order.PutUint32(out[4:], uint32(len(f.Boots)))
	for _, t := range f.Boots {
		if l.TimeSize == 4 {
			out = l.Order.AppendUint32(out, uint32(int32(t)))
		} else {
			out = l.Order.AppendUint64(out, uint64(t))
		}
	}
	for _, r := range f.Records {
		out = l.Order.AppendUint16(out, uint16(len(r.ID)))
		out = append(append(out, r.Flag), r.ID...)
	}
	return out
}
