//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPagesAreTheHelp: the man pages are generated from --help
// (scripts/genman.sh), one per applet plus nfsrecover(8), each naming the
// applet's links, so a page cannot say something --help does not.
func TestManPagesAreTheHelp(t *testing.T) {
	out := t.TempDir()
	if b, err := exec.Command("../scripts/genman.sh", bin, out).CombinedOutput(); err != nil {
		t.Fatalf("genman: %v\n%s", err, b)
	}
	list, _ := exec.Command(bin, "--list").Output()
	applets := strings.Fields(string(list))
	for _, a := range append([]string{""}, applets...) {
		page, args := "nfsrecover.8", []string{"--help"}
		if a != "" {
			page, args = "nfsrecover-"+a+".8", []string{a, "--help"}
		}
		raw, err := os.ReadFile(filepath.Join(out, page))
		if err != nil {
			t.Errorf("no page for %q: %v", a, err)
			continue
		}
		help, _ := exec.Command(bin, args...).CombinedOutput()
		text := strings.ReplaceAll(string(raw), `\e`, `\`)
		text = strings.ReplaceAll(text, `\&`, "")
		for _, line := range strings.Split(strings.TrimSpace(string(help)), "\n") {
			if !strings.Contains(text, line) {
				t.Errorf("%s lacks the --help line %q", page, line)
				break
			}
		}
	}
	if raw, _ := os.ReadFile(filepath.Join(out, "nfsrecover-cld.8")); !strings.Contains(string(raw), "nfsrecover-cld, nfsdcld \\-") {
		t.Errorf("nfsrecover-cld(8) NAME does not list nfsdcld:\n%s", raw[:min(300, len(raw))])
	}
}
