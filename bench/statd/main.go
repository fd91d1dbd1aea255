// Command statd-bench runs nfsrecover's rpc.statd and the real one in the
// same run (one after the other: both register program 100024) and
// prints SM_MON rates, start-to-ready time and memory, with ratios.
//
//	go run ./bench/statd -ours ./nfsrecover [-real /usr/sbin/rpc.statd] [-names 2000] [-big 100000]
//
// Each SM_MON client keeps one TCP connection, as the kernel does.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/nsm"
	"nfsrecover/pkg/oncrpc"
	"nfsrecover/pkg/store"
)

var local = oncrpc.Rpcbind{Network: "udp", Address: "127.0.0.1:111"}

type impl struct {
	name, bin string
	ours      bool
	conf      string // nfs.conf for ours; "" = none
}

type result struct {
	rate1, rate8, rateBig float64
	ready                 time.Duration
	rssKB                 int
}

func main() {
	ours := flag.String("ours", "./nfsrecover", "nfsrecover binary")
	real := flag.String("real", "/usr/sbin/rpc.statd", "real rpc.statd")
	names := flag.Int("names", 2000, "distinct SM_MONs per measurement")
	big := flag.Int("big", 100000, "monitored peers for the large-list measurement")
	flag.Parse()
	abs, _ := filepath.Abs(*ours)
	res := map[string]result{}
	for _, im := range []impl{{"real", *real, false, ""}, {"ours", abs, true, ""}} {
		r, err := measure(im, *names, *big)
		if err != nil {
			fmt.Fprintf(os.Stderr, "statd-bench: %s: %v\n", im.name, err)
			os.Exit(1)
		}
		res[im.name] = r
	}
	e, err := measureEtcd(abs, *names)
	if err != nil {
		fmt.Fprintf(os.Stderr, "statd-bench: ours on etcd: %v\n", err)
		os.Exit(1)
	}
	a, b := res["real"], res["ours"]
	fmt.Printf("%-38s %12s %12s %10s %12s %10s\n", "measurement", "real", "ours", "ours/real", "ours+etcd", "etcd/real")
	row := func(label string, x, y float64, z ...float64) {
		fmt.Printf("%-38s %12.2f %12.2f %10.2f", label, x, y, y/x)
		if len(z) > 0 {
			fmt.Printf(" %12.2f %10.2f", z[0], z[0]/x)
		}
		fmt.Println()
	}
	row(fmt.Sprintf("SM_MON/s, 1 client (%d names)", *names), a.rate1, b.rate1, e.rate1)
	row(fmt.Sprintf("SM_MON/s, 8 clients (%d names)", *names), a.rate8, b.rate8, e.rate8)
	row(fmt.Sprintf("SM_MON/s, 1 client, %d monitored", *big), a.rateBig, b.rateBig)
	row(fmt.Sprintf("start-to-ready ms, %d monitored", *big), float64(a.ready.Milliseconds()), float64(b.ready.Milliseconds()))
	row(fmt.Sprintf("RSS KiB, %d monitored", *big), float64(a.rssKB), float64(b.rssKB))
	fmt.Println("ours+etcd: each SM_MON also recorded against a floating IP on a local 3-member etcd (quorum-committed before the reply)")
}

// measureEtcd runs ours with a floating IP it holds (127.0.0.1) on a
// 3-member etcd embedded in this process, and measures the SM_MON rates.
func measureEtcd(bin string, names int) (result, error) {
	var r result
	owner := &etcdtest.Owner{}
	defer owner.Close()
	ec := etcdtest.Start(owner, 3)
	dir, err := os.MkdirTemp("", "statd-bench-etcd-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "nfs.conf")
	body := fmt.Sprintf("[nfsrecover]\netcd-endpoints = %s\netcd-prefix = /bench/\nfloating-ips = 127.0.0.1\n", strings.Join(ec.Endpoints(), ","))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return r, err
	}
	stop, _, err := start(impl{"ours+etcd", bin, true, conf}, dir)
	if err != nil {
		return r, err
	}
	defer stop()
	if r.rate1, err = monRate(1, names, 203); err == nil {
		r.rate8, err = monRate(8, names, 204)
	}
	if err != nil {
		return r, err
	}
	// Every SM_MON answered must be on etcd, or this measured nothing.
	c, err := cluster.Dial(context.Background(), cluster.Config{Endpoints: ec.Endpoints(), Prefix: "/bench/"})
	if err != nil {
		return r, err
	}
	defer c.Close()
	recs, err := c.VIPMonitors(context.Background(), "127.0.0.1")
	if err == nil && len(recs) < 2*names {
		err = fmt.Errorf("%d records on etcd after %d SM_MONs: statd did not record them per floating IP", len(recs), 2*names)
	}
	return r, err
}

func measure(im impl, names, big int) (result, error) {
	var r result
	dir, err := os.MkdirTemp("", "statd-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	stop, _, err := start(im, dir)
	if err != nil {
		return r, err
	}
	r.rate1, err = monRate(1, names, 200)
	if err == nil {
		r.rate8, err = monRate(8, names, 201)
	}
	stop()
	if err != nil {
		return r, err
	}
	big1 := filepath.Join(dir, "big")
	if err := prefill(big1, big); err != nil {
		return r, err
	}
	t0 := time.Now()
	stop, pid, err := start(im, big1)
	if err != nil {
		return r, err
	}
	defer stop()
	r.ready = time.Since(t0)
	r.rssKB = rss(pid)
	r.rateBig, err = monRate(1, names, 202)
	return r, err
}

// start runs one statd on dir and waits until it answers SM_NULL.
func start(im impl, dir string) (func(), int, error) {
	os.MkdirAll(filepath.Join(dir, "sm"), 0o700)
	os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
	args := []string{"-F", "-L", "-P", dir}
	var cmd *exec.Cmd
	if im.ours {
		link := filepath.Join(dir, "rpc.statd")
		os.Symlink(im.bin, link)
		cmd = exec.Command(link, append(args, "--db", filepath.Join(dir, "nfsrecover.db"),
			"--nsm-state-file", filepath.Join(dir, "kstate"), "--pid-file", filepath.Join(dir, "pid"))...)
		conf := im.conf
		if conf == "" {
			conf = "/nonexistent"
		}
		cmd.Env = []string{"NFSRECOVER_NFS_CONF=" + conf}
	} else {
		cmd = exec.Command(im.bin, args...)
	}
	cmd = inPrivateResolver(cmd, dir)
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		exec.Command("pkill", "-f", "--", "-P "+dir+"$").Run() // the statd under unshare
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < 1200; i++ {
		if port := tcpPort(); port != 0 {
			if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return stop, statdPid(dir), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, 0, fmt.Errorf("%s did not become ready", im.name)
}

func tcpPort() uint16 {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p, _ := local.PmapGetPort(ctx, nsm.Program, 1, oncrpc.ProtoTCP)
	return p
}

// prefill writes n monitor records: sm/ files for the real statd, the
// database for ours.
func prefill(dir string, n int) error {
	ms := make([]store.Monitor, n)
	for i := range ms {
		name := fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
		ms[i] = store.Monitor{MonName: name, DNSName: name, MyName: "srv", Prog: 100021, Vers: 3, Proc: 16}
	}
	// Both read the same sm/ files at start: the state directory is the
	// record for ours too (it adopts the files into its database). Plain
	// writes (no fsync per file): this is set-up, not measured.
	sm := filepath.Join(dir, "sm")
	os.MkdirAll(sm, 0o700)
	os.MkdirAll(filepath.Join(dir, "sm.bak"), 0o700)
	for _, m := range ms {
		if err := os.WriteFile(filepath.Join(sm, m.DNSName), []byte(smdir.FormatLine(m)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// measureFor caps one rate measurement: a statd slower than this is
// measured on what it completed (its rate falls as its list grows).
const measureFor = 20 * time.Second

// monRate sends up to n distinct SM_MONs from clients parallel
// connections, for at most measureFor, and returns SM_MONs per second.
func monRate(clients, n int, prefix int) (float64, error) {
	port := tcpPort()
	var done atomic.Int64
	deadline := time.Now().Add(measureFor)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			for i := c; i < n && time.Now().Before(deadline); i += clients {
				// Numeric names: the real statd needs DNS for anything else.
				if err := mon(conn, fmt.Sprintf("10.%d.%d.%d", prefix, i/256%256, i%256)); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

func mon(c net.Conn, name string) error {
	args, _ := nsm.Encode(&nsm.Mon{MonID: nsm.MonID{MonName: name, MyID: nsm.MyID{MyName: "srv", MyProg: 100021, MyVers: 3, MyProc: 16}}})
	xid := oncrpc.NewXID()
	c.SetDeadline(time.Now().Add(10 * time.Minute)) // one real-statd call at 100k peers takes minutes
	if _, err := c.Write(oncrpc.AppendRecordMark(nil, oncrpc.AppendCall(nil, xid, nsm.Program, 1, nsm.ProcMon, oncrpc.Auth{}, args))); err != nil {
		return err
	}
	rec, err := oncrpc.ReadRecord(c, 9000)
	if err != nil {
		return err
	}
	h, err := oncrpc.DecodeReply(rec)
	if err != nil || !h.Accepted || h.AcceptStat != oncrpc.Success || len(h.Results) < 4 || h.Results[3] != 0 {
		return fmt.Errorf("SM_MON %s failed: %+v %v", name, h, err)
	}
	return nil
}

func rss(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// inPrivateResolver runs cmd in a private mount namespace whose
// /etc/resolv.conf names 127.0.0.1, where nothing listens: lookups fail at
// once instead of timing out, so the benchmark measures statd rather than
// the resolver (rpc.statd reverse-resolves even numeric names).
func inPrivateResolver(cmd *exec.Cmd, dir string) *exec.Cmd {
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644)
	script := "mount --bind " + conf + " /etc/resolv.conf && exec \"$@\""
	wrapped := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", cmd.Path}, cmd.Args[1:]...)...)
	wrapped.Env = append(cmd.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	return wrapped
}

// statdPid finds the statd serving dir (it runs under unshare).
func statdPid(dir string) int {
	out, _ := exec.Command("pgrep", "-n", "-f", "--", "-P "+dir+"( |$)").Output()
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}
