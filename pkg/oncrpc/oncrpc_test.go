package oncrpc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The spec's worked example (nsm.md §2.4): SM_NOTIFY from srv1.example.com,
// state 7, AUTH_NONE, and its 24-byte void reply.
const notifyCall = `12345678 00000000 00000002 000186b8 00000001 00000006
	00000000 00000000 00000000 00000000
	00000010 73727631 2e657861 6d706c65 2e636f6d 00000007`
const notifyReply = `12345678 00000001 00000000 00000000 00000000 00000000`

func TestWorkedExample(t *testing.T) {
	args := unhex(t, "00000010 73727631 2e657861 6d706c65 2e636f6d 00000007")
	call := AppendCall(nil, 0x12345678, 100024, 1, 6, Auth{}, args)
	if !bytes.Equal(call, unhex(t, notifyCall)) {
		t.Fatalf("call %x", call)
	}
	h, err := DecodeCall(call)
	if err != nil || h.XID != 0x12345678 || h.Prog != 100024 || h.Vers != 1 || h.Proc != 6 || !bytes.Equal(h.Args, args) {
		t.Fatalf("decode %+v %v", h, err)
	}
	reply := AppendAccepted(nil, 0x12345678, Success, nil, 0, 0)
	if !bytes.Equal(reply, unhex(t, notifyReply)) || len(reply) != 24 {
		t.Fatalf("reply %x", reply)
	}
	r, err := DecodeReply(reply)
	if err != nil || !r.Accepted || r.AcceptStat != Success || len(r.Results) != 0 {
		t.Fatalf("decode reply %+v %v", r, err)
	}
}

func TestDecodeCallErrors(t *testing.T) {
	good := unhex(t, notifyCall)
	cases := []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"short header", good[:20], ErrShort},
		{"reply not call", unhex(t, notifyReply), ErrNotCall},
		{"rpc version 3", append(append(append([]byte{}, good[:8]...), 0, 0, 0, 3), good[12:]...), ErrVersion},
		{"auth too long", append(append([]byte{}, good[:28]...), 0, 0, 1, 0x91), ErrAuthLen},
		{"auth body truncated", append(append([]byte{}, good[:28]...), 0, 0, 0, 8, 1, 2), ErrShort},
	}
	for _, c := range cases {
		if _, err := DecodeCall(c.b); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	// AUTH_SYS credentials are carried, padded, and skipped.
	cred := Auth{Flavor: AuthSys, Body: []byte{0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c', 0}}
	h, err := DecodeCall(AppendCall(nil, 1, 100024, 1, 0, cred, []byte{9, 9, 9, 9}))
	if err != nil || h.Cred.Flavor != AuthSys || !bytes.Equal(h.Args, []byte{9, 9, 9, 9}) {
		t.Errorf("auth_sys call: %+v %v", h, err)
	}
}

func TestRejectionsRoundTrip(t *testing.T) {
	cases := []struct {
		b    []byte
		want ReplyHeader
	}{
		{AppendAccepted(nil, 7, ProgMismatch, nil, 1, 1), ReplyHeader{XID: 7, Accepted: true, AcceptStat: ProgMismatch, Low: 1, High: 1}},
		{AppendAccepted(nil, 7, ProcUnavail, nil, 0, 0), ReplyHeader{XID: 7, Accepted: true, AcceptStat: ProcUnavail}},
		{AppendAccepted(nil, 7, GarbageArgs, nil, 0, 0), ReplyHeader{XID: 7, Accepted: true, AcceptStat: GarbageArgs}},
		{AppendDenied(nil, 7, RPCMismatch, 0), ReplyHeader{XID: 7, RejectStat: RPCMismatch, Low: 2, High: 2}},
		{AppendDenied(nil, 7, AuthError, AuthBadCred), ReplyHeader{XID: 7, RejectStat: AuthError, AuthStat: AuthBadCred}},
	}
	for _, c := range cases {
		got, err := DecodeReply(c.b)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%x: %+v %v, want %+v", c.b, got, err, c.want)
		}
	}
}

func TestRecordMarking(t *testing.T) {
	msg := []byte("hello, multi-fragment world")
	// Three fragments: 5, 10 and the rest (last).
	var stream []byte
	stream = append(stream, 0, 0, 0, 5)
	stream = append(stream, msg[:5]...)
	stream = append(stream, 0, 0, 0, 10)
	stream = append(stream, msg[5:15]...)
	stream = AppendRecordMark(stream, msg[15:])
	stream = AppendRecordMark(stream, []byte("second"))
	r := bytes.NewReader(stream)
	got, err := ReadRecord(r, 100)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("reassembled %q %v", got, err)
	}
	if got, err := ReadRecord(r, 100); err != nil || string(got) != "second" {
		t.Fatalf("second record %q %v", got, err)
	}
	if _, err := ReadRecord(r, 100); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	// 2^31-1 announced: refused before any allocation or read.
	huge := bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff})
	if _, err := ReadRecord(huge, DefaultMaxRecord); !errors.Is(err, ErrRecordTooBig) {
		t.Fatalf("huge record: %v", err)
	}
	// Fragments that add up past the cap are refused too.
	many := append([]byte{0, 0, 0, 60}, make([]byte, 60)...)
	many = append(many, 0x80, 0, 0, 60)
	if _, err := ReadRecord(bytes.NewReader(many), 100); !errors.Is(err, ErrRecordTooBig) {
		t.Fatalf("fragments over the cap: %v", err)
	}
	if _, err := ReadRecord(bytes.NewReader([]byte{0x80, 0, 0, 9, 1}), 100); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
}

// seeds loads the shared fuzz seeds under testdata/fuzz/DIR.
func seeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("../../testdata/fuzz", dir, "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzDecodeCall(f *testing.F) {
	seeds(f, "oncrpc")
	f.Add(unhex(f, notifyCall))
	f.Add(AppendCall(nil, 1, 100000, 2, 3, Auth{Flavor: AuthSys, Body: make([]byte, 20)}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeCall(b)
		if err != nil {
			return
		}
		if len(h.Cred.Body) > MaxAuthBytes || len(h.Verf.Body) > MaxAuthBytes || len(h.Args) > len(b) {
			t.Fatalf("limits broken: %+v", h)
		}
		again := AppendCall(nil, h.XID, h.Prog, h.Vers, h.Proc, h.Cred, h.Args)
		if h.Verf.Flavor == AuthNone && len(h.Verf.Body) == 0 && len(again) != len(b) {
			// Only padding bytes may differ in content, never in length.
			t.Fatalf("re-encoding changed the length: %d vs %d", len(again), len(b))
		}
		back, err := DecodeCall(again)
		if err != nil || back.XID != h.XID || back.Prog != h.Prog || back.Vers != h.Vers || back.Proc != h.Proc ||
			back.Cred.Flavor != h.Cred.Flavor || !bytes.Equal(back.Cred.Body, h.Cred.Body) || !bytes.Equal(back.Args, h.Args) {
			t.Fatalf("round trip: %+v -> %+v (%v)", h, back, err)
		}
	})
}

// FuzzDecodeReply: replies come from remote rpcbinds and statds. What
// decodes re-encodes to a reply that decodes the same.
func FuzzDecodeReply(f *testing.F) {
	seeds(f, "oncrpc")
	f.Add(AppendAccepted(nil, 1, Success, []byte{0, 0, 0, 1}, 0, 0))
	f.Add(AppendAccepted(nil, 2, ProgMismatch, nil, 1, 4))
	f.Add(AppendDenied(nil, 3, RPCMismatch, 0))
	f.Add(AppendDenied(nil, 4, AuthError, AuthBadCred))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeReply(b)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case h.Accepted:
			again = AppendAccepted(nil, h.XID, h.AcceptStat, h.Results, h.Low, h.High)
		case h.RejectStat == RPCMismatch:
			if h.Low != RPCVersion || h.High != RPCVersion {
				return // AppendDenied only speaks version 2
			}
			again = AppendDenied(nil, h.XID, h.RejectStat, 0)
		default:
			again = AppendDenied(nil, h.XID, h.RejectStat, h.AuthStat)
		}
		back, err := DecodeReply(again)
		h.VerfFlavor = AuthNone // our replies carry AUTH_NONE
		if err != nil || back.XID != h.XID || back.Accepted != h.Accepted || back.AcceptStat != h.AcceptStat ||
			back.RejectStat != h.RejectStat || back.Low != h.Low || back.High != h.High ||
			back.AuthStat != h.AuthStat || !bytes.Equal(back.Results, h.Results) || back.VerfFlavor != h.VerfFlavor {
			t.Fatalf("round trip: %+v -> %+v (%v)", h, back, err)
		}
	})
}

// FuzzParseUniversalAddr: universal addresses come in RPCB GETADDR
// replies from remote rpcbinds. What parses prints back to the same
// address.
func FuzzParseUniversalAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1.0.111", "::1.8.1", "10.1.2.3.128.35", "fe80::1%eth0.0.1", "1.2.3.4.256.1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := ParseUniversalAddr(s)
		if err != nil {
			return
		}
		back, err := ParseUniversalAddr(UniversalAddr(ap))
		if err != nil || back != ap {
			t.Fatalf("%q -> %v -> %q -> %v (%v)", s, ap, UniversalAddr(ap), back, err)
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	seeds(f, "oncrpc")
	f.Add(AppendRecordMark(nil, unhex(f, notifyCall)))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ReadRecord(bytes.NewReader(b), DefaultMaxRecord)
		if err != nil {
			return
		}
		if len(rec) > DefaultMaxRecord {
			t.Fatalf("record of %d bytes passed the cap", len(rec))
		}
		back, err := ReadRecord(bytes.NewReader(AppendRecordMark(nil, rec)), DefaultMaxRecord)
		if err != nil || !bytes.Equal(back, rec) {
			t.Fatalf("record of %d bytes does not round trip: %v", len(rec), err)
		}
	})
}
