package daemon

import (
	"encoding/binary"
	"strings"
	"testing"
)

// fakeKinfo builds one FreeBSD amd64 struct kinfo_proc (1088 bytes) with
// the fields a process check reads, in the given byte order.
func fakeKinfo(order binary.ByteOrder, pid int32, comm string) []byte {
	rec := make([]byte, 1088)
	order.PutUint32(rec[0:], 1088)
	order.PutUint32(rec[72:], uint32(pid))
	order.PutUint32(rec[76:], 1) // ki_ppid, to show neighbours are ignored
	copy(rec[447:467], comm)
	rec[467] = 'X' // ki_emul follows; a full-length comm has no NUL
	return rec
}

func TestParseKinfoProcs(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		var table []byte
		table = append(table, fakeKinfo(order, 1, "init")...)
		table = append(table, fakeKinfo(order, 812, "nfsd")...)
		table = append(table, fakeKinfo(order, 9999, strings.Repeat("n", 19))...)
		got, err := parseKinfoProcs(table, order)
		if err != nil {
			t.Fatalf("%v: %v", order, err)
		}
		want := []kinfoProc{{1, "init"}, {812, "nfsd"}, {9999, strings.Repeat("n", 19)}}
		if len(got) != len(want) {
			t.Fatalf("%v: got %v, want %v", order, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%v: record %d = %+v, want %+v", order, i, got[i], want[i])
			}
		}
	}
}

func TestParseKinfoProcsRejects(t *testing.T) {
	le := binary.LittleEndian
	good := fakeKinfo(le, 5, "nfsd")
	small := fakeKinfo(le, 5, "nfsd")
	le.PutUint32(small[0:], 100)
	cases := map[string][]byte{
		"truncated record": good[:1000],
		"stray bytes":      append(append([]byte{}, good...), 1, 2),
		"size too small":   small,
		"size zero":        make([]byte, 1088),
	}
	for name, buf := range cases {
		if got, err := parseKinfoProcs(buf, le); err == nil {
			t.Errorf("%s: accepted as %v", name, got)
		}
	}
	if got, err := parseKinfoProcs(nil, le); err != nil || len(got) != 0 {
		t.Errorf("empty table: %v, %v", got, err)
	}
}

func FuzzParseKinfoProcs(f *testing.F) {
	f.Add(fakeKinfo(binary.LittleEndian, 1, "init"))
	f.Add([]byte{0x40, 0x04, 0, 0})
	f.Fuzz(func(t *testing.T, buf []byte) {
		procs, err := parseKinfoProcs(buf, binary.LittleEndian)
		if err != nil {
			return
		}
		// Round trip: re-encoding what was read reads back the same.
		var again []byte
		for _, p := range procs {
			again = append(again, fakeKinfo(binary.LittleEndian, p.Pid, p.Comm)...)
		}
		back, err := parseKinfoProcs(again, binary.LittleEndian)
		if err != nil || len(back) != len(procs) {
			t.Fatalf("re-encoded table: %v, %d records, want %d", err, len(back), len(procs))
		}
		for i := range procs {
			if back[i] != procs[i] {
				t.Fatalf("record %d: %+v became %+v", i, procs[i], back[i])
			}
		}
	})
}
