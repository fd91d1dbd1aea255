// Command nfsrecover is the multi-call binary of NFS crash-recovery tools:
// rpc.statd, sm-notify, nfsdcltrack and a FreeBSD nfs-stablerestart
// manager, sharing one database. See package applets for dispatch.
//
// The kernel execs nfsdcltrack for every client event, so start-up time
// matters: skip the runtime's cgroup probing for GOMAXPROCS.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	"runtime"

	"nfsrecover/applets"
)

// init keeps the main goroutine on the main thread: applets run on it,
// so per-thread state they set (nfsdcltrack empties the capability
// bounding set of the calling thread) is what /proc/PID/status reports.
func init() { runtime.LockOSThread() }

func main() {
	os.Exit(applets.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
