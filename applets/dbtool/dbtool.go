// Package dbtool is the "nfsrecover db" applet: dump the database (human
// or JSON) and check its integrity.
package dbtool

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// EnvNFSConf names an alternative nfs.conf, as for the other applets.
const EnvNFSConf = nfsconf.EnvPath

// Exit statuses of "db check".
const (
	CheckOK       = 0
	CheckProblems = 1
	CheckNoOpen   = 2
)

// Main is the applet entry point.
func Main(args []string, _ io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	conf := nfsconf.LoadEnv(lookupEnv)
	dbFlag := &cli.StringFlag{Name: "db", Usage: store.PathHelp}
	dbPath := cliutil.DBPath(lookupEnv, conf, "")
	status := 0
	app := &cli.App{
		Name:           "nfsrecover db",
		Usage:          "inspect the nfsrecover database",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		Flags:          []cli.Flag{&cli.StringFlag{Name: "db", Usage: store.PathHelp}}, // before the command too
		CommandNotFound: func(_ *cli.Context, name string) {
			fmt.Fprintf(stderr, "nfsrecover db: unknown command %q (commands: dump, check)\n", name)
			status = 1
		},
		Commands: []*cli.Command{
			{
				Name:   "dump",
				Before: cliutil.NoArgs,
				Usage:  "print every record (read-only; waits for writers like any other user)",
				Flags:  []cli.Flag{dbFlag, &cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
				Action: func(c *cli.Context) error {
					return dump(stdout, dbPath(c), c.Bool("json"))
				},
			},
			{
				Name:   "check",
				Before: cliutil.NoArgs,
				Usage:  "verify file structure and every record; exit 0 clean, 1 problems found, 2 cannot open",
				Flags:  []cli.Flag{dbFlag},
				Action: func(c *cli.Context) error {
					status = check(stdout, stderr, dbPath(c))
					return nil
				},
			},
		},
	}
	if err := cliutil.Style(app).Run(append([]string{"nfsrecover db"}, args[1:]...)); err != nil {
		fmt.Fprintf(stderr, "nfsrecover db: %v\n", err)
		return 1
	}
	return status
}

// JSONClient is one client record in "db dump --json".
type JSONClient struct {
	ID         string `json:"id"`          // lowercase hex of the raw id
	Time       int64  `json:"time"`        // epoch seconds
	HasSession *int   `json:"has_session"` // 0, 1 or null
	Origin     string `json:"origin,omitempty"`
}

// JSONDump is the document "db dump --json" prints.
type JSONDump struct {
	Path    string `json:"path"`
	Schema  uint32 `json:"schema"`
	Cltrack struct {
		Clients []JSONClient `json:"clients"`
		Hashes  []string     `json:"hash_only"`
	} `json:"cltrack"`
	Stable   []JSONStable  `json:"stablerestart"`
	Monitors []JSONMonitor `json:"nsm_monitors"`
	Notify   []JSONMonitor `json:"nsm_notify"` // peers still to tell of our last reboot
	State    *int32        `json:"nsm_state"`  // null until statd or sm-notify stored one
	Cld      *JSONCld      `json:"cld"`        // null until the cld applet first ran
}

// JSONCld is nfsdcld's state: the grace table and both record sets.
type JSONCld struct {
	CurrentEpoch  uint64          `json:"current_epoch"`
	RecoveryEpoch uint64          `json:"recovery_epoch"` // 0: no grace period running
	FirstTime     bool            `json:"first_time"`
	Current       []JSONCldRecord `json:"current"`
	Recovery      []JSONCldRecord `json:"recovery"`
}

// JSONCldRecord is one client of an epoch, in creation order.
type JSONCldRecord struct {
	ID        string `json:"id"`        // lowercase hex of the raw id
	PrincHash string `json:"princhash"` // lowercase hex, empty when none
}

// JSONMonitor is one statd monitor record.
type JSONMonitor struct {
	MonName string `json:"mon_name"`
	DNSName string `json:"dns_name"`
	MyName  string `json:"my_name"`
	Prog    uint32 `json:"my_prog"`
	Vers    uint32 `json:"my_vers"`
	Proc    uint32 `json:"my_proc"`
	Priv    string `json:"priv"`
	Created int64  `json:"created"`
}

// JSONStable is one stored FreeBSD stable restart file (its bytes in hex).
type JSONStable struct {
	Path     string `json:"path"`
	Arch     string `json:"arch"`
	Imported int64  `json:"imported"`
	Size     int    `json:"size"`
	Data     string `json:"data"`
}

func origin(o store.Origin) string {
	switch {
	case o&store.OriginLegacyDir != 0:
		return "legacy-dir"
	case o&store.OriginImported != 0:
		return "imported"
	}
	return ""
}

func toJSON(c store.Contents) JSONDump {
	var d JSONDump
	d.Path, d.Schema = c.Path, c.Schema
	d.Cltrack.Clients = []JSONClient{}
	d.Cltrack.Hashes = append([]string{}, c.Hashes...)
	for _, cl := range c.Clients {
		j := JSONClient{ID: hex.EncodeToString(cl.ID), Time: cl.Time, Origin: origin(cl.Origin)}
		if cl.HasSession != store.SessionUnknown {
			v := 0
			if cl.HasSession == store.SessionYes {
				v = 1
			}
			j.HasSession = &v
		}
		d.Cltrack.Clients = append(d.Cltrack.Clients, j)
	}
	d.Monitors, d.Notify = jsonMonitors(c.Monitors), jsonMonitors(c.Notify)
	if c.HasNSMState {
		d.State = &c.NSMState
	}
	d.Stable = []JSONStable{}
	for _, s := range c.Stable {
		d.Stable = append(d.Stable, JSONStable{Path: s.Key, Arch: s.Arch, Imported: s.Imported, Size: len(s.Data), Data: hex.EncodeToString(s.Data)})
	}
	if c.Cld != nil {
		e := c.Cld.Epochs
		d.Cld = &JSONCld{CurrentEpoch: e.Current, RecoveryEpoch: e.Recovery, FirstTime: e.FirstTime,
			Current: cldRecords(c.Cld.Records[e.Current]), Recovery: cldRecords(c.Cld.Records[e.Recovery])}
	}
	return d
}

func jsonMonitors(ms []store.Monitor) []JSONMonitor {
	out := []JSONMonitor{}
	for _, m := range ms {
		out = append(out, JSONMonitor{m.MonName, m.DNSName, m.MyName, m.Prog, m.Vers, m.Proc, hex.EncodeToString(m.Priv[:]), m.Created})
	}
	return out
}

func cldRecords(recs []store.CldRecord) []JSONCldRecord {
	out := []JSONCldRecord{}
	for _, r := range recs {
		out = append(out, JSONCldRecord{hex.EncodeToString(r.ID), hex.EncodeToString(r.PrincHash)})
	}
	return out
}

// dumpCld prints nfsdcld's grace table and both record sets.
func dumpCld(w io.Writer, c *store.CldContents) {
	if c == nil {
		fmt.Fprintf(w, "\ncld (nfsdcld): not started on this database\n")
		return
	}
	e := c.Epochs
	grace := "no grace period running"
	if e.Recovery != 0 {
		grace = fmt.Sprintf("grace period running, recovery epoch %d", e.Recovery)
	}
	fmt.Fprintf(w, "\ncld (nfsdcld): current epoch %d, %s, first_time %v\n", e.Current, grace, e.FirstTime)
	for _, set := range []struct {
		name  string
		epoch uint64
	}{{"current", e.Current}, {"recovery", e.Recovery}} {
		if set.epoch == 0 {
			continue
		}
		recs := c.Records[set.epoch]
		fmt.Fprintf(w, "  %s epoch %d: %d clients\n", set.name, set.epoch, len(recs))
		for _, r := range recs {
			fmt.Fprintf(w, "    %x  princhash %x\n", r.ID, r.PrincHash)
		}
	}
}

func dump(w io.Writer, path string, asJSON bool) error {
	c, err := store.DumpFile(path)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(toJSON(c))
	}
	fmt.Fprintf(w, "database %s (schema %d)\n\ncltrack clients: %d\n", c.Path, c.Schema, len(c.Clients))
	if len(c.Clients) > 0 {
		fmt.Fprintf(w, "  %-20s  %-11s  %-7s  %-10s  %s\n", "TIME (UTC)", "EPOCH", "SESSION", "ORIGIN", "ID (hex)")
	}
	for _, cl := range c.Clients {
		fmt.Fprintf(w, "  %-20s  %-11d  %-7s  %-10s  %x\n",
			time.Unix(cl.Time, 0).UTC().Format("2006-01-02 15:04:05"), cl.Time, cl.HasSession, origin(cl.Origin), cl.ID)
	}
	fmt.Fprintf(w, "\ncltrack hash-only records (v4recovery md5 names): %d\n", len(c.Hashes))
	for _, h := range c.Hashes {
		fmt.Fprintf(w, "  %s\n", h)
	}
	state := "none stored"
	if c.HasNSMState {
		state = fmt.Sprint(c.NSMState)
	}
	fmt.Fprintf(w, "\nNSM state number: %s\n", state)
	fmt.Fprintf(w, "\nstatd monitors (sm/): %d\n", len(c.Monitors))
	for _, m := range c.Monitors {
		fmt.Fprintf(w, "  %s (%s) for %s %d/%d/%d priv %x\n", m.MonName, m.DNSName, m.MyName, m.Prog, m.Vers, m.Proc, m.Priv)
	}
	fmt.Fprintf(w, "\nnotify list (sm.bak/, peers still to tell of our reboot): %d\n", len(c.Notify))
	for _, m := range c.Notify {
		fmt.Fprintf(w, "  %s (%s) from %s\n", m.MonName, m.DNSName, m.MyName)
	}
	fmt.Fprintf(w, "\nstablerestart files: %d (see nfsrecover stablerestart export)\n", len(c.Stable))
	for _, s := range c.Stable {
		fmt.Fprintf(w, "  %s  %s, %d bytes, imported %s\n", s.Key, s.Arch, len(s.Data), time.Unix(s.Imported, 0).UTC().Format(time.RFC3339))
	}
	dumpCld(w, c.Cld)
	return nil
}

func check(stdout, stderr io.Writer, path string) int {
	db, err := store.Open(path, &store.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintf(stderr, "nfsrecover db check: %v\n", err)
		return CheckNoOpen
	}
	defer db.Close()
	problems := db.Check()
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s: %v\n", path, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stdout, "%s: %d problems\n", path, len(problems))
		return CheckProblems
	}
	fmt.Fprintf(stdout, "%s: ok (schema %d)\n", path, db.Schema())
	return CheckOK
}
