// Package status is the status applet: one screen of what the recovery
// state holds (NSM state, peers, pending notifications, NFSv4 clients,
// epochs, boot), as text, JSON or node_exporter textfile metrics.
package status

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// Report is what status shows; its JSON is "status --json".
type Report struct {
	Database          string  `json:"database"`
	NSMState          *int32  `json:"nsm_state"` // null until one was stored
	MonitoredPeers    int     `json:"monitored_peers"`
	PendingNotify     int     `json:"pending_notifications"`
	OldestPendingAge  float64 `json:"oldest_pending_age_seconds"` // 0 when none
	CltrackClients    int     `json:"cltrack_clients"`
	CltrackHashOnly   int     `json:"cltrack_hash_only"`
	CldStarted        bool    `json:"cld_started"`
	CldCurrentEpoch   uint64  `json:"cld_current_epoch"`
	CldRecoveryEpoch  uint64  `json:"cld_recovery_epoch"` // 0: no grace period
	CldCurrentClients int     `json:"cld_current_clients"`
	CldRecoverable    int     `json:"cld_recovery_clients"`
	StableFiles       int     `json:"stablerestart_files"`
	BootTime          int64   `json:"boot_time"` // epoch seconds, from /proc/stat btime; 0 if unknown
	// Cluster is the view from etcd when nfs.conf names etcd endpoints.
	Cluster *cluster.View `json:"cluster,omitempty"`
}

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	status := 0
	app := &cli.App{
		Name:            "nfsrecover status",
		Usage:           "show the recovery state on one screen (read-only)",
		UsageText:       "nfsrecover status [--db PATH] [--json] [--metrics FILE]",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "db", Usage: store.PathHelp},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "metrics", Usage: "also write the report to `FILE` in node_exporter's textfile format (atomically)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			path, _ := store.Locate(store.Where{DB: c.String("db")}, lookupEnv, conf)
			r, err := Gather(path, time.Now(), bootTime())
			if err != nil {
				return err
			}
			if r.Cluster, err = cliutil.ClusterView(c.Context, conf); err != nil {
				return err
			}
			if m := c.String("metrics"); m != "" {
				if err := WriteMetrics(m, r); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			r.print(stdout)
			return nil
		},
	}
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover status"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover status: %v\n", err)
		status = 1
	}
	return status
}

// Gather reads the database once and builds the report.
func Gather(path string, now time.Time, boot int64) (Report, error) {
	c, err := store.DumpFile(path)
	if err != nil {
		return Report{}, err
	}
	r := Report{Database: path, MonitoredPeers: len(c.Monitors), PendingNotify: len(c.Notify),
		CltrackClients: len(c.Clients), CltrackHashOnly: len(c.Hashes), StableFiles: len(c.Stable), BootTime: boot}
	if c.HasNSMState {
		r.NSMState = &c.NSMState
	}
	if len(c.Notify) > 0 {
		oldest := slices.MinFunc(c.Notify, func(a, b store.Monitor) int { return int(a.Created - b.Created) })
		r.OldestPendingAge = max(0, now.Sub(time.Unix(oldest.Created, 0)).Seconds())
	}
	if c.Cld != nil {
		e := c.Cld.Epochs
		r.CldStarted, r.CldCurrentEpoch, r.CldRecoveryEpoch = true, e.Current, e.Recovery
		r.CldCurrentClients, r.CldRecoverable = len(c.Cld.Records[e.Current]), len(c.Cld.Records[e.Recovery])
	}
	return r, nil
}

func (r Report) print(w io.Writer) {
	state := "none stored"
	if r.NSMState != nil {
		state = strconv.Itoa(int(*r.NSMState))
	}
	fmt.Fprintf(w, "database            %s\n", r.Database)
	if r.BootTime > 0 {
		fmt.Fprintf(w, "last boot           %s\n", time.Unix(r.BootTime, 0).UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "NSM state           %s\n", state)
	fmt.Fprintf(w, "monitored peers     %d\n", r.MonitoredPeers)
	fmt.Fprintf(w, "pending notices     %d", r.PendingNotify)
	if r.PendingNotify > 0 {
		fmt.Fprintf(w, " (oldest %s)", time.Duration(r.OldestPendingAge*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(w, "\nNFSv4 clients       %d (nfsdcltrack), %d hash-only (v4recovery)\n", r.CltrackClients, r.CltrackHashOnly)
	if r.CldStarted {
		grace := "no grace period"
		if r.CldRecoveryEpoch != 0 {
			grace = fmt.Sprintf("in grace: %d clients may reclaim from epoch %d", r.CldRecoverable, r.CldRecoveryEpoch)
		}
		fmt.Fprintf(w, "nfsdcld epochs      current %d (%d clients), %s\n", r.CldCurrentEpoch, r.CldCurrentClients, grace)
	} else {
		fmt.Fprintf(w, "nfsdcld epochs      cld never started on this database\n")
	}
	fmt.Fprintf(w, "stablerestart files %d\n", r.StableFiles)
	if r.Cluster != nil {
		printCluster(w, *r.Cluster)
	}
}

// metric is one line of the textfile format.
type metric struct {
	name, help string
	value      float64
}

func (r Report) metrics() []metric {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m := []metric{
		{"nfsrecover_nsm_monitored_peers", "Peers statd monitors (sm/).", float64(r.MonitoredPeers)},
		{"nfsrecover_nsm_pending_notifications", "Peers not yet told of the last reboot (sm.bak/).", float64(r.PendingNotify)},
		{"nfsrecover_nsm_oldest_pending_notification_age_seconds", "Age of the oldest pending notification.", r.OldestPendingAge},
		{"nfsrecover_cltrack_clients", "nfsdcltrack client records.", float64(r.CltrackClients)},
		{"nfsrecover_cltrack_hash_only_records", "Hash-only records from a v4recovery import.", float64(r.CltrackHashOnly)},
		{"nfsrecover_cld_started", "1 once nfsdcld (cld) has run on this database.", b(r.CldStarted)},
		{"nfsrecover_cld_current_epoch", "nfsdcld's current epoch.", float64(r.CldCurrentEpoch)},
		{"nfsrecover_cld_recovery_epoch", "nfsdcld's recovery epoch, 0 outside grace.", float64(r.CldRecoveryEpoch)},
		{"nfsrecover_cld_in_grace", "1 while a grace period runs.", b(r.CldRecoveryEpoch != 0)},
		{"nfsrecover_cld_current_clients", "Clients in the current epoch.", float64(r.CldCurrentClients)},
		{"nfsrecover_cld_recovery_clients", "Clients that may reclaim.", float64(r.CldRecoverable)},
		{"nfsrecover_stablerestart_files", "Stable restart files stored.", float64(r.StableFiles)},
	}
	if r.NSMState != nil {
		m = append(m, metric{"nfsrecover_nsm_state", "NSM state number (odd: up).", float64(*r.NSMState)})
	}
	if r.BootTime > 0 {
		m = append(m, metric{"nfsrecover_boot_time_seconds", "Host boot time, epoch seconds.", float64(r.BootTime)})
	}
	if r.Cluster != nil {
		m = append(m, clusterMetrics(*r.Cluster)...)
	}
	return m
}

// WriteMetrics writes the report in node_exporter's textfile format,
// atomically (a collector never reads half a file).
func WriteMetrics(path string, r Report) error {
	var b strings.Builder
	for _, m := range r.metrics() {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", m.name, m.help, m.name, m.name, strconv.FormatFloat(m.value, 'g', -1, 64))
	}
	return fileutil.WriteAtomic(path, true, 0o644, func(tmp string) error {
		return os.WriteFile(tmp, []byte(b.String()), 0o644)
	})
}

// bootTime reads btime from /proc/stat; 0 when unknown.
func bootTime() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
