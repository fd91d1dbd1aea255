package daemon

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// FreeBSD's struct kinfo_proc (sys/user.h) on its 64-bit architectures:
// ki_structsize is the first int, ki_pid sits after two ints and eight
// pointers, and ki_comm[COMMLEN+1] after the fixed fields before it. The
// head of the structure is stable across releases (its size is 1088).
const (
	kinfoSizeOff = 0
	kinfoPidOff  = 72
	kinfoCommOff = 447
	kinfoCommLen = 20
)

// kinfoProc is the part of a kinfo_proc that process checks need.
type kinfoProc struct {
	Pid  int32
	Comm string
}

// parseKinfoProcs decodes the array of struct kinfo_proc that the
// kern.proc.proc sysctl returns, each record ki_structsize bytes long. It
// is plain byte parsing so that Linux tests can run it on fake tables.
func parseKinfoProcs(buf []byte, order binary.ByteOrder) ([]kinfoProc, error) {
	var out []kinfoProc
	for off := 0; off < len(buf); {
		if len(buf)-off < 4 {
			return nil, fmt.Errorf("kinfo_proc table: %d stray bytes at offset %d", len(buf)-off, off)
		}
		size := int(int32(order.Uint32(buf[off+kinfoSizeOff:])))
		if size < kinfoCommOff+kinfoCommLen || size > len(buf)-off {
			return nil, fmt.Errorf("kinfo_proc table: record at offset %d has size %d (table %d bytes)", off, size, len(buf))
		}
		rec := buf[off : off+size]
		comm := rec[kinfoCommOff : kinfoCommOff+kinfoCommLen]
		if i := bytes.IndexByte(comm, 0); i >= 0 {
			comm = comm[:i]
		}
		out = append(out, kinfoProc{Pid: int32(order.Uint32(rec[kinfoPidOff:])), Comm: string(comm)})
		off += size
	}
	return out, nil
}
