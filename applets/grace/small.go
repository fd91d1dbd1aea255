//go:build noetcd

package grace

import (
	"fmt"
	"io"
)

// ExitRefused is the status of every grace command in this build.
const ExitRefused = 1

// Main says that this build (make build-small) has no etcd client. The
// applet stays in the table so that scripts get a clear answer, not
// "not an applet".
func Main(args []string, _ io.Reader, _, stderr io.Writer, _ func(string) (string, bool)) int {
	fmt.Fprintln(stderr, "nfsrecover grace: this binary was built without etcd support (make build-small); use the full build")
	return ExitRefused
}
