package daemon

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SetName changes the command name the kernel shows for the thread (for
// the main thread: the process's, what pgrep and killall match).
func TestSetName(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	path := fmt.Sprintf("/proc/self/task/%d/comm", unix.Gettid())
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer SetName(strings.TrimSpace(string(old)))
	if err := SetName("rpc.statd"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); strings.TrimSpace(string(got)) != "rpc.statd" {
		t.Errorf("comm = %q after SetName(rpc.statd)", got)
	}
}
