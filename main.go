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

	"nfsrecover/applets"
)

func main() {
	os.Exit(applets.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
