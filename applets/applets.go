// Package applets is nfsrecover's multi-call entry point: the one table of
// applets, dispatch on argv[0] or on the first argument, and the
// busybox-style --list, --list-full and --install.
package applets

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"nfsrecover/applets/cld"
	"nfsrecover/applets/cltrack"
	"nfsrecover/applets/dbtool"
	"nfsrecover/applets/doctor"
	"nfsrecover/applets/grace"
	"nfsrecover/applets/notify"
	"nfsrecover/applets/stablerestart"
	"nfsrecover/applets/statd"
	"nfsrecover/applets/status"
	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/version"
)

// MainFunc is an applet's entry point. args[0] is the name it was invoked
// as; the result is the process exit status.
type MainFunc func(args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int

// Install is how --install puts an applet's names on disk.
type Install int

// Install policies.
const (
	// Link: a hard link (or with -s a symbolic link) to the binary.
	Link Install = iota
	// Copy: a file of its own, with its own inode. sm-notify is installed
	// so because Pacemaker's nfsnotify agent runs "killall -TERM
	// /usr/sbin/sm-notify" on every start and stop, and killall with a
	// path kills every process executing that file: with a link it would
	// kill rpc.statd and every other applet too.
	Copy
)

func (i Install) String() string { return [...]string{"link", "copy"}[i] }

// Applet is one row of the table.
type Applet struct {
	Name    string   // subcommand: nfsrecover NAME ...
	Links   []string // argv[0] names, installed by --install
	Dir     string   // where --install puts Links unless told otherwise
	Install Install  // how --install puts Links there
	Summary string
	// OS lists the systems (runtime.GOOS) the applet serves; nil means
	// every system. Elsewhere it is listed but refuses to run, with a
	// message naming the systems it needs.
	OS   []string
	Main MainFunc // nil: listed but not implemented yet
}

// linuxOnly marks the applets that serve Linux kernel interfaces (lockd's
// NSM upcalls, nfsd's client-tracking upcalls, /proc/fs/nfsd).
var linuxOnly = []string{"linux"}

// Table is THE applet table, in display order.
var Table = []Applet{
	{Name: "statd", Links: []string{statd.LinkName}, Dir: "/usr/sbin",
		Summary: "NSM daemon (RPC program 100024): monitors peers, relays reboot notifications", OS: linuxOnly, Main: statd.Main},
	{Name: "notify", Links: []string{notify.LinkName}, Dir: "/usr/sbin", Install: Copy,
		Summary: "tell every monitored peer that this host rebooted", OS: linuxOnly, Main: notify.Main},
	{Name: "cltrack", Links: []string{cltrack.LegacyName}, Dir: "/sbin",
		Summary: "NFSv4 client-tracking upcall for the kernel (nfsdcltrack), import/export", OS: linuxOnly, Main: cltrack.Main},
	{Name: "cld", Links: []string{cld.LinkName}, Dir: "/usr/sbin",
		Summary: "NFSv4 client-tracking daemon for the rpc_pipefs cld pipe (nfsdcld), import/export", OS: linuxOnly, Main: cld.Main},
	{Name: "stablerestart", Dir: "/usr/sbin",
		Summary: "inspect, verify, repair, import and export FreeBSD's nfs-stablerestart file", Main: stablerestart.Main},
	{Name: "db", Summary: "dump or check the nfsrecover database", Main: dbtool.Main},
	{Name: "doctor", Summary: "check this host's recovery setup and say how to fix what is wrong (exit 0 healthy, 1 problem, 2 warning)", OS: linuxOnly, Main: doctor.Main},
	{Name: "grace", Summary: "the cluster-wide grace period on etcd, for active/active knfsd heads: ganesha-rados-grace's commands and the node agent", Main: grace.Main},
	{Name: "status", Summary: "the recovery state on one screen: NSM state, peers, pending notices, clients, epochs (--json, --metrics)", Main: status.Main},
}

// find returns the applet invoked as name: its subcommand, one of its
// links, or "nfsrecover-NAME".
func find(name string) (Applet, bool) {
	for _, a := range Table {
		if name == a.Name || name == "nfsrecover-"+a.Name {
			return a, true
		}
		for _, l := range a.Links {
			if name == l {
				return a, true
			}
		}
	}
	return Applet{}, false
}

// Main dispatches a whole command line and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return dispatch(args, host{runtime.GOOS, daemon.SetName}, stdin, stdout, stderr)
}

// host is what dispatch needs from the system it runs on; tests give
// another system, and no setName so as not to rename the test process.
type host struct {
	goos    string
	setName func(string) error // the process's command name; nil: leave it
}

// dispatch is Main on host h.
func dispatch(args []string, h host, stdin io.Reader, stdout, stderr io.Writer) int {
	goos := h.goos
	if len(args) == 0 {
		args = []string{"nfsrecover"}
	}
	if a, ok := resolve(args[0]); ok {
		return run(a, h, args, stdin, stdout, stderr)
	}
	if len(args) < 2 {
		usage(stdout, goos)
		return 0
	}
	switch args[1] {
	case "--help", "-h", "help":
		usage(stdout, goos)
		return 0
	case "--version":
		fmt.Fprintf(stdout, "nfsrecover %s\n", version.Version)
		return 0
	case "--list":
		for _, a := range Table {
			fmt.Fprintln(stdout, a.Name)
		}
		return 0
	case "--list-full":
		listFull(stdout, goos)
		return 0
	case "--install":
		return install(args[2:], stdout, stderr)
	}
	a, ok := find(args[1])
	if !ok {
		fmt.Fprintf(stderr, "nfsrecover: %q is not an applet (see nfsrecover --list)\n", args[1])
		return 1
	}
	return run(a, h, args[1:], stdin, stdout, stderr)
}

// resolve finds the applet for argv[0], following a chain of symlinks
// (e.g. /sbin/my-cltrack -> nfsdcltrack -> nfsrecover) until a known name.
func resolve(argv0 string) (Applet, bool) {
	p := argv0
	for hops := 0; hops < 8; hops++ {
		if a, ok := find(filepath.Base(p)); ok {
			return a, true
		}
		if !strings.Contains(p, "/") {
			return Applet{}, false
		}
		target, err := os.Readlink(p)
		if err != nil {
			return Applet{}, false
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return Applet{}, false
}

// Identity is the name the applet's processes show (comm, argv[0]): its
// first link name, as HA agents look for it (pgrep rpc.statd, killall
// sm-notify), else its applet name.
func (a Applet) Identity() string {
	if len(a.Links) > 0 {
		return a.Links[0]
	}
	return a.Name
}

// RunsOn reports whether the applet serves the system goos.
func (a Applet) RunsOn(goos string) bool { return a.OS == nil || slices.Contains(a.OS, goos) }

func run(a Applet, h host, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	goos := h.goos
	if a.Main == nil {
		fmt.Fprintf(stderr, "nfsrecover: %s: not implemented yet\n", a.Name)
		return 1
	}
	if !a.RunsOn(goos) {
		fmt.Fprintf(stderr, "nfsrecover: %s serves %s kernel interfaces and does not run on %s\n",
			a.Name, strings.Join(a.OS, ", "), goos)
		return 1
	}
	if h.setName != nil {
		h.setName(a.Identity()) // what pgrep, pidof and killall match
	}
	if len(args) == 2 && args[1] == "--version" {
		// Every applet and link: what an operator checks after an install.
		fmt.Fprintf(stdout, "%s (nfsrecover %s applet) %s\n", filepath.Base(args[0]), a.Name, version.Version)
		return 0
	}
	return a.Main(args, stdin, stdout, stderr, os.LookupEnv)
}

func usage(w io.Writer, goos string) {
	fmt.Fprintf(w, `nfsrecover %s: NFS crash-recovery tools in one binary.

Usage:
  nfsrecover APPLET [ARGS...]     run an applet (see the list below)
  LINK [ARGS...]                  run the applet a link is named for
                                  (rpc.statd, sm-notify, nfsdcltrack)
  nfsrecover --list               list applet names
  nfsrecover --list-full          name, status, links and summary of each applet
  nfsrecover --install [-s] [DIR] create each applet's links (hard links, or
                                  symlinks with -s) in its standard directory,
                                  or all in DIR; existing correct links are kept,
                                  other existing files are never replaced
  nfsrecover --version
  nfsrecover --help

Applets:
`, version.Version)
	for _, a := range Table {
		status := ""
		switch {
		case a.Main == nil:
			status = " (not implemented yet)"
		case !a.RunsOn(goos):
			status = " (" + strings.Join(a.OS, ", ") + " only)"
		}
		fmt.Fprintf(w, "  %-14s %s%s\n", a.Name, a.Summary, status)
	}
	fmt.Fprintf(w, "\nRun \"nfsrecover APPLET --help\" for an applet's options.\n")
}

func listFull(w io.Writer, goos string) {
	for _, a := range Table {
		status := "ready"
		switch {
		case a.Main == nil:
			status = "not-implemented-yet"
		case !a.RunsOn(goos):
			status = strings.Join(a.OS, ",") + "-only"
		}
		var links []string
		for _, l := range a.Links {
			links = append(links, filepath.Join(a.Dir, l))
		}
		if len(links) == 0 {
			links = []string{"-"}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Name, status, strings.Join(links, ","), a.Install, a.Summary)
	}
}
