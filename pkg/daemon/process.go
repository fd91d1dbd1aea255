package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ProcessRunning reports whether a process whose command name is exactly
// name is running. The process table comes from /proc on Linux and from
// the kern.proc.proc sysctl on FreeBSD, which mounts no /proc by default.
func ProcessRunning(name string) (bool, error) {
	comms, err := processNames()
	if err != nil {
		return false, fmt.Errorf("cannot tell whether %s runs: %w", name, err)
	}
	return slices.Contains(comms, name), nil
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
