package statd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
)

// TestClusterSettingsStatdUses: statd refuses a bad floating-ips (it would
// silently stop recording monitors per floating IP, and a fail-over would
// notify nobody), naming the setting, but starts despite a bad setting
// that only cld and cltrack read.
func TestClusterSettingsStatdUses(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfs.conf")
	env := testenv.Lookup(map[string]string{"NFSRECOVER_NFS_CONF": conf})
	cases := []struct {
		body    string
		refused string // the setting named in the refusal; "": starts
	}{
		{"backend = ectd\nv4-scope = a/b\n", ""},
		{"floating-ips = 192.0.2.10/24\n", "floating-ips"},
		{"floating-ips = 192.0.2.10\netcd-timeout = 10\n", "etcd-timeout"},
	}
	for _, c := range cases {
		os.WriteFile(conf, []byte("[nfsrecover]\n"+c.body), 0o644)
		var out, errb bytes.Buffer
		_, code, done := configure([]string{"rpc.statd", "-F", "-P", dir}, &out, &errb, env)
		refused := c.refused != ""
		if done != refused || (refused && (code != 1 || !strings.Contains(errb.String(), c.refused))) {
			t.Errorf("%q: done=%v code=%d %q, want a refusal naming %q", c.body, done, code, errb.String(), c.refused)
		}
	}
}
