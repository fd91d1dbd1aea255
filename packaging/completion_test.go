//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nfsrecover/internal/testenv"
)

// TestBashCompletion: applets, verbs and options complete from the
// program's own --list and --help, under nfsrecover and the link names.
func TestBashCompletion(t *testing.T) {
	testenv.NeedTools(t, "bash")
	path := t.TempDir()
	os.Symlink(bin, filepath.Join(path, "nfsrecover"))
	cases := []struct{ words, want string }{
		{"nfsrecover st", "statd stablerestart status"},
		{"nfsrecover cld --p", "--pipefsdir"},
		{"nfsrecover cld im", "import"},
		{"nfsrecover db d", "dump"},
		{"nfsdcld --for", "--foreground"},
		{"rpc.statd --no", "--no-notify --no-syslog"},
	}
	for _, c := range cases {
		script := "source completion/nfsrecover.bash; COMP_WORDS=(" + c.words + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _nfsrecover; echo ${COMPREPLY[*]}"
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+path+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%q completes to %q (%v), want %q", c.words, out, err, c.want)
		}
	}
}
