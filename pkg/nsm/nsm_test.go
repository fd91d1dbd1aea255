package nsm

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Spec nsm.md §2.4 worked example: stat_chge{"srv1.example.com", 7}.
func TestStatChgeWire(t *testing.T) {
	want := unhex(t, "00000010 73727631 2e657861 6d706c65 2e636f6d 00000007")
	got, err := Encode(&StatChge{MonName: "srv1.example.com", State: 7})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%x %v", got, err)
	}
	var back StatChge
	if err := Decode(want, &back); err != nil || back.MonName != "srv1.example.com" || back.State != 7 {
		t.Fatalf("%+v %v", back, err)
	}
}

func TestMonRoundTripAndSizes(t *testing.T) {
	m := Mon{MonID: MonID{MonName: "peer", MyID: MyID{MyName: "me.example", MyProg: 100021, MyVers: 3, MyProc: 16}}}
	copy(m.Priv[:], "0123456789abcdef")
	b, err := Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	// 4+4 (peer) + 4+12 ("me.example" padded) + 12 + 16 fixed priv, no length word.
	if len(b) != 8+16+12+16 || !bytes.HasSuffix(b, []byte("0123456789abcdef")) {
		t.Fatalf("mon wire %d bytes: %x", len(b), b)
	}
	var back Mon
	if err := Decode(b, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip %+v %v", back, err)
	}
	res, _ := Encode(&SmStatRes{ResStat: StatFail, State: -1})
	if hex.EncodeToString(res) != "00000001ffffffff" {
		t.Errorf("sm_stat_res on failure keeps state: %x", res)
	}
}

func TestLimits(t *testing.T) {
	long := append(unhex(t, "00000401"), make([]byte, 1028)...) // string of 1025 bytes
	if err := Decode(append(long, 0, 0, 0, 1), &StatChge{}); err == nil {
		t.Errorf("string<1024> overflow accepted")
	}
	ok := append(unhex(t, "00000400"), make([]byte, 1024+4)...)
	if err := Decode(ok, &StatChge{}); err != nil {
		t.Errorf("1024-byte name refused: %v", err)
	}
	if err := Decode(unhex(t, "00000004 6162"), &SmName{}); err == nil {
		t.Errorf("truncated string accepted")
	}
	if err := Decode(unhex(t, "00000000 00000000 00000000 00000000 00000000"), &Mon{}); err == nil {
		t.Errorf("mon without priv accepted")
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/fuzz/nsm/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	b, _ := Encode(&Mon{MonID: MonID{MonName: "a", MyID: MyID{MyName: "b"}}})
	f.Add(b)
	f.Add(unhex(f, "ffffffff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fresh := []func() any{
			func() any { return &SmName{} }, func() any { return &MonID{} }, func() any { return &Mon{} },
			func() any { return &StatChge{} }, func() any { return &Status{} }, func() any { return &MyID{} },
		}
		for _, mk := range fresh {
			v := mk()
			if Decode(b, v) != nil {
				continue
			}
			enc, err := Encode(v)
			if err != nil || len(enc) > len(b) {
				t.Fatalf("%T: re-encoded to %d bytes from %d: %v", v, len(enc), len(b), err)
			}
			back := mk()
			if err := Decode(enc, back); err != nil || !reflect.DeepEqual(back, v) {
				t.Fatalf("%T round trip: %+v -> %+v (%v)", v, v, back, err)
			}
		}
	})
}
