//go:build linux

package cld

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDirOpener: a missing pipe is waited for with inotify and opened
// once created; a missing directory is an error at start; when the
// directory goes away (rpc_pipefs unmounted) the wait goes on until it
// comes back with the pipe, instead of hanging on a dead watch.
func TestDirOpener(t *testing.T) {
	pipefs := t.TempDir()
	if _, err := Watch(pipefs); err == nil {
		t.Fatal("Watch of a pipefs without nfsd/ succeeded")
	}
	dir := filepath.Join(pipefs, DirName)
	os.Mkdir(dir, 0o755)
	o, err := Watch(pipefs)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		p, err := o.Open(ctx)
		if err == nil {
			p.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned before the pipe existed: %v", err)
	case <-time.After(100 * time.Millisecond): // still waiting, as it should
	}
	os.WriteFile(o.Path(), nil, 0o600)
	if err := <-opened; err != nil {
		t.Fatalf("Open after creation: %v", err)
	}
	os.Remove(o.Path())
	go func() {
		p, err := o.Open(ctx)
		if err == nil {
			p.Close()
		}
		opened <- err
	}()
	os.Remove(dir)
	time.Sleep(300 * time.Millisecond) // let the watch be lost and one re-arm fail
	os.Mkdir(dir, 0o755)
	os.WriteFile(o.Path(), nil, 0o600)
	if err := <-opened; err != nil {
		t.Fatalf("pipe back after its directory went and came back: %v", err)
	}
}
