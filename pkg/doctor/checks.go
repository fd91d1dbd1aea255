package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/nsmdir"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

func (h Host) rpcbind() oncrpc.Rpcbind { return oncrpc.Rpcbind{Network: "udp", Address: h.Rpcbind} }

func (h Host) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.Timeout)
}

func checkRpcbind(ctx context.Context, h Host) []Finding {
	c, cancel := h.ctx(ctx)
	defer cancel()
	if _, err := h.rpcbind().PmapGetPort(c, 100000, 2, oncrpc.ProtoUDP); err != nil {
		return []Finding{{"rpcbind", Fail, fmt.Sprintf("no answer from rpcbind at %s: %v", h.Rpcbind, err),
			"start it: systemctl start rpcbind.socket rpcbind"}}
	}
	return []Finding{{Check: "rpcbind", Level: OK, Detail: "answers at " + h.Rpcbind}}
}

// checkStatd: registered on UDP and TCP, and the registration answers
// (a registration left by a dead statd does not).
func checkStatd(ctx context.Context, h Host) []Finding {
	var out []Finding
	host, _, _ := net.SplitHostPort(h.Rpcbind)
	for _, p := range []struct {
		name  string
		proto uint32
	}{{"udp", oncrpc.ProtoUDP}, {"tcp", oncrpc.ProtoTCP}} {
		c, cancel := h.ctx(ctx)
		port, err := h.rpcbind().PmapGetPort(c, nsm.Program, nsm.Version, p.proto)
		cancel()
		check := "statd " + p.name
		switch {
		case err != nil || port == 0:
			out = append(out, Finding{check, Fail, "rpc.statd is not registered on " + p.name,
				"start it: systemctl start rpc-statd (or rpc.statd)"})
			continue
		}
		c, cancel = h.ctx(ctx)
		_, err = oncrpc.Call(c, p.name, net.JoinHostPort(host, strconv.Itoa(int(port))), nsm.Program, nsm.Version, 0, nil)
		cancel()
		if err != nil {
			out = append(out, Finding{check, Fail, fmt.Sprintf("registered on %s port %d but nothing answers there (statd died): %v", p.name, port, err),
				"restart rpc.statd; a stale registration is replaced at start"})
			continue
		}
		out = append(out, Finding{Check: check, Level: OK, Detail: fmt.Sprintf("registered and answering on %s port %d", p.name, port)})
	}
	return out
}

// checkOwner: statd runs as the owner of sm/ and must be able to write
// the database (and its directory, which bbolt needs for nothing else
// but creation).
func checkOwner(_ context.Context, h Host) []Finding {
	sm := filepath.Join(h.StateDir, "sm")
	uid, gid, err := ownerOf(sm)
	if err != nil {
		return []Finding{{"database owner", Warn, fmt.Sprintf("cannot read the owner of %s: %v", sm, err), "create it: mkdir -p " + sm}}
	}
	target := h.DB
	fi, err := os.Stat(target)
	if errors.Is(err, os.ErrNotExist) {
		return []Finding{{Check: "database owner", Level: Info, Detail: "no database " + h.DB + " yet: rpc.statd creates it (as root) at its first start"}}
	}
	if err != nil {
		return []Finding{{"database owner", Fail, fmt.Sprintf("%s: %v", target, err), ""}}
	}
	if uid != 0 && !writable(fi, uid, gid) {
		return []Finding{{"database owner", Fail,
			fmt.Sprintf("statd runs as uid %d (owner of %s) and cannot write %s", uid, sm, target),
			fmt.Sprintf("chown %d %s", uid, target)}}
	}
	return []Finding{{Check: "database owner", Level: OK, Detail: fmt.Sprintf("uid %d (owner of sm/) can write %s", uid, target)}}
}

func writable(fi os.FileInfo, uid, gid int) bool {
	fuid, fgid, _ := statIDs(fi)
	m := fi.Mode().Perm()
	switch {
	case fuid == uid:
		return m&0o200 != 0
	case fgid == gid:
		return m&0o020 != 0
	}
	return m&0o002 != 0
}

// checkMirror: the legacy files (read by HA agents and nfs-utils) and the
// database say the same.
func checkMirror(_ context.Context, h Host) []Finding {
	if _, err := os.Stat(h.DB); errors.Is(err, os.ErrNotExist) {
		return []Finding{{Check: "mirror", Level: Info, Detail: "no database yet: rpc.statd fills it from " + h.StateDir + " at its first start"}}
	}
	c, err := store.DumpFile(h.DB)
	if err != nil {
		return []Finding{{"mirror", Fail, fmt.Sprintf("cannot read the database: %v", err), "nfsrecover db check --db " + h.DB}}
	}
	d := smdir.ReadLive(h.StateDir)
	if diff := nsmdir.Differences(c, d); len(diff) > 0 {
		return []Finding{{"mirror", Fail, fmt.Sprintf("%s and the database disagree: %s", h.StateDir, strings.Join(diff, "; ")),
			"restart rpc.statd (it reconciles at start: the files win), or nfsrecover statd import --replace"}}
	}
	return []Finding{{Check: "mirror", Level: OK, Detail: fmt.Sprintf("%s and the database agree (%d monitored, %d to notify)", h.StateDir, len(c.Monitors), len(c.Notify))}}
}

// checkKernelState: lockd's idea of our NSM state is the one we store.
func checkKernelState(_ context.Context, h Host) []Finding {
	raw, err := os.ReadFile(h.NSMStateFile)
	if err != nil {
		return []Finding{{Check: "kernel state", Level: Info, Detail: "no " + h.NSMStateFile + " (lockd not loaded)"}}
	}
	c, err := store.DumpFile(h.DB)
	if err != nil || !c.HasNSMState {
		return []Finding{{"kernel state", Warn, "the database holds no NSM state yet", "start rpc.statd or sm-notify once"}}
	}
	k, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if int32(k) != c.NSMState {
		return []Finding{{"kernel state", Warn, fmt.Sprintf("the kernel says %d, the database %d", k, c.NSMState),
			"restart rpc.statd, which tells the kernel at start"}}
	}
	return []Finding{{Check: "kernel state", Level: OK, Detail: fmt.Sprintf("kernel and database agree: %d", k)}}
}

// checkNames: every name sm-notify sends resolves back (peers look our
// address up to match their records).
func checkNames(ctx context.Context, h Host) []Finding {
	var out []Finding
	for _, n := range h.Names {
		c, cancel := h.ctx(ctx)
		addrs := []string{n}
		if _, err := netip.ParseAddr(n); err != nil {
			addrs, err = net.DefaultResolver.LookupHost(c, n)
			if err != nil {
				cancel()
				out = append(out, Finding{"reverse DNS", Warn, fmt.Sprintf("%s does not resolve: %v", n, err), "add it to DNS or /etc/hosts"})
				continue
			}
		}
		names, err := net.DefaultResolver.LookupAddr(c, addrs[0])
		cancel()
		if err != nil || len(names) == 0 {
			out = append(out, Finding{"reverse DNS", Warn, fmt.Sprintf("%s (%s) has no PTR record; peers may not match sm-notify's notices", n, addrs[0]),
				"add a PTR record (or an /etc/hosts line) for " + addrs[0]})
			continue
		}
		out = append(out, Finding{Check: "reverse DNS", Level: OK, Detail: fmt.Sprintf("%s -> %s", addrs[0], names[0])})
	}
	return out
}

// checkClientTracking: which path nfsd uses for NFSv4 client records, and
// whether its program is there.
func checkClientTracking(_ context.Context, h Host) []Finding {
	if _, err := os.Stat(filepath.Join(h.NfsdDir, "versions")); err != nil {
		return []Finding{{Check: "client tracking", Level: Info, Detail: "nfsd is not running (no " + h.NfsdDir + "/versions)"}}
	}
	out := []Finding{grace(h)}
	if !mounted(h.Mountinfo, h.Pipefs, "rpc_pipefs") {
		out = append(out, Finding{"rpc_pipefs", Warn, "rpc_pipefs is not mounted at " + h.Pipefs + " (nfs.conf [general] pipefs-directory)",
			"systemctl start rpc_pipefs.target, or mount -t rpc_pipefs sunrpc " + h.Pipefs})
	}
	if _, err := os.Stat(filepath.Join(h.Pipefs, "nfsd", "cld")); err == nil {
		if !h.Running("nfsdcld") {
			return append(out, Finding{"client tracking", Fail, "nfsd uses nfsdcld (the cld pipe exists) but no nfsdcld runs: clients cannot reclaim",
				"systemctl start nfsdcld"})
		}
		return append(out, Finding{Check: "client tracking", Level: OK, Detail: "nfsd uses nfsdcld, which runs"})
	}
	if p, err := os.ReadFile(h.CltrackProg); err == nil && strings.TrimSpace(string(p)) != "" {
		prog := strings.TrimSpace(string(p))
		if _, err := os.Stat(prog); err != nil {
			return append(out, Finding{"client tracking", Fail, "nfsd runs " + prog + ", which is missing", "install nfsdcltrack or set cltrack_prog"})
		}
		return append(out, Finding{Check: "client tracking", Level: OK, Detail: "nfsd runs the upcall " + prog})
	}
	return append(out, Finding{"client tracking", Warn, "no cld pipe and no cltrack_prog: nfsd uses the legacy v4recovery directory or nothing",
		"start nfsdcld before nfsd"})
}

// grace reports nfsd's NFSv4 grace period (v4_end_grace: N while it runs).
func grace(h Host) Finding {
	b, err := os.ReadFile(filepath.Join(h.NfsdDir, "v4_end_grace"))
	switch {
	case err != nil:
		return Finding{Check: "grace period", Level: Info, Detail: "unknown: " + err.Error()}
	case strings.HasPrefix(string(b), "N"):
		return Finding{Check: "grace period", Level: Info, Detail: "running: clients are reclaiming their state; new locks wait"}
	}
	return Finding{Check: "grace period", Level: OK, Detail: "over"}
}

// mounted reports whether mountinfo lists fstype mounted at dir.
func mounted(mountinfo, dir, fstype string) bool {
	f, err := os.Open(mountinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && len(fields) > 4 && fields[4] == dir && fields[i+1] == fstype {
				return true
			}
		}
	}
	return false
}
