package smdir

import (
	"bytes"
	"nfsrecover/pkg/store"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const golden = "../../../testdata/statd/legacy"

func TestReadGolden(t *testing.T) {
	d, err := Read(golden)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Monitors) != 2 || len(d.Notify) != 1 || !d.HasState || d.State != 5 {
		t.Fatalf("%+v", d)
	}
	m := d.Monitors[0]
	if m.DNSName != "client.example" || m.MonName != "192.168.10.5" || m.MyName != "srv1.example.com" ||
		m.Prog != 100021 || m.Vers != 3 || m.Proc != 16 || m.Priv[0] != 0x00 || m.Priv[15] != 0xff {
		t.Errorf("record 0: %+v", m)
	}
	if d.Monitors[1].MyName != "srv1 with spaces" {
		t.Errorf("my_name is the rest of the line: %q", d.Monitors[1].MyName)
	}
	if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0], ".client.new") {
		t.Errorf("skipped %v", d.Skipped)
	}
}

func TestWriteIsByteExact(t *testing.T) {
	d, err := Read(golden)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Write(out, d, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sm/client.example", "sm.bak/192.168.10.9", "state"} {
		want, _ := os.ReadFile(filepath.Join(golden, f))
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, want %q (%v)", f, got, want, err)
		}
	}
	if err := Write(out, d, false); err == nil {
		t.Errorf("overwrote a non-empty sm/ without force")
	}
	d.Monitors = d.Monitors[:1]
	d.Monitors[0].DNSName = "other.example"
	if err := Write(out, d, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "sm", "client.example")); !os.IsNotExist(err) {
		t.Errorf("forced write kept a peer no longer listed")
	}
}

func TestBadInput(t *testing.T) {
	cases := map[string]string{
		"six fields": "0100007f 000186b5 00000003 00000010 00112233445566778899aabbccddeeff 1.2.3.4\n",
		"bad hex":    "0100007f zz0186b5 00000003 00000010 00112233445566778899aabbccddeeff a b\n",
		"short priv": "0100007f 000186b5 00000003 00000010 0011 a b\n",
		"long line":  "0100007f 000186b5 00000003 00000010 00112233445566778899aabbccddeeff a " + strings.Repeat("x", 1100) + "\n",
	}
	for name, line := range cases {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
		os.WriteFile(filepath.Join(dir, "sm", "peer"), []byte(line), 0o600)
		_, err := Read(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sm", "peer")) {
			t.Errorf("%s: %v (must name the file)", name, err)
		}
	}
	if _, err := Read(t.TempDir()); err == nil {
		t.Errorf("missing sm/ accepted")
	}
}

func TestPickState(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want int32
	}{{[]byte{5, 0, 0, 0}, 5}, {[]byte{0, 0, 0, 5}, 5}, {[]byte{3, 0, 0, 1}, 16777219}} {
		if got := pickState(c.b); got != c.want {
			t.Errorf("%x: %d, want %d", c.b, got, c.want)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	if b, err := os.ReadFile("../../../testdata/fuzz/smdir/lines.txt"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f.Add(l)
		}
	}
	f.Add("0100007f 000186b5 00000003 00000010 00112233445566778899aabbccddeeff 192.168.10.5 srv1.example.com")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseLine("peer", line)
		if err != nil || strings.ContainsAny(m.MonName+m.MyName, "\n") {
			return
		}
		back, err := ParseLine("peer", FormatLine(m))
		if err != nil || back != m {
			t.Fatalf("round trip %q -> %+v -> %+v %v", line, m, back, err)
		}
	})
}

// A record whose name cannot be a file name fails the export before
// anything is written: no partial sm/, sm.bak/ or state.
func TestWriteAllOrNothing(t *testing.T) {
	d, err := Read(golden)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{"too long": strings.Repeat("x", 308), "slash": "a/b", "empty": ""} {
		d2 := d
		d2.Notify = append(append([]store.Monitor{}, d.Notify...), store.Monitor{MonName: "m", DNSName: bad})
		out := t.TempDir()
		err := Write(out, d2, false)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if left, _ := os.ReadDir(out); len(left) != 0 {
			t.Errorf("%s: export failed (%v) but left %d entries", name, err, len(left))
		}
	}
}
