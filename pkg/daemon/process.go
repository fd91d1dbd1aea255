package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ProcessRunning reports whether a process whose command name is exactly
// name is running. It reads /proc where there is one (Linux) and asks
// pgrep(1) otherwise (FreeBSD mounts no /proc by default).
func ProcessRunning(name string) (bool, error) {
	if _, err := os.Stat("/proc/self/comm"); err == nil {
		comms, _ := filepath.Glob("/proc/[0-9]*/comm")
		for _, c := range comms {
			if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == name {
				return true, nil
			}
		}
		return false, nil
	}
	err := exec.Command("pgrep", "-x", name).Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil
	}
	return false, fmt.Errorf("cannot tell whether %s runs: pgrep: %w", name, err)
}

// PidfileAlive reports whether the pid written in path names a live
// process. A missing file means no.
func PidfileAlive(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false, fmt.Errorf("%s: no pid in it", path)
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM), nil
}
