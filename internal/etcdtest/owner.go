package etcdtest

import (
	"fmt"
	"os"
	"slices"
)

// T is what a Cluster needs from its owner: a testing.TB, or an Owner in a
// program (a benchmark) that runs a cluster outside the testing package.
type T interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatal(args ...any)
}

// Owner implements T for programs: its temporary directories and cleanups
// go at Close, and Fatal exits.
type Owner struct {
	dirs     []string
	cleanups []func()
}

// Helper does nothing.
func (*Owner) Helper() {}

// TempDir makes a directory that Close removes.
func (o *Owner) TempDir() string {
	d, err := os.MkdirTemp("", "etcdtest")
	if err != nil {
		o.Fatal(err)
	}
	o.dirs = append(o.dirs, d)
	return d
}

// Cleanup registers f to run at Close, last registered first.
func (o *Owner) Cleanup(f func()) { o.cleanups = append(o.cleanups, f) }

// Fatal runs the cleanups, prints args and exits with status 1.
func (o *Owner) Fatal(args ...any) {
	o.Close()
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}

// Close stops what was started and removes the directories.
func (o *Owner) Close() {
	for _, f := range slices.Backward(o.cleanups) {
		f()
	}
	o.cleanups = nil
	for _, d := range o.dirs {
		os.RemoveAll(d)
	}
	o.dirs = nil
}
