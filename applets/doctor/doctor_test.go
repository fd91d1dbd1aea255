//go:build linux

package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/doctor"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

var bin string

func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

// host is a state directory with our rpc.statd serving it.
type host struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	args []string
	conf string // nfs.conf doctor reads; default none
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "/usr/sbin/rpcbind")
	testenv.StartRpcbind(t)
	h := &host{t: t, dir: t.TempDir()}
	os.Mkdir(filepath.Join(h.dir, "sm"), 0o755)
	os.Mkdir(filepath.Join(h.dir, "sm.bak"), 0o755)
	link := filepath.Join(h.dir, "rpc.statd")
	os.Symlink(bin, link)
	h.cmd = exec.Command(link, "-F", "-L", "--db", h.db(), "--nsm-state-file", h.kstate(), "--pid-file", filepath.Join(h.dir, "pid"), "-P", h.dir)
	h.cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Kill(); h.cmd.Wait() })
	if !testenv.WaitFor(10*time.Second, h.registered) {
		t.Fatal("statd did not register")
	}
	return h
}

func (h *host) db() string     { return filepath.Join(h.dir, "nfsrecover.db") }
func (h *host) kstate() string { return filepath.Join(h.dir, "kstate") }

func (h *host) registered() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}.PmapGetPort(ctx, nsm.Program, nsm.Version, oncrpc.ProtoTCP)
	return err == nil && p != 0
}

// doctor runs the applet on the host and returns its exit status and
// findings.
func (h *host) doctor(names ...string) (int, []doctor.Finding, string) {
	h.t.Helper()
	args := []string{"doctor", "-P", h.dir, "--db", h.db(), "--nsm-state-file", h.kstate(), "--nfsd-dir", h.t.TempDir(), "--json"}
	for _, n := range names {
		args = append(args, "--name", n)
	}
	var out, errb bytes.Buffer
	conf := h.conf
	if conf == "" {
		conf = "/nonexistent"
	}
	code := Main(args, nil, &out, &errb, func(k string) (string, bool) {
		return conf, k == "NFSRECOVER_NFS_CONF"
	})
	var fs []struct {
		doctor.Finding
		Level string `json:"level"`
	}
	if err := json.Unmarshal(out.Bytes(), &fs); err != nil {
		h.t.Fatalf("doctor --json: %v\n%s%s", err, out.String(), errb.String())
	}
	var plain []doctor.Finding
	for _, f := range fs {
		plain = append(plain, f.Finding)
		plain[len(plain)-1].Detail = f.Level + ": " + f.Detail
	}
	return code, plain, out.String()
}

// find returns the text of the findings of one check.
func find(fs []doctor.Finding, check string) string {
	var out []string
	for _, f := range fs {
		if f.Check == check {
			out = append(out, f.Detail)
		}
	}
	return strings.Join(out, " | ")
}

func TestDoctor(t *testing.T) {
	cases := []struct {
		name   string
		breaks func(h *host)
		names  []string
		code   int
		check  string // the finding that must say it
		says   string
	}{
		{"healthy", func(*host) {}, []string{"127.0.0.1"}, 0, "statd tcp", "ok: registered and answering"},
		{"statd stopped", func(h *host) { h.cmd.Process.Kill(); h.cmd.Wait() }, nil, 1, "statd udp", "nothing answers"},
		{"wrong owner", func(h *host) { os.Chown(filepath.Join(h.dir, "sm"), 65534, 65534) }, nil, 1, "database owner", "cannot write"},
		{"mirror out of step", func(h *host) {
			os.WriteFile(filepath.Join(h.dir, "sm", "stranger"), []byte("0100007f 000186b5 00000003 00000010 00000000000000000000000000000000 stranger ourhost\n"), 0o600)
		}, nil, 1, "mirror", `"stranger" is in the files only`},
		{"no PTR for a -v name", func(*host) {}, []string{"192.0.2.1"}, 2, "reverse DNS", "no PTR record"},
		{"unusable cluster setting", func(h *host) {
			h.conf = filepath.Join(h.dir, "nfs.conf")
			os.WriteFile(h.conf, []byte("[nfsrecover]\nfloating-ips = 192.0.2.10/24\n"), 0o644)
		}, nil, 1, "cluster settings", `FAIL: cluster: bad etcd settings: [nfsrecover] floating-ips: "192.0.2.10/24" is not an IP address`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			c.breaks(h)
			code, fs, out := h.doctor(c.names...)
			if code != c.code || !strings.Contains(find(fs, c.check), c.says) {
				t.Errorf("exit %d (want %d); %s: %q (want %q)\n%s", code, c.code, c.check, find(fs, c.check), c.says, out)
			}
		})
	}
}
