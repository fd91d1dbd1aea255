// Command notify-bench times nfsrecover's sm-notify and the real one in
// the same run: how long until every answering peer has been notified,
// for 1,000 and 10,000 peers, and for 1,000 with every tenth silent. The
// peers are one helper process answering on 127.1.x.y inside a network
// namespace the benchmark creates (nothing leaves it). Needs root.
//
//	go run ./bench/notify -ours ./nfsrecover [-real /usr/sbin/sm-notify]
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nfsrecover/pkg/legacy/smdir"
	"nfsrecover/pkg/store"
)

type scenario struct {
	peers, silentEvery int
}

func main() {
	ours := flag.String("ours", "./nfsrecover", "nfsrecover binary")
	real := flag.String("real", "/usr/sbin/sm-notify", "real sm-notify")
	flag.Parse()
	abs, _ := filepath.Abs(*ours)
	if err := run(abs, *real); err != nil {
		fmt.Fprintln(os.Stderr, "notify-bench:", err)
		os.Exit(1)
	}
}

func run(ours, real string) error {
	work, err := os.MkdirTemp("", "notify-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	helper := filepath.Join(work, "nsmhelper")
	if out, err := exec.Command("go", "build", "-o", helper, "nfsrecover/scripts/nsmhelper").CombinedOutput(); err != nil {
		return fmt.Errorf("build helper: %v %s", err, out)
	}
	ns := fmt.Sprintf("nfsr-nbench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	fmt.Printf("%-34s %18s %12s %10s\n", "time until every answering peer", "real", "ours (median of 3)", "ours/real")
	for _, sc := range []scenario{{1000, 0}, {10000, 0}, {1000, 10}} {
		var times [2]time.Duration
		var cells [2]string
		for i, tool := range []string{"real", "ours"} {
			d, done, err := measureMedian(ns, helper, work, tool, ours, real, sc)
			switch {
			case errors.Is(err, errTooSlow):
				// A lower bound: the ratio below is then an upper bound.
				cells[i] = fmt.Sprintf(">%.0fms (%d done)", ms(d), done)
			case err != nil:
				return fmt.Errorf("%s, %d peers: %w", tool, sc.peers, err)
			default:
				cells[i] = fmt.Sprintf("%.0fms", ms(d))
			}
			times[i] = d
		}
		label := fmt.Sprintf("%d peers", sc.peers)
		if sc.silentEvery > 0 {
			label += fmt.Sprintf(", 1 in %d silent", sc.silentEvery)
		}
		fmt.Printf("%-34s %18s %12s %10.4f\n", label, cells[0], cells[1], float64(times[1])/float64(times[0]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func peerName(i int) string { return fmt.Sprintf("127.1.%d.%d", i/256, i%256) }

// measure runs one tool against a fresh set of fake peers and returns
// the time until every answering peer got its notification.
var errTooSlow = errors.New("not done within the limit")

// measureMedian reports ours as the median of three runs (it takes
// milliseconds, so noise matters); the real tool, which takes seconds to
// minutes, once.
func measureMedian(ns, helper, work, tool, ours, real string, sc scenario) (time.Duration, int, error) {
	runs := 3
	if tool == "real" {
		runs = 1
	}
	var ds []time.Duration
	var done int
	for r := 0; r < runs; r++ {
		d, n, err := measure(ns, helper, work, tool, ours, real, sc)
		if err != nil {
			return d, n, err
		}
		ds, done = append(ds, d), n
	}
	slices.Sort(ds)
	return ds[len(ds)/2], done, nil
}

// limit bounds one measurement.
const limit = 2 * time.Minute

func measure(ns, helper, work, tool, ours, real string, sc scenario) (time.Duration, int, error) {
	dir, err := os.MkdirTemp(work, tool+"-")
	if err != nil {
		return 0, 0, err
	}
	every := sc.silentEvery
	if every == 0 {
		every = 1 << 30
	}
	got := filepath.Join(dir, "notified.txt")
	peers := exec.Command("ip", "netns", "exec", ns, helper, "peers", fmt.Sprint(every), got)
	stdout, _ := peers.StdoutPipe()
	if err := peers.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { peers.Process.Kill(); peers.Wait() }()
	bufio.NewReader(stdout).ReadString('\n') // "ready"
	answering := sc.peers
	if sc.silentEvery > 0 {
		answering -= sc.peers / sc.silentEvery
	}
	ms := make([]store.Monitor, sc.peers)
	for i := range ms {
		n := peerName(i)
		ms[i] = store.Monitor{MonName: n, DNSName: n, MyName: "srv.example", Prog: 100021, Vers: 3, Proc: 16}
	}
	// Both start from the same sm/ files: the state directory is the
	// record for ours too.
	if err := smdir.Write(dir, smdir.Dir{Monitors: ms}, true); err != nil {
		return 0, 0, err
	}
	var cmd *exec.Cmd
	if tool == "real" {
		cmd = exec.Command("ip", "netns", "exec", ns, real, "-d", "-f", "-P", dir, "-m", "3")
	} else {
		link := filepath.Join(dir, "sm-notify")
		os.Symlink(ours, link)
		// In the foreground (-d), like the real one: killable, and both
		// write a debug line per peer.
		cmd = exec.Command("ip", "netns", "exec", ns, "env", "NFSRECOVER_NFS_CONF=/nonexistent", link, "-d", "-P", dir,
			"--db", filepath.Join(dir, "nfsrecover.db"), "--pid-file", filepath.Join(dir, "guard"),
			"--nsm-state-file", filepath.Join(dir, "kstate"), "--deadline", "2m")
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for time.Since(start) < limit {
		if notified(got) >= answering {
			return time.Since(start), answering, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return limit, notified(got), errTooSlow
}

// notified counts peers that received the short name (sent after the
// full name was acknowledged), i.e. peers completely done.
func notified(file string) int {
	raw, _ := os.ReadFile(file)
	done := map[string]bool{}
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == "srv" {
			done[f[0]] = true
		}
	}
	return len(done)
}
