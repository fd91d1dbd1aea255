//go:build linux

// Command cld-bench runs nfsrecover's nfsdcld and the real one in the same
// run, each behind its own FUSE emulation of rpc_pipefs, and prints
// creates per second and the GraceStart stream time (medians of -trials
// rounds, each running every implementation in turn), one create's
// latency (against one "nfsdcltrack create" exec) and memory, with ratios.
//
//	go run ./bench/cld -ours ./nfsrecover [-real /usr/sbin/nfsdcld] [-clients 10000] [-stream 100000] [-threads 16]
//
// Needs root, /dev/fuse and fusermount3. Databases live on the disk
// under $TMPDIR, so every commit pays a real fsync.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/internal/pipefs"
	"nfsrecover/pkg/cld"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/legacy/cldsql"
	"nfsrecover/pkg/store"
)

type impl struct {
	name string
	argv func(pipefs, storage string) []string
	seed func(storage string, recs []store.CldRecord) error
	conf func(storage string) string // nfs.conf for the daemon; nil: none
}

type result struct {
	createRate float64       // creates/s with many threads
	stream     time.Duration // GraceStart of the big set
	one        time.Duration // median single create round trip
	rssKB      int
}

func main() {
	ours := flag.String("ours", "./nfsrecover", "nfsrecover binary")
	real := flag.String("real", "/usr/sbin/nfsdcld", "real nfsdcld")
	cltrack := flag.String("cltrack", "/usr/sbin/nfsdcltrack", "real nfsdcltrack, for the one-create comparison")
	clients := flag.Int("clients", 10000, "creates for the rate measurement")
	streamN := flag.Int("stream", 100000, "clients in the GraceStart stream")
	threads := flag.Int("threads", 16, "concurrent upcalls (nfsd threads)")
	samples := flag.Int("n", 200, "samples for the single-create median")
	only := flag.String("impls", "real,ours,ours+etcd", "implementations to measure, comma-separated (ratios need all three)")
	trials := flag.Int("trials", 3, "rounds of the create rate and the stream, each implementation in turn (medians are reported: one run varies by about 20% here)")
	flag.Parse()
	abs, _ := filepath.Abs(*ours)
	owner := &etcdtest.Owner{}
	defer owner.Close()
	ec := etcdtest.Start(owner, 3)
	oursArgv := func(p, s string) []string { return []string{abs, "cld", "-F", "-p", p, "-s", s} }
	impls := []impl{
		{"real", func(p, s string) []string { return []string{*real, "-F", "-p", p, "-s", s} }, seedReal, nil},
		{"ours", oursArgv, seedOurs, nil},
		{"ours+etcd", oursArgv, seedEtcd(ec.Endpoints()), etcdConf(ec.Endpoints())},
	}
	impls = slices.DeleteFunc(impls, func(im impl) bool { return !slices.Contains(strings.Split(*only, ","), im.name) })
	runs := map[string][]result{}
	for t := range max(*trials, 1) {
		for _, im := range impls {
			n := *samples
			if t > 0 {
				n = 0 // one create's median is taken in the first round
			}
			r, err := measure(im, *clients, *streamN, *threads, n)
			if err != nil {
				fmt.Fprintf(os.Stderr, "cld-bench: %s: %v\n", im.name, err)
				os.Exit(1)
			}
			runs[im.name] = append(runs[im.name], r)
		}
	}
	res := map[string]result{}
	for name, rs := range runs {
		res[name] = medians(rs)
	}
	exec1, err := cltrackCreate(*cltrack, *samples)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cld-bench: nfsdcltrack: %v\n", err)
		os.Exit(1)
	}
	a, b, e := res["real"], res["ours"], res["ours+etcd"]
	fmt.Printf("%-52s %12s %12s %14s %12s %14s\n", "measurement", "nfsdcld", "ours", "ratio", "ours+etcd", "etcd ratio")
	fmt.Printf("%-52s %12.0f %12.0f %9.1fx faster %12.0f %9.1fx faster\n", fmt.Sprintf("creates/s, %d clients, %d threads (median of %d)", *clients, *threads, max(*trials, 1)),
		a.createRate, b.createRate, b.createRate/a.createRate, e.createRate, e.createRate/a.createRate)
	fmt.Printf("%-52s %12s %12s %9.1fx faster %12s %9.1fx faster\n", fmt.Sprintf("GraceStart stream of %d clients (median of %d)", *streamN, max(*trials, 1)),
		ms(a.stream), ms(b.stream), a.stream.Seconds()/b.stream.Seconds(), ms(e.stream), a.stream.Seconds()/e.stream.Seconds())
	fmt.Printf("%-52s %12s %12s %9.1fx faster %12s %9.1fx faster\n", "one create upcall (median)",
		ms(a.one), ms(b.one), a.one.Seconds()/b.one.Seconds(), ms(e.one), a.one.Seconds()/e.one.Seconds())
	fmt.Printf("%-52s %12s %12s %9.1fx faster\n", "one create: nfsdcltrack exec vs our upcall", ms(exec1), ms(b.one), exec1.Seconds()/b.one.Seconds())
	perCreate := time.Duration(float64(time.Second) / b.createRate)
	fmt.Printf("%-52s %12s %12s %9.1fx less\n", "create cost under load: exec vs 1/(our rate)", ms(exec1), ms(perCreate), exec1.Seconds()/perCreate.Seconds())
	fmt.Printf("%-52s %12d %12d %9.2fx\n", fmt.Sprintf("peak RSS KiB after the %d stream", *streamN), a.rssKB, b.rssKB, float64(b.rssKB)/float64(a.rssKB))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// daemon is one running daemon behind its own pipefs.
type daemon struct {
	fs  *pipefs.FS
	cmd *exec.Cmd
	xid uint32
	mu  sync.Mutex
}

func startDaemon(im impl, storage string) (*daemon, error) {
	mnt, err := os.MkdirTemp("", "cld-bench-pipefs-")
	if err != nil {
		return nil, err
	}
	fs, err := pipefs.Mount(mnt)
	if err != nil {
		return nil, err
	}
	if err := fs.CreatePipe(); err != nil {
		return nil, err
	}
	d := &daemon{fs: fs}
	argv := im.argv(mnt, storage)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	conf := "/dev/null"
	if im.conf != nil {
		conf = im.conf(storage)
	}
	d.cmd.Env = append(os.Environ(), "NFSRECOVER_NFS_CONF="+conf)
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	for end := time.Now().Add(20 * time.Second); fs.Readers() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			d.stop()
			return nil, fmt.Errorf("%s never opened the pipe", argv[0])
		}
	}
	return d, nil
}

func (d *daemon) stop() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	dir := d.fs.Dir()
	d.fs.Unmount()
	os.Remove(dir)
}

func (d *daemon) call(m cld.Msg) ([][]byte, error) {
	d.mu.Lock()
	d.xid++
	m.XID = d.xid
	d.mu.Unlock()
	raw, err := cld.Encode(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := d.fs.Call(ctx, raw)
	if err == nil {
		if st, _ := cld.Decode(out[len(out)-1]); st.Status != 0 {
			err = fmt.Errorf("command %d: status %d", m.Cmd, st.Status)
		}
	}
	return out, err
}

func (d *daemon) boot() (int, error) {
	if _, err := d.call(cld.Msg{Vers: 1, Cmd: cld.GetVersion}); err != nil {
		return 0, err
	}
	out, err := d.call(cld.Msg{Vers: 2, Cmd: cld.GraceStart})
	return len(out) - 1, err
}

func client(i int) cld.Msg {
	h := sha256.Sum256([]byte(strconv.Itoa(i)))
	return cld.Msg{Vers: 2, Cmd: cld.Create, Name: []byte(fmt.Sprintf("Linux NFSv4.2 client-%07d.example.com", i)), PrincHash: h[:]}
}

// medians combines the rounds: the median rate and stream time, the first
// round's single-create median, the highest peak RSS.
func medians(rs []result) result {
	r := rs[0]
	rates := make([]float64, len(rs))
	times := make([]time.Duration, len(rs))
	for i, x := range rs {
		rates[i], times[i], r.rssKB = x.createRate, x.stream, max(r.rssKB, x.rssKB)
	}
	slices.Sort(rates)
	slices.Sort(times)
	r.createRate, r.stream = rates[len(rs)/2], times[len(rs)/2]
	return r
}

// measure runs one round for im: the create rate and, with samples > 0,
// one create's median on one daemon, then the stream on another.
func measure(im impl, clients, streamN, threads, samples int) (result, error) {
	var r result
	storage, err := os.MkdirTemp("", "cld-bench-db-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(storage)
	d, err := startDaemon(im, storage)
	if err != nil {
		return r, err
	}
	if _, err := d.boot(); err != nil {
		d.stop()
		return r, err
	}
	if r.createRate, err = createRate(d, clients, threads); err == nil && samples > 0 {
		r.one, err = oneCreate(d, samples)
	}
	d.stop()
	if err != nil {
		return r, err
	}
	return r, streamTime(im, streamN, &r)
}

// createRate sends n creates from threads concurrent "nfsd threads".
func createRate(d *daemon, n, threads int) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	start := time.Now()
	for w := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += threads {
				if _, err := d.call(client(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// oneCreate is the median round trip of single creates, one at a time.
func oneCreate(d *daemon, samples int) (time.Duration, error) {
	var ts []time.Duration
	for i := range samples {
		start := time.Now()
		if _, err := d.call(client(10_000_000 + i)); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(start))
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

// streamTime seeds a database with n clients in the current epoch and
// times the GraceStart that streams them, and the daemon's peak RSS.
func streamTime(im impl, n int, r *result) error {
	storage, err := os.MkdirTemp("", "cld-bench-db-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(storage)
	recs := make([]store.CldRecord, n)
	for i := range recs {
		m := client(i)
		recs[i] = store.CldRecord{ID: m.Name, PrincHash: m.PrincHash}
	}
	if err := im.seed(storage, recs); err != nil {
		return err
	}
	d, err := startDaemon(im, storage)
	if err != nil {
		return err
	}
	defer d.stop()
	if _, err := d.call(cld.Msg{Vers: 1, Cmd: cld.GetVersion}); err != nil {
		return err
	}
	var got atomic.Int64
	raw, _ := cld.Encode(cld.Msg{Vers: 2, Cmd: cld.GraceStart, XID: 1000})
	start := time.Now()
	_, err = d.fs.Stream(context.Background(), raw, func([]byte) { got.Add(1) })
	r.stream = time.Since(start)
	if err == nil && got.Load() != int64(n) {
		err = fmt.Errorf("streamed %d clients, want %d", got.Load(), n)
	}
	r.rssKB = peakRSS(d.cmd.Process.Pid)
	return err
}

func seedReal(storage string, recs []store.CldRecord) error {
	snap := cldsql.Snapshot{Version: 4, Epochs: store.Epochs{Current: 1}, Records: map[uint64][]store.CldRecord{1: recs}}
	return cldsql.Write(filepath.Join(storage, cldsql.FileName), snap, false)
}

func seedOurs(storage string, recs []store.CldRecord) error {
	db, err := store.Open(filepath.Join(storage, store.FileName), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *store.Tx) error {
		return tx.PutCldState(store.Epochs{Current: 1}, map[uint64][]store.CldRecord{1: recs})
	})
}

// cltrackCreate is the median time of one "nfsdcltrack create" exec.
func cltrackCreate(bin string, samples int) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "cld-bench-cltrack-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command(bin, "-s", dir, "init").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("init: %v %s", err, out)
	}
	var ts []time.Duration
	for i := range samples {
		cmd := exec.Command(bin, "-s", dir, "create", fmt.Sprintf("%x", client(i).Name))
		cmd.Env = []string{}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("create: %v %s", err, out)
		}
		ts = append(ts, time.Since(start))
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

// peakRSS reads VmHWM of a process in KiB.
func peakRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// etcdConf writes the nfs.conf of "ours+etcd": backend = etcd, with a
// server scope of its own for each storage directory (each run).
func etcdConf(endpoints []string) func(string) string {
	return func(storage string) string {
		conf := filepath.Join(storage, "nfs.conf")
		body := fmt.Sprintf("[nfsrecover]\nbackend = etcd\netcd-endpoints = %s\netcd-prefix = /bench/\nv4-scope = %s\n",
			strings.Join(endpoints, ","), filepath.Base(storage))
		os.WriteFile(conf, []byte(body), 0o644)
		return conf
	}
}

// seedEtcd puts recs in the current epoch of the storage directory's
// scope on etcd, through the same code the daemon uses.
func seedEtcd(endpoints []string) func(string, []store.CldRecord) error {
	return func(storage string, recs []store.CldRecord) error {
		ctx := context.Background()
		c, err := cluster.Dial(ctx, cluster.Config{Endpoints: endpoints, Prefix: "/bench/", RequestTimeout: time.Minute})
		if err != nil {
			return err
		}
		defer c.Close()
		s := &cluster.ScopeRecords{Client: c, Scope: filepath.Base(storage)}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(recs); i += 64 {
					if err := s.Create(ctx, recs[i]); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
}
