package statd_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"nfsrecover/internal/testenv"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
)

// dirSnapshot is what HA agents copy from a state directory: each file of
// sm/, sm.bak/ and state with its bytes and mode.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	for _, sub := range []string{"sm", "sm.bak"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			st, _ := os.Stat(p)
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s/%s %v %q", sub, e.Name(), st.Mode().Perm(), b))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state")); err == nil {
		st, _ := os.Stat(filepath.Join(dir, "state"))
		out = append(out, fmt.Sprintf("state %v %x", st.Mode().Perm(), b))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// nsmCall sends one NSM call over TCP from 127.0.0.1 and waits for the
// reply.
func nsmCall(t *testing.T, proc uint32, arg any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	if err != nil || port == 0 {
		t.Fatalf("no statd registered: %v", err)
	}
	args, _ := nsm.Encode(arg)
	if _, err := oncrpc.Call(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port), nsm.Program, 1, proc, args); err != nil {
		t.Fatalf("NSM proc %d: %v", proc, err)
	}
}

// mirrorSequence is the SM_MON/SM_UNMON sequence both statds get.
func mirrorSequence() []func(t *testing.T) {
	mon := func(name, my, priv string) func(t *testing.T) {
		return func(t *testing.T) {
			var m nsm.Mon
			m.MonID = nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: my, MyProg: 100021, MyVers: 3, MyProc: 16}}
			copy(m.Priv[:], priv)
			nsmCall(t, nsm.ProcMon, &m)
		}
	}
	unmon := func(name, my string) func(t *testing.T) {
		return func(t *testing.T) {
			nsmCall(t, nsm.ProcUnmon, &nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: my, MyProg: 100021, MyVers: 3, MyProc: 16}})
		}
	}
	return []func(t *testing.T){
		mon("10.7.0.1", "server", "cookie-one"),
		mon("10.7.0.2", "server", "cookie-two"),
		mon("10.7.0.1", "server", "cookie-new"),      // a new cookie replaces the line
		mon("10.7.0.1", "other.example", "cookie-3"), // a second line in the same file
		unmon("10.7.0.2", "server"),                  // the file goes
		unmon("10.7.0.1", "server"),                  // one line of two goes
		mon("10.7.0.3", "my name", "spaces"),         // whitespace in my_name becomes _
	}
}

// runSequence starts a statd with start on a fresh state directory (sm/
// and sm.bak/ owned by root, no state file), plays the sequence and
// returns the directory after each reply.
func runSequence(t *testing.T, start func(dir string) *exec.Cmd) []string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"sm", "sm.bak"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
	}
	cmd := start(dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !statdAnswers() {
		t.Fatal("statd did not start")
	}
	snaps := []string{dirSnapshot(t, dir)}
	for _, step := range mirrorSequence() {
		step(t)
		snaps = append(snaps, dirSnapshot(t, dir))
	}
	return snaps
}

// TestMirrorMatchesRealStatd: the same SM_MON/SM_UNMON sequence goes to
// nfs-utils' rpc.statd and to ours, each on its own state directory; after
// every reply sm/, sm.bak/ and state are the same, byte for byte and mode
// for mode.
func TestMirrorMatchesRealStatd(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/rpc.statd")
	real := runSequence(t, func(dir string) *exec.Cmd {
		cmd := exec.Command("/usr/sbin/rpc.statd", "-F", "-L", "-P", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	})
	ours := runSequence(t, func(dir string) *exec.Cmd {
		cmd := exec.Command(bin, "statd", "-F", "-L", "-P", dir, "--nsm-state-file", filepath.Join(dir, "..", "kstate-ours"),
			"--pid-file", filepath.Join(t.TempDir(), "pid"))
		cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	})
	for i := range real {
		if real[i] != ours[i] {
			t.Errorf("after step %d the state directories differ:\n--- real rpc.statd\n%s\n--- ours\n%s", i, real[i], ours[i])
		}
	}
}

// TestNotifyFromEditedFilesMatchesRealSmNotify: a state directory as HA
// agents leave it (a CTDB record line with vers 4 and an all-zero priv, a
// kernel line, an empty file made with touch, a random negative state) is
// copied twice; the real sm-notify runs on one copy and ours on the other
// (-d -f -P), each stopped after 5 s by timeout(1) as CTDB stops it,
// because one peer never answers. Both send the same SM_NOTIFYs to the
// answering peers and leave the same files behind: the silent peer's
// record in sm.bak/.
func TestNotifyFromEditedFilesMatchesRealSmNotify(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTools(t, "/usr/sbin/sm-notify")
	work := t.TempDir()
	helper := filepath.Join(work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		t.Fatalf("building nsmhelper: %v %s", err, out)
	}
	sent := filepath.Join(work, "sent.txt")
	peers := exec.Command(helper, "peers", "16", sent) // 127.x.y.z answers unless z%16 == 15
	out, _ := peers.StdoutPipe()
	if err := peers.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { peers.Process.Kill(); peers.Wait() }()
	if _, err := out.Read(make([]byte, 6)); err != nil {
		t.Fatalf("fake peers: %v", err)
	}
	lines := map[string]string{
		"127.5.0.1":     "0100007f 000186b5 00000004 00000010 00000000000000000000000000000000 127.5.0.1 10.1.2.3\n",
		"127.5.0.2":     "0100007f 000186b5 00000003 00000010 00112233445566778899aabbccddeeff 127.5.0.2 srv.example\n",
		"empty.example": "",
		"127.5.0.15":    "0100007f 000186b5 00000003 00000010 0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f 127.5.0.15 srv.example\n", // silent
	}
	state := make([]byte, 4)
	binary.NativeEndian.PutUint32(state, uint32(0xfffffff8)) // -8: even and negative
	template := func() string {
		d := t.TempDir()
		for _, s := range []string{"sm", "sm.bak"} {
			os.Mkdir(filepath.Join(d, s), 0o700)
		}
		for name, l := range lines {
			os.WriteFile(filepath.Join(d, "sm", name), []byte(l), 0o600)
		}
		os.WriteFile(filepath.Join(d, "state"), state, 0o644)
		return d
	}
	notifications := func() []string {
		raw, _ := os.ReadFile(sent)
		os.WriteFile(sent, nil, 0o644)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			if f := strings.Fields(l); len(f) == 4 {
				got = append(got, strings.Join(f[:3], " ")) // addr name state
			}
		}
		sort.Strings(got)
		return got
	}
	realDir, ourDir := template(), template()
	// timeout(1) ends each run with SIGTERM (exit 124) while the silent
	// peer is still being retried.
	if out, err := exec.Command("timeout", "5", "/usr/sbin/sm-notify", "-d", "-f", "-P", realDir).CombinedOutput(); exitCode(err) != 124 {
		t.Fatalf("real sm-notify: %v %s", err, out)
	}
	realSent := notifications()
	link := filepath.Join(work, "sm-notify")
	os.Symlink(bin, link)
	cmd := exec.Command("timeout", "5", link, "-d", "-f", "-P", ourDir, "--pid-file", filepath.Join(work, "guard"),
		"--nsm-state-file", filepath.Join(work, "kstate"), "--end-grace-file", filepath.Join(work, "grace"))
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	if out, err := cmd.CombinedOutput(); exitCode(err) != 124 {
		t.Fatalf("our sm-notify: %v %s", err, out)
	}
	ourSent := notifications()
	if len(realSent) == 0 || fmt.Sprint(realSent) != fmt.Sprint(ourSent) {
		t.Errorf("SM_NOTIFYs sent (addr name state):\n real: %q\n ours: %q", realSent, ourSent)
	}
	t.Logf("both sent %q", realSent)
	if r, o := dirSnapshot(t, realDir), dirSnapshot(t, ourDir); r != o {
		t.Errorf("state directories after the run:\n--- real sm-notify\n%s\n--- ours\n%s", r, o)
	}
	if _, err := os.Stat(filepath.Join(ourDir, "sm.bak", "127.5.0.15")); err != nil {
		t.Errorf("the silent peer's record is not left in sm.bak/: %v", err)
	}
}

// exitCode returns a command's exit status (0 for success, -1 when it did
// not run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestDeletedRecordsNotifyNobody replays CTDB's statd_callout_helper
// notify, which deletes sm/* and sm.bak/* under a running statd so that
// the system's sm-notify pings nobody: our statd monitored two peers and
// has them in its database too, yet after the deletion our sm-notify, like
// the real one on a copy of the same directory, notifies nobody.
func TestDeletedRecordsNotifyNobody(t *testing.T) {
	need(t, "/usr/sbin/rpcbind", "/usr/sbin/sm-notify")
	dir := t.TempDir()
	for _, d := range []string{"sm", "sm.bak"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
	}
	startStatd(t, dir)
	for i, name := range []string{"127.6.0.1", "127.6.0.2"} {
		var m nsm.Mon
		m.MonID = nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "server", MyProg: 100021, MyVers: 3, MyProc: 16}}
		m.Priv[0] = byte(i)
		nsmCall(t, nsm.ProcMon, &m)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "sm")); len(ents) != 2 {
		t.Fatalf("statd mirrored %d records, want 2", len(ents))
	}
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("rm -f %[1]s/sm/* %[1]s/sm.bak/*", dir)).CombinedOutput(); err != nil {
		t.Fatalf("rm: %v %s", err, out)
	}
	copyDir := t.TempDir()
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("cp -rp %s/sm %s/sm.bak %s/state %s", dir, dir, dir, copyDir)).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	realOut, err := exec.Command("/usr/sbin/sm-notify", "-d", "-f", "-P", copyDir).CombinedOutput()
	if err != nil || !strings.Contains(string(realOut), "No hosts to notify") {
		t.Fatalf("real sm-notify on the emptied directory: %v %s", err, realOut)
	}
	link := filepath.Join(t.TempDir(), "sm-notify")
	os.Symlink(bin, link)
	cmd := exec.Command(link, "-d", "-f", "-P", dir, "--db", filepath.Join(dir, "nfsrecover.db"),
		"--pid-file", filepath.Join(copyDir, "guard"), "--nsm-state-file", filepath.Join(copyDir, "kstate"),
		"--end-grace-file", filepath.Join(copyDir, "grace"), "--deadline", "5s")
	cmd.Env = []string{"NFSRECOVER_NFS_CONF=/nonexistent"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no hosts to notify") {
		t.Errorf("our sm-notify after the records were deleted: %v\n%s", err, out)
	}
}
