package stablerestart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	sr "nfsrecover/pkg/stablerestart"
	"nfsrecover/pkg/store"
)

func (e *env) inspect(asJSON bool) error {
	f, _, ambiguous, err := e.read(e.file)
	if err != nil {
		return err
	}
	doc := sr.ToDocument(f, e.now)
	if ambiguous != "" {
		doc.Findings = append([]string{"odd: " + ambiguous}, doc.Findings...)
	}
	if asJSON {
		return e.printJSON(doc)
	}
	w := e.stdout
	fmt.Fprintf(w, "%s: %d bytes, %s layout (time_t %d bytes, %s-endian)\n", e.file, f.Size, doc.Arch, doc.TimeSize, doc.ByteOrder)
	fmt.Fprintf(w, "status: %s", f.Status)
	if f.Problem != nil {
		fmt.Fprintf(w, " (%v)", f.Problem)
	}
	fmt.Fprintf(w, "\nlease: %d s; expected grace at next boot: %s\n", f.Lease, graceText(f))
	fmt.Fprintf(w, "\nboot times (%d, newest first):\n", len(f.Boots))
	for _, b := range f.Boots {
		fmt.Fprintf(w, "  %d  %s\n", b, time.Unix(b, 0).UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\nrecords (%d):\n", len(f.Records))
	for _, r := range doc.Records {
		fmt.Fprintf(w, "  @%-8d flag 0x%02x  %s %s\n", r.Offset, r.Flag, r.ID, quoted(r.Text))
	}
	fmt.Fprintf(w, "\nclients at next boot (%d):\n", len(doc.Clients))
	for _, c := range doc.Clients {
		verdict := "NOGRACE"
		if c.Allowed {
			verdict = "may reclaim"
		}
		fmt.Fprintf(w, "  %-11s %s %s: %s\n", verdict, c.ID, quoted(c.Text), c.Reason)
	}
	if len(doc.Findings) > 0 {
		fmt.Fprintf(w, "\nfindings:\n")
		for _, x := range doc.Findings {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
	return nil
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

func graceText(f *sr.File) string {
	switch {
	case f.Status != sr.Valid:
		return "none: every reclaim gets NFSERR_NOGRACE"
	case len(f.Records) == 0:
		return "ends at the first check (no clients recorded)"
	}
	return fmt.Sprintf("%d s (lease + %d, extended by late reclaims)", f.Lease+sr.LeaseDelta, sr.LeaseDelta)
}

func (e *env) verify() error {
	f, _, ambiguous, err := e.read(e.file)
	if err != nil {
		return err
	}
	findings := sr.Check(f, e.now)
	if ambiguous != "" {
		findings = append(findings, sr.Finding{Severity: sr.Odd, Offset: -1, Msg: ambiguous})
	}
	for _, x := range findings {
		fmt.Fprintf(e.stdout, "%s: %s\n", e.file, x)
	}
	switch sr.Worst(findings) {
	case sr.Rejected:
		return exitf(exitFailed, "%s: the kernel will not use this file: no grace, history lost", e.file)
	case sr.Danger, sr.Odd:
		return exitf(exitDanger, "%s: accepted by the kernel, but see the findings above", e.file)
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d boot times, %d records)\n", e.file, len(f.Boots), len(f.Records))
	return nil
}

func (e *env) repair(ifNeeded, dryRun bool) error {
	live, err := readOrEmpty(e.file)
	if err != nil {
		return err
	}
	bak, err := readOrEmpty(e.bak)
	if err != nil {
		return err
	}
	probe := live
	if sr.Decode(live, sr.Detect(live).Layout).Status != sr.Valid {
		probe = bak // a damaged live file says little about the layout
	}
	l, _, err := e.layout(probe)
	if err != nil {
		return err
	}
	p := sr.PlanRepair(live, bak, l)
	switch {
	case p.Action == sr.Impossible:
		return exitf(exitFailed, "%s: %s", e.file, p.Why)
	case p.Action == sr.Nothing:
		if !ifNeeded {
			fmt.Fprintf(e.stdout, "%s: %s\n", e.file, p.Why)
		}
		return nil
	case dryRun:
		fmt.Fprintf(e.stdout, "%s: would %s: %s\n", e.file, p.Action, p.Why)
		return nil
	}
	if err := e.guardWrite(); err != nil {
		return err
	}
	if len(live) > 0 {
		keep := fmt.Sprintf("%s.damaged-%d", e.file, e.now.Unix())
		if err := install(keep, live); err != nil {
			return fmt.Errorf("keeping the damaged file: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s: damaged file kept as %s\n", e.file, keep)
	}
	if err := install(e.file, p.Output); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: repaired (%s): %s\n", e.file, p.Action, p.Why)
	return nil
}

func readOrEmpty(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}

func (e *env) compact(dryRun bool) error {
	f, _, _, err := e.read(e.file)
	if err != nil {
		return err
	}
	c, err := sr.Compact(f)
	if err != nil {
		return exitf(exitFailed, "%s: %v", e.file, err)
	}
	out := sr.Encode(c)
	fmt.Fprintf(e.stdout, "%s: %d records -> %d (%d bytes -> %d)\n", e.file, len(f.Records), len(c.Records), f.Size, len(out))
	if dryRun {
		return nil
	}
	if err := e.guardWrite(); err != nil {
		return err
	}
	return install(e.file, out)
}

func (e *env) key() string {
	if abs, err := filepath.Abs(e.file); err == nil {
		return abs
	}
	return e.file
}

func (e *env) importCmd(jsonPath string) error {
	var f *sr.File
	if jsonPath != "" {
		raw, err := os.ReadFile(jsonPath)
		if err != nil {
			return err
		}
		doc, err := sr.ParseDocument(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", jsonPath, err)
		}
		if f, err = sr.FromDocument(doc); err != nil {
			return exitf(exitFailed, "%s: %v (nothing written)", jsonPath, err)
		}
	} else {
		var err error
		if f, _, _, err = e.read(e.file); err != nil {
			return err
		}
		if f.Status != sr.Valid {
			return exitf(exitFailed, "%s: %v: not imported (nothing written); run repair first", e.file, f.Problem)
		}
	}
	data := sr.Encode(f)
	db, err := store.Open(e.db, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		return tx.PutStableFile(store.StableFile{Key: e.key(), Arch: f.Layout.Name, Imported: e.now.Unix(), Data: data})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "imported %s (%s, %d bytes, %d records) into %s\n", e.key(), f.Layout.Name, len(data), len(f.Records), e.db)
	return nil
}

func (e *env) export(to string, asJSON bool) error {
	db, err := store.Open(e.db, &store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	var s store.StableFile
	var ok bool
	err = db.View(func(tx *store.Tx) (err error) { s, ok, err = tx.StableFile(e.key()); return err })
	db.Close()
	if err != nil {
		return err
	}
	if !ok {
		return exitf(exitNotFound, "no stable restart file stored under %s (import it first)", e.key())
	}
	l, err := sr.Arch(s.Arch)
	if err != nil {
		return err
	}
	f := sr.Decode(s.Data, l)
	if asJSON {
		return e.exportJSON(f, to)
	}
	if to == "" {
		to = e.file
	}
	if err := e.guardWrite(); err != nil {
		return err
	}
	if err := install(to, s.Data); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d bytes, imported %s)\n", to, len(s.Data), time.Unix(s.Imported, 0).UTC().Format(time.RFC3339))
	return nil
}

func (e *env) exportJSON(f *sr.File, to string) error {
	doc := sr.ToDocument(f, e.now)
	doc.Size, doc.Status, doc.Clients, doc.Findings = 0, "", nil, nil // keep only the editable part
	for i := range doc.Records {
		doc.Records[i].Offset = 0
	}
	if to == "" || to == "-" {
		return e.printJSON(doc)
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(to, append(raw, '\n'), 0o600)
}
