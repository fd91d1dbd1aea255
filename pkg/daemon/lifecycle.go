package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// WritePidfile writes "pid\n" to path (replacing any old file) and returns
// a function that truncates it at exit, as rpc.statd does.
func WritePidfile(path string) (func(), error) {
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() { f.Truncate(0); f.Close() }, nil
}

// SdNotify sends a state string ("READY=1") to systemd when NOTIFY_SOCKET
// is set; otherwise it does nothing.
func SdNotify(lookupEnv func(string) (string, bool), state string) error {
	sock, ok := lookupEnv("NOTIFY_SOCKET")
	if !ok || sock == "" {
		return nil
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// EnvChild marks the re-executed child of Background.
const EnvChild = "NFSRECOVER_DAEMON_CHILD"

// IsChild reports whether this process is the re-executed child of
// Background: its parent already did the start-up work it did before it
// called Background.
func IsChild(lookupEnv func(string) (string, bool)) bool {
	v, ok := lookupEnv(EnvChild)
	return ok && v != ""
}

// ErrChildFailed means the background child exited before it was ready.
var ErrChildFailed = errors.New("daemon exited before it was ready")

// Background implements Type=forking start-up: the parent re-executes
// this program as a detached child (new session, stdio to /dev/null
// unless keepStderr) and waits until the child calls its ready function
// or exits. In the child (EnvChild set) it returns isChild=true and the
// ready function to call once listeners are registered.
//
// The child's argv[0] is name (the applet's identity, e.g. rpc.statd), so
// that /proc/PID/cmdline shows it; it is executed through the path this
// process was started as when that path's name is name (its command name
// is then right from the start), never through /proc/self/exe (which
// would make it "exe").
func Background(name string, args []string, lookupEnv func(string) (string, bool), keepStderr io.Writer) (isChild bool, ready func(), err error) {
	if IsChild(lookupEnv) {
		pipe := os.NewFile(3, "ready")
		return true, func() { pipe.Write([]byte{1}); pipe.Close() }, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return false, nil, err
	}
	exe, err := selfPath(name)
	if err != nil {
		return false, nil, err
	}
	cmd := exec.Command(exe, args[1:]...)
	cmd.Args[0] = name // the applet's identity, which also dispatches to it
	cmd.Env = append(os.Environ(), EnvChild+"=1")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if keepStderr != nil {
		cmd.Stderr = keepStderr
	}
	if err := cmd.Start(); err != nil {
		return false, nil, err
	}
	w.Close()
	var b [1]byte
	if n, _ := r.Read(b[:]); n == 1 {
		return false, nil, nil // ready: the parent exits 0
	}
	cmd.Wait()
	return false, nil, ErrChildFailed
}

// Detach is how a daemon that may stay in the foreground starts: in the
// foreground it returns a ready function that does nothing; otherwise it
// is Background, and parent reports that this process is the parent,
// which should exit 0 (its child is up and ready).
func Detach(foreground bool, name string, args []string, lookupEnv func(string) (string, bool)) (ready func(), parent bool, err error) {
	if foreground {
		return func() {}, false, nil
	}
	isChild, ready, err := Background(name, args, lookupEnv, nil)
	return ready, err == nil && !isChild, err
}

// selfPath returns the path to execute this program again: the path it
// was started as, when that is a file named name that is this program,
// else the program's own path.
func selfPath(name string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p := os.Args[0]; filepath.Base(p) == name && strings.Contains(p, "/") {
		if abs, err := filepath.Abs(p); err == nil {
			a, errA := os.Stat(abs)
			b, errB := os.Stat(exe)
			if errA == nil && errB == nil && os.SameFile(a, b) {
				return abs, nil
			}
		}
	}
	return exe, nil
}
