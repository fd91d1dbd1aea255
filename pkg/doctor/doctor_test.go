package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientTrackingPaths: which path nfsd uses, as the files say, and
// what doctor makes of it (a fake /proc/fs/nfsd, pipefs and mountinfo).
func TestClientTrackingPaths(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(h *Host)
		level  Level
		detail string
	}{
		{"nfsd not running", func(h *Host) { os.Remove(filepath.Join(h.NfsdDir, "versions")) }, Info, "nfsd is not running"},
		{"cld pipe, no daemon", func(h *Host) {
			os.MkdirAll(filepath.Join(h.Pipefs, "nfsd"), 0o755)
			os.WriteFile(filepath.Join(h.Pipefs, "nfsd", "cld"), nil, 0o600)
		}, Fail, "no nfsdcld runs"},
		{"cld pipe, daemon runs", func(h *Host) {
			os.MkdirAll(filepath.Join(h.Pipefs, "nfsd"), 0o755)
			os.WriteFile(filepath.Join(h.Pipefs, "nfsd", "cld"), nil, 0o600)
			h.Running = func(c string) bool { return c == "nfsdcld" }
		}, OK, "nfsd uses nfsdcld, which runs"},
		{"cltrack_prog missing", func(h *Host) { os.WriteFile(h.CltrackProg, []byte("/nonexistent/nfsdcltrack\n"), 0o644) }, Fail, "which is missing"},
		{"cltrack_prog present", func(h *Host) { os.WriteFile(h.CltrackProg, []byte("/bin/sh\n"), 0o644) }, OK, "upcall /bin/sh"},
		{"nothing", func(*Host) {}, Warn, "legacy v4recovery"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			h := Host{NfsdDir: filepath.Join(d, "nfsd"), Pipefs: filepath.Join(d, "pipefs"), CltrackProg: filepath.Join(d, "cltrack_prog"),
				Mountinfo: filepath.Join(d, "mountinfo"), Running: func(string) bool { return false }}
			os.MkdirAll(h.NfsdDir, 0o755)
			os.WriteFile(filepath.Join(h.NfsdDir, "versions"), []byte("+3 +4\n"), 0o644)
			os.WriteFile(filepath.Join(h.NfsdDir, "v4_end_grace"), []byte("N\n"), 0o644)
			os.WriteFile(h.Mountinfo, []byte("42 1 0:40 / "+h.Pipefs+" rw,relatime shared:1 - rpc_pipefs sunrpc rw\n"), 0o644)
			c.setup(&h)
			h.defaults()
			fs := checkClientTracking(context.Background(), h)
			last := fs[len(fs)-1]
			if last.Level != c.level || !strings.Contains(last.Detail, c.detail) {
				t.Errorf("%+v, want %v %q", fs, c.level, c.detail)
			}
			if c.name != "nfsd not running" && !strings.Contains(fs[0].Detail, "running: clients are reclaiming") {
				t.Errorf("grace finding: %+v", fs[0])
			}
			for _, f := range fs {
				if f.Check == "rpc_pipefs" {
					t.Errorf("rpc_pipefs reported unmounted although mountinfo lists it: %+v", f)
				}
			}
		})
	}
}

func TestWorst(t *testing.T) {
	for _, c := range []struct {
		levels []Level
		want   int
	}{{nil, 0}, {[]Level{OK, Info}, 0}, {[]Level{OK, Warn}, 2}, {[]Level{Warn, Fail, OK}, 1}} {
		var fs []Finding
		for _, l := range c.levels {
			fs = append(fs, Finding{Level: l})
		}
		if got := Worst(fs); got != c.want {
			t.Errorf("Worst(%v) = %d, want %d", c.levels, got, c.want)
		}
	}
}
