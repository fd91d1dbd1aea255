package applets

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/pkg/version"
)

// When this variable is set the test binary behaves as nfsrecover itself,
// so tests can exec it through symlinks with any argv[0].
const reexecEnv = "NFSRECOVER_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(reexecEnv) == "1" {
		os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runAs execs the test binary through a symlink named name.
func runAs(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	return runPath(t, link, args...)
}

func runPath(t *testing.T, path string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = []string{reexecEnv + "=1", "NFSRECOVER_NFS_CONF=/nonexistent"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestDispatchThroughSymlinks(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s")
	cases := []struct {
		name string
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{"nfsdcltrack", []string{"-s", db, "init"}, 0, ""},
		{"nfsdcltrack", []string{"-s", db, "bogus", "00"}, 218, ""},
		{"nfsdcltrack", []string{"-h"}, 1, "Usage: nfsdcltrack [ -hfd ]"},
		{"nfsrecover-cltrack", []string{"--help"}, 0, "Usage: nfsrecover-cltrack"},
		{"nfsrecover", []string{"cltrack", "-s", db, "check", "00"}, 255, ""},
		{"rpc.statd", []string{"--help"}, 0, "Usage: rpc.statd [options]"},
		{"rpc.statd", []string{"--bogus"}, 0, "Usage: rpc.statd [options]"}, // nfs-utils quirk
		{"rpc.statd", []string{"-F", "-p", "0"}, 1, "bad port number"},
		{"sm-notify", []string{"-h"}, 0, "Usage: sm-notify [-dfn]"},
		{"sm-notify", []string{"extra"}, 1, "Usage: sm-notify [-dfn]"},
		{"nfsrecover", []string{"stablerestart", "--file", "/nonexistent/x", "verify"}, 1, "no such file"},
		{"nfsrecover", []string{"nosuch"}, 1, `"nosuch" is not an applet`},
		{"nfsrecover", []string{"--version"}, 0, "nfsrecover " + version.Version},
		{"whatever-name", nil, 0, "Usage:"},
	}
	for _, c := range cases {
		out, errs, code := runAs(t, c.name, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.out) {
			t.Errorf("%s %v: exit %d (want %d), output %q (want %q)", c.name, c.args, code, c.code, out+errs, c.out)
		}
	}
}

func TestSymlinkChain(t *testing.T) {
	exe, _ := os.Executable()
	dir := t.TempDir()
	mid := filepath.Join(dir, "nfsdcltrack")
	os.Symlink(exe, mid)
	outer := filepath.Join(dir, "site-cltrack")
	os.Symlink("nfsdcltrack", outer) // relative link to a known name
	_, _, code := runPath(t, outer, "bogus")
	if code != 218 {
		t.Errorf("chain dispatch: exit %d, want 218 (nfsdcltrack's unknown command)", code)
	}
}

func TestListAndUsageGolden(t *testing.T) {
	var list, full, usageOut bytes.Buffer
	Main([]string{"nfsrecover", "--list"}, nil, &list, &list)
	Main([]string{"nfsrecover", "--list-full"}, nil, &full, &full)
	Main([]string{"nfsrecover", "--help"}, nil, &usageOut, &usageOut)
	if got := list.String(); got != "statd\nnotify\ncltrack\ncld\nstablerestart\ndb\ndoctor\ngrace\nstatus\n" {
		t.Errorf("--list = %q", got)
	}
	if !strings.Contains(full.String(), "cltrack\tready\t/sbin/nfsdcltrack\t") ||
		!strings.Contains(full.String(), "notify\tready\t/usr/sbin/sm-notify\tcopy\t") {
		t.Errorf("--list-full = %q", full.String())
	}
	golden(t, "nfsrecover-help.txt", strings.ReplaceAll(usageOut.String(), version.Version, "VERSION"))
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := runAs(t, "nfsrecover", "--install", "-s", dir)
	if code != 0 {
		t.Fatalf("install: %d %s %s", code, out, errs)
	}
	exe, _ := os.Executable()
	want, _ := os.Stat(exe)
	for _, n := range []string{"rpc.statd", "nfsdcltrack"} {
		got, err := os.Stat(filepath.Join(dir, n))
		if err != nil || !os.SameFile(got, want) {
			t.Errorf("%s is not a link to the binary: %v", n, err)
		}
	}
	// sm-notify is a file of its own (killall by path), with the same bytes.
	if st, err := os.Lstat(filepath.Join(dir, "sm-notify")); err != nil || !st.Mode().IsRegular() || os.SameFile(st, want) {
		t.Errorf("sm-notify must be a copy, not a link: %v %v", st, err)
	}
	if !sameContent(exe, filepath.Join(dir, "sm-notify")) {
		t.Error("sm-notify's copy differs from the binary")
	}
	// Again: existing correct links are fine.
	if _, errs, code := runAs(t, "nfsrecover", "--install", "-s", dir); code != 0 {
		t.Errorf("re-install: %d %s", code, errs)
	}
	// A foreign file is never replaced.
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "sm-notify"), []byte("#!/bin/sh\n"), 0o755)
	_, errs, code = runAs(t, "nfsrecover", "--install", "-s", foreign)
	if code != 1 || !strings.Contains(errs, "sm-notify exists and is not a copy") {
		t.Errorf("foreign file: %d %q", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, "sm-notify")); string(b) != "#!/bin/sh\n" {
		t.Errorf("foreign file was modified")
	}
	if _, err := os.Stat(filepath.Join(foreign, "rpc.statd")); err != nil {
		t.Errorf("other links must still be installed: %v", err)
	}
	// An older install's link to the binary becomes a copy.
	old := t.TempDir()
	os.Symlink(exe, filepath.Join(old, "sm-notify"))
	if _, errs, code := runAs(t, "nfsrecover", "--install", "-s", old); code != 0 {
		t.Errorf("install over a link: %d %s", code, errs)
	}
	if st, err := os.Lstat(filepath.Join(old, "sm-notify")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("the old link was not replaced by a copy: %v %v", st, err)
	}
}

// On FreeBSD the Linux-only applets are listed but refuse, naming what they
// need; stablerestart and db run.
func TestLinuxOnlyAppletsOnFreeBSD(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"rpc.statd", "-F"}, 1, "statd serves linux kernel interfaces and does not run on freebsd"},
		{[]string{"sm-notify", "-d"}, 1, "notify serves linux kernel interfaces and does not run on freebsd"},
		{[]string{"nfsdcltrack", "init"}, 1, "cltrack serves linux kernel interfaces and does not run on freebsd"},
		{[]string{"nfsrecover", "statd", "--help"}, 1, "does not run on freebsd"},
		{[]string{"nfsrecover", "stablerestart", "--help"}, 0, ""},
		{[]string{"nfsrecover", "db", "--help"}, 0, ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := dispatch(c.args, host{goos: "freebsd"}, nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.err) {
			t.Errorf("%v on freebsd: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.err)
		}
	}
	var list bytes.Buffer
	dispatch([]string{"nfsrecover", "--list-full"}, host{goos: "freebsd"}, nil, &list, &list)
	for _, want := range []string{"statd\tlinux-only\t", "cltrack\tlinux-only\t", "stablerestart\tready\t", "db\tready\t"} {
		if !strings.Contains(list.String(), want) {
			t.Errorf("--list-full on freebsd lacks %q:\n%s", want, list.String())
		}
	}
}
