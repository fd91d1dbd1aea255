package daemon

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// processNames returns the command name of every process, from the
// kern.proc.proc sysctl (what ps(1) reads).
func processNames() ([]string, error) {
	buf, err := unix.SysctlRaw("kern.proc.proc")
	if err != nil {
		return nil, fmt.Errorf("sysctl kern.proc.proc: %w", err)
	}
	procs, err := parseKinfoProcs(buf, binary.NativeEndian)
	if err != nil {
		return nil, err
	}
	comms := make([]string, len(procs))
	for i, p := range procs {
		comms[i] = p.Comm
	}
	return comms, nil
}
