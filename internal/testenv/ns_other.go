//go:build !linux

package testenv

import (
	"errors"
	"syscall"
)

// namespaces: only Linux has the namespaces the daemon tests need; the
// re-executed tests then fail to set up, and say so.
func namespaces() *syscall.SysProcAttr { return nil }

func setUp() error { return errors.New("network and mount namespaces need Linux") }
