package daemon

import (
	"os"
	"path/filepath"
	"strings"
)

// processNames returns the command name of every process, from /proc.
func processNames() ([]string, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/comm")
	if err != nil {
		return nil, err
	}
	comms := make([]string, 0, len(paths))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil { // a process may exit meanwhile
			comms = append(comms, strings.TrimSpace(string(b)))
		}
	}
	return comms, nil
}
