//go:build !linux

package cld

import (
	"context"
	"errors"
)

// DirOpener is the rpc_pipefs pipe opener; only Linux has rpc_pipefs.
type DirOpener struct{}

// errNoPipefs: rpc_pipefs is a Linux interface.
var errNoPipefs = errors.New("rpc_pipefs exists only on Linux")

// Watch fails: only Linux has rpc_pipefs.
func Watch(string) (*DirOpener, error) { return nil, errNoPipefs }

// Path is empty: there is no pipe.
func (*DirOpener) Path() string { return "" }

// Close does nothing.
func (*DirOpener) Close() error { return nil }

// Open fails: only Linux has rpc_pipefs.
func (*DirOpener) Open(context.Context) (Pipe, error) { return nil, errNoPipefs }
