//go:build linux

// Package packaging holds no code: its tests check the files shipped
// with nfsrecover (systemd units) against nfs-utils' and run them.
package packaging

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/pipefs"
	"nfsrecover/internal/testenv"
)

var bin string

func TestMain(m *testing.M) { os.Exit(testenv.IsolateWithBinary(m.Run, &bin)) }

// nfsUtilsUnits is where Debian's nfs-common and nfs-kernel-server
// install theirs: the oracle for names and shapes.
const nfsUtilsUnits = "/lib/systemd/system"

// unit is a parsed unit file: section.key -> values (repeated keys and
// space-separated lists are merged, order kept).
type unit map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		testenv.Unavailable(t, "unit %s: %v", path, err)
		return nil
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			key := section + "." + strings.TrimSpace(k)
			u[key] = append(u[key], strings.Fields(v)...)
		}
	}
	return u
}

// shapeKeys are what must match nfs-utils' units for systemd, the NFS
// server's units and HA agents to treat ours the same.
var shapeKeys = []string{
	"Unit.DefaultDependencies", "Unit.Conflicts", "Unit.Requires", "Unit.Wants", "Unit.Before",
	"Unit.After", "Unit.PartOf", "Unit.IgnoreOnIsolate",
	"Service.Type", "Service.PIDFile", "Service.Environment", "Service.RemainAfterExit",
}

func units(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("systemd/*.service")
	if len(files) != 3 {
		t.Fatalf("units: %v", files)
	}
	return files
}

// TestUnitsShapedLikeNfsUtils compares every unit with nfs-utils' unit of
// the same name, and its ExecStart program name.
func TestUnitsShapedLikeNfsUtils(t *testing.T) {
	testenv.NeedTools(t, "systemd-analyze")
	for _, f := range units(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			ours, theirs := parseUnit(t, f), parseUnit(t, filepath.Join(nfsUtilsUnits, filepath.Base(f)))
			for _, k := range shapeKeys {
				a, b := slices.Clone(ours[k]), slices.Clone(theirs[k])
				slices.Sort(a)
				slices.Sort(b)
				if !slices.Equal(a, b) {
					t.Errorf("%s: ours %q, nfs-utils %q", k, ours[k], theirs[k])
				}
			}
			if a, b := execName(ours), execName(theirs); a != b {
				t.Errorf("ExecStart runs %q, nfs-utils runs %q", a, b)
			}
			if out, err := exec.Command("systemd-analyze", "verify", f).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
}

// execName is ExecStart's program name, without systemd's "-" prefix.
func execName(u unit) string {
	e := u["Service.ExecStart"]
	if len(e) == 0 {
		return ""
	}
	return filepath.Base(strings.TrimLeft(e[0], "-@:+!"))
}

// TestExecStartAsSystemd runs each unit's ExecStart the way systemd does
// for Type=forking: the environment of the unit, the command must exit 0
// once the daemon is ready, and the PIDFile (if any) must name the live
// daemon, whose command name is the program's. /var/lib/nfs is a tmpfs
// in this test's mount namespace, so the defaults are used as they are.
func TestExecStartAsSystemd(t *testing.T) {
	testenv.NeedRoot(t)
	if !testenv.Isolated() {
		testenv.Unavailable(t, "needs the test's own namespaces")
		return
	}
	if err := syscall.Mount("tmpfs", "/var/lib/nfs", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("tmpfs on /var/lib/nfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount("/var/lib/nfs", syscall.MNT_DETACH) })
	testenv.StartRpcbind(t)
	links := t.TempDir()
	os.Chmod(links, 0o755)
	for _, f := range units(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			u := parseUnit(t, f)
			name := execName(u)
			link := filepath.Join(links, name)
			if err := os.Symlink(bin, link); err != nil {
				t.Fatal(err)
			}
			if name == "nfsdcld" {
				servePipefs(t)
			}
			cmd := exec.Command(link)
			cmd.Env = append(os.Environ(), u["Service.Environment"]...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ExecStart %s: %v\n%s", name, err, out)
			}
			checkDaemon(t, u, name)
		})
	}
}

// servePipefs mounts the rpc_pipefs emulation where nfs.conf says
// ([general] pipefs-directory, else nfs-utils' default), with the pipe.
func servePipefs(t *testing.T) {
	t.Helper()
	dir := "/var/lib/nfs/rpc_pipefs"
	if out, err := exec.Command("nfsconf", "--get", "general", "pipefs-directory").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		dir = strings.TrimSpace(string(out))
	}
	os.MkdirAll(dir, 0o755)
	fs, err := pipefs.Mount(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Unmount() })
	if err := fs.CreatePipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !testenv.WaitFor(10*time.Second, func() bool { return fs.Readers() > 0 }) {
			t.Error("nfsdcld never opened the pipe")
		}
	})
}

// checkDaemon checks what systemd would: the PIDFile's process, or for
// a unit without one a process of that name (sm-notify may have finished).
func checkDaemon(t *testing.T, u unit, name string) {
	t.Helper()
	if pf := u["Service.PIDFile"]; len(pf) == 1 {
		b, err := os.ReadFile(pf[0])
		if err != nil {
			t.Fatalf("PIDFile: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("PIDFile %q: %v", b, err)
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != name {
			t.Errorf("PIDFile names pid %d, command %q, want %q", pid, comm, name)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
		return
	}
	if name == "sm-notify" {
		return // it runs once and exits (RemainAfterExit)
	}
	pids := ours(name)
	if len(pids) == 0 {
		t.Fatalf("no %s process of ours after ExecStart", name)
	}
	for _, pid := range pids {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	}
}

// ours lists the processes named name that run our binary.
func ours(name string) []int {
	out, _ := exec.Command("pgrep", "-x", name).Output()
	var pids []int
	for _, p := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(p)
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}
