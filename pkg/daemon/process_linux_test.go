package daemon

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// On Linux the process table is /proc: this test's own process is found by
// the name the kernel shows for it.
func TestProcessRunningFindsSelf(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(comm))
	if ok, err := ProcessRunning(name); err != nil || !ok {
		t.Errorf("ProcessRunning(%q) = %v, %v; want true", name, ok, err)
	}
	absent := fmt.Sprintf("absent%d", os.Getpid())
	if ok, err := ProcessRunning(absent); err != nil || ok {
		t.Errorf("ProcessRunning(%q) = %v, %v; want false", absent, ok, err)
	}
}
