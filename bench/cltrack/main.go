// Command cltrack-bench times nfsrecover's nfsdcltrack against the real
// one in the same run, as the kernel invokes them (empty environment plus
// the NFSDCLTRACK_* variables, one exec per operation), and prints the
// median per exec and the ratio ours/real. Runs are interleaved so that
// machine noise hits both alike.
//
//	go run ./bench/cltrack -ours ./nfsrecover [-real /usr/sbin/nfsdcltrack] [-n 200]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nfsrecover/pkg/legacy/cltracksql"
	"nfsrecover/pkg/store"
)

type tool struct {
	name, path string
	dir        string // -s storage directory
}

func (t tool) run(env []string, args ...string) (time.Duration, error) {
	cmd := exec.Command(t.path, append([]string{"-s", t.dir}, args...)...)
	cmd.Env = env
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func main() {
	ours := flag.String("ours", "./nfsrecover", "nfsrecover binary")
	real := flag.String("real", "/usr/sbin/nfsdcltrack", "real nfsdcltrack")
	n := flag.Int("n", 200, "execs per operation (median reported)")
	sizes := flag.String("gracedone", "10000,100000", "client counts for the gracedone runs")
	trials := flag.Int("trials", 5, "gracedone trials per size")
	flag.Parse()
	if err := run(*ours, *real, *n, *sizes, *trials); err != nil {
		fmt.Fprintln(os.Stderr, "cltrack-bench:", err)
		os.Exit(1)
	}
}

func run(oursBin, realBin string, n int, sizes string, trials int) error {
	work, err := os.MkdirTemp("", "cltrack-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	abs, err := filepath.Abs(oursBin)
	if err != nil {
		return err
	}
	link := filepath.Join(work, "nfsdcltrack") // dispatch as the kernel would
	if err := os.Symlink(abs, link); err != nil {
		return err
	}
	r := tool{"real", realBin, filepath.Join(work, "real")}
	o := tool{"ours", link, filepath.Join(work, "ours")}
	for _, t := range []tool{r, o} {
		if _, err := t.run(nil, "init"); err != nil {
			return fmt.Errorf("%s init: %w", t.name, err)
		}
	}
	fmt.Printf("%-26s %12s %12s %10s\n", "operation (median)", "real", "ours", "ours/real")
	baseline(n)
	v40 := []string{"NFSDCLTRACK_CLIENT_HAS_SESSION=N"}
	v41 := []string{"NFSDCLTRACK_CLIENT_HAS_SESSION=Y"}
	ops := []struct {
		label string
		env   []string
		args  func(i int) []string
	}{
		{"create (new id, v4.0)", v40, func(i int) []string { return []string{"create", fmt.Sprintf("%08x", i)} }},
		{"check (known, v4.0)", v40, func(i int) []string { return []string{"check", fmt.Sprintf("%08x", i)} }},
		{"check (known, v4.1)", v41, func(i int) []string { return []string{"check", fmt.Sprintf("%08x", i)} }},
		{"check (unknown: refused)", v41, func(i int) []string { return []string{"check", "ffffffff"} }},
	}
	for _, op := range ops {
		var dr, do []time.Duration
		for i := 0; i < n; i++ {
			a, errA := r.run(op.env, op.args(i)...)
			b, errB := o.run(op.env, op.args(i)...)
			if (errA == nil) != (errB == nil) {
				return fmt.Errorf("%s #%d: real %v, ours %v", op.label, i, errA, errB)
			}
			dr, do = append(dr, a), append(do, b)
		}
		report(op.label, median(dr), median(do))
	}
	for _, s := range strings.Split(sizes, ",") {
		var count int
		if _, err := fmt.Sscan(s, &count); err != nil {
			return fmt.Errorf("bad -gracedone size %q", s)
		}
		if err := gracedone(r, o, count, trials); err != nil {
			return err
		}
	}
	return nil
}

func baseline(n int) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.Command("/bin/true")
		cmd.Env = []string{}
		start := time.Now()
		_ = cmd.Run()
		ds = append(ds, time.Since(start))
	}
	fmt.Printf("%-26s %12s\n", "/bin/true (exec floor)", ms(median(ds)))
}

func report(label string, real, ours time.Duration) {
	fmt.Printf("%-26s %12s %12s %10.2f\n", label, ms(real), ms(ours), float64(ours)/float64(real))
}

// gracedone fills both databases with count clients, all older than the
// boot time, and times the gracedone that forgets them.
func gracedone(r, o tool, count, trials int) error {
	clients := make([]store.Client, count)
	for i := range clients {
		clients[i] = store.Client{ID: []byte(fmt.Sprintf("Linux NFSv4.1 client-%07d", i)), Time: 1000, HasSession: store.SessionYes}
	}
	var dr, do []time.Duration
	for t := 0; t < trials; t++ {
		if err := fill(r, o, clients); err != nil {
			return err
		}
		a, err := r.run(nil, "gracedone", "2000")
		if err != nil {
			return fmt.Errorf("real gracedone: %w", err)
		}
		b, err := o.run(nil, "gracedone", "2000")
		if err != nil {
			return fmt.Errorf("ours gracedone: %w", err)
		}
		dr, do = append(dr, a), append(do, b)
	}
	report(fmt.Sprintf("gracedone (%d clients)", count), median(dr), median(do))
	return nil
}

func fill(r, o tool, clients []store.Client) error {
	if err := cltracksql.Write(filepath.Join(r.dir, cltracksql.FileName), clients, true); err != nil {
		return err
	}
	db, err := store.Open(filepath.Join(o.dir, "nfsrecover.db"), nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *store.Tx) error {
		if err := tx.DeleteAllClients(); err != nil {
			return err
		}
		for _, c := range clients {
			if err := tx.PutClient(c); err != nil {
				return err
			}
		}
		return nil
	})
}
