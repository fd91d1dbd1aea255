// Package doctor checks one host's NFS recovery setup: rpcbind, statd's
// registration, who can write the database, whether the legacy files and
// the database agree, the kernel's NSM state, reverse DNS for the names
// sm-notify sends, and the NFSv4 client-tracking path. Each finding says
// what is wrong and how to fix it.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/daemon"
)

// Level is how bad a finding is.
type Level int

// Levels, in increasing severity. The exit status is the worst one: 0
// for OK and Info, 2 for Warn, 1 for Fail.
const (
	OK Level = iota
	Info
	Warn
	Fail
)

func (l Level) String() string { return [...]string{"ok", "info", "warn", "FAIL"}[l] }

// MarshalJSON writes the level's name.
func (l Level) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }

// Finding is one check's result.
type Finding struct {
	Check  string `json:"check"`
	Level  Level  `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Host is what the checks look at; the zero value of each path means the
// standard one. Tests point it at their own namespace's files.
type Host struct {
	StateDir     string                 // statd's state directory (sm/, sm.bak/, state)
	DB           string                 // the nfsrecover database
	Rpcbind      string                 // host:port of rpcbind; default 127.0.0.1:111
	NSMStateFile string                 // the kernel's NSM state; default /proc/sys/fs/nfs/nsm_local_state
	NfsdDir      string                 // default /proc/fs/nfsd
	CltrackProg  string                 // default /sys/module/nfsd/parameters/cltrack_prog
	Pipefs       string                 // rpc_pipefs mount point from nfs.conf
	Mountinfo    string                 // default /proc/self/mountinfo
	Names        []string               // names or addresses sm-notify sends (-v, VIPs)
	Running      func(comm string) bool // whether a process of that name runs; default: the process table
	Timeout      time.Duration          // per network check; default 2 s
	Cluster      *cluster.View          // the cluster as etcd shows it; nil: not in one
	Settings     error                  // unusable [nfsrecover] cluster settings (cluster.Config.Err); nil: none
}

func (h *Host) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&h.StateDir, "/var/lib/nfs")
	def(&h.Rpcbind, "127.0.0.1:111")
	def(&h.NSMStateFile, "/proc/sys/fs/nfs/nsm_local_state")
	def(&h.NfsdDir, "/proc/fs/nfsd")
	def(&h.CltrackProg, "/sys/module/nfsd/parameters/cltrack_prog")
	def(&h.Pipefs, "/var/lib/nfs/rpc_pipefs")
	def(&h.Mountinfo, "/proc/self/mountinfo")
	if h.Running == nil {
		h.Running = func(comm string) bool { up, _ := daemon.ProcessRunning(comm); return up }
	}
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Second
	}
}

// Run runs every check and returns the findings in order.
func Run(ctx context.Context, h Host) []Finding {
	h.defaults()
	var out []Finding
	for _, check := range []func(context.Context, Host) []Finding{
		checkRpcbind, checkStatd, checkOwner, checkMirror, checkKernelState, checkNames, checkClientTracking, checkCluster,
	} {
		out = append(out, check(ctx, h)...)
	}
	return out
}

// Worst is the exit status for findings: 0 healthy, 1 a problem, 2 a
// warning.
func Worst(fs []Finding) int {
	w := OK
	for _, f := range fs {
		w = max(w, f.Level)
	}
	switch w {
	case Fail:
		return 1
	case Warn:
		return 2
	}
	return 0
}

// Print writes the findings for a person.
func Print(w io.Writer, fs []Finding) {
	for _, f := range fs {
		fmt.Fprintf(w, "[%-4s] %-16s %s\n", f.Level, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(w, "       %-16s fix: %s\n", "", f.Fix)
		}
	}
}
