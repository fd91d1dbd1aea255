package cld

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// spec builds a message by hand from the layout in the spec
// (nfsdcld.md B1, sizes and offsets checked with gcc there): header at
// 0/1/2/4, cn_len at 8, cn_id at 10, cp_len at 1034, cp_data at 1035.
func spec(size int, vers, cmd uint8, status int16, xid uint32, fill func(b []byte)) []byte {
	b := make([]byte, size)
	b[0], b[1] = vers, cmd
	binary.NativeEndian.PutUint16(b[2:], uint16(status))
	binary.NativeEndian.PutUint32(b[4:], xid)
	if fill != nil {
		fill(b)
	}
	return b
}

func named(name string, princ []byte) func([]byte) {
	return func(b []byte) {
		binary.NativeEndian.PutUint16(b[8:], uint16(len(name)))
		copy(b[10:], name)
		if princ != nil {
			b[1034] = byte(len(princ))
			copy(b[1035:], princ)
		}
	}
}

func TestLayout(t *testing.T) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	cases := []struct {
		name string
		msg  Msg
		want []byte
	}{
		{"v1 create", Msg{Vers: 1, Cmd: Create, XID: 7, Name: []byte("clientA")}, spec(1034, 1, 0, 0, 7, named("clientA", nil))},
		{"v2 create with princhash", Msg{Vers: 2, Cmd: Create, XID: 8, Name: []byte("clientB"), PrincHash: hash}, spec(1067, 2, 0, 0, 8, named("clientB", hash))},
		{"v2 create without", Msg{Vers: 2, Cmd: Create, XID: 9, Name: []byte("c")}, spec(1067, 2, 0, 0, 9, named("c", []byte{}))},
		{"v2 remove", Msg{Vers: 2, Cmd: Remove, XID: 10, Name: []byte("c")}, spec(1067, 2, 1, 0, 10, named("c", nil))},
		{"getversion reply", Msg{Vers: 1, Cmd: GetVersion, XID: 0, Version: 2}, spec(1034, 1, 5, 0, 0, func(b []byte) { b[8] = 2 })},
		{"gracestart stream", Msg{Vers: 2, Cmd: GraceStart, Status: StatusEINPROGRESS, XID: 3, Name: []byte("x"), PrincHash: hash[:1]},
			spec(1067, 2, 4, -115, 3, named("x", hash[:1]))},
		{"gracedone v0", Msg{Vers: 1, Cmd: GraceDone, XID: 4, GraceTime: -2},
			spec(1034, 1, 3, 0, 4, func(b []byte) { binary.NativeEndian.PutUint64(b[8:], uint64(1<<64-2)) })},
		{"unknown command reply", Msg{Vers: 1, Cmd: 9, Status: StatusEOPNOTSUPP, XID: 5}, spec(1034, 1, 9, -95, 5, nil)},
	}
	for _, c := range cases {
		got, err := Encode(c.msg)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: encode %v, differs from the spec layout", c.name, err)
			continue
		}
		back, err := Decode(c.want)
		if err != nil {
			t.Errorf("%s: decode: %v", c.name, err)
			continue
		}
		if c.msg.Name == nil && hasName(c.msg.Cmd) {
			c.msg.Name = []byte{}
		}
		if hasPrincHash(c.msg.Vers, c.msg.Cmd) && c.msg.PrincHash == nil {
			c.msg.PrincHash = []byte{}
		}
		if !reflect.DeepEqual(back, c.msg) {
			t.Errorf("%s: decoded %+v, want %+v", c.name, back, c.msg)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	long := spec(1034, 1, Create, 0, 1, nil)
	binary.NativeEndian.PutUint16(long[8:], 1025)
	bigHash := spec(1067, 2, Create, 0, 1, named("a", nil))
	bigHash[1034] = 33
	cases := map[string][]byte{
		"empty":               nil,
		"short header":        {1, 0, 0},
		"version 3":           spec(1034, 3, 0, 0, 1, nil),
		"v1 of v2's size":     spec(1067, 1, 0, 0, 1, nil),
		"v2 of v1's size":     spec(1034, 2, 0, 0, 1, nil),
		"truncated":           spec(1034, 1, 0, 0, 1, nil)[:1000],
		"name over 1024":      long,
		"principal hash > 32": bigHash,
	}
	for name, b := range cases {
		if m, err := Decode(b); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: decoded as %+v (%v)", name, m, err)
		}
	}
	if _, err := Encode(Msg{Vers: 1, Cmd: Create, Name: []byte("a"), PrincHash: []byte{1}}); err == nil {
		t.Error("a v1 message with a principal hash was encoded")
	}
}

// FuzzDecode: upcalls come from the kernel and, through a FUSE test pipe,
// from anything. What decodes encodes to a message of the right size that
// decodes the same.
func FuzzDecode(f *testing.F) {
	for _, m := range []Msg{{Vers: 1, Cmd: GetVersion}, {Vers: 2, Cmd: Create, Name: []byte("abc"), PrincHash: []byte{1, 2}},
		{Vers: 1, Cmd: GraceDone, GraceTime: 1700000000}, {Vers: 2, Cmd: GraceStart}} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(m)
		if err != nil || len(again) != len(b) {
			t.Fatalf("re-encoding %+v: %v (%d bytes, want %d)", m, err, len(again), len(b))
		}
		back, err := Decode(again)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip: %+v -> %+v (%v)", m, back, err)
		}
	})
}
