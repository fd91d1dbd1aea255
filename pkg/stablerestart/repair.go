package stablerestart

import "fmt"

// Action is what Plan decided to do with the live file.
type Action int

// Actions.
const (
	Nothing    Action = iota // live file is fine (or both files are empty)
	RestoreBak               // replace live with the valid .bak
	Salvage                  // replace live with the longest valid prefix
	Impossible               // neither file has anything the kernel would accept
)

func (a Action) String() string {
	return [...]string{"nothing to do", "restore from .bak", "salvage valid prefix", "cannot repair"}[a]
}

// Plan is a repair decision and the bytes to install as the live file.
type Plan struct {
	Action Action
	Output []byte
	Why    string
}

// PlanRepair decides how to repair live using bak. The FreeBSD nfsd
// copies a non-empty live file over the backup at start without checking
// it, so a corrupt live file must be repaired before nfsd starts.
//
//   - live valid: nothing to do;
//   - live and bak both empty: nothing to do (no history yet);
//   - live empty, truncated or corrupt, bak valid: restore bak;
//   - both damaged: keep the longest valid prefix (header, boot times,
//     whole records) of either, because the kernel would discard all.
func PlanRepair(live, bak []byte, l Layout) Plan {
	lf, bf := Decode(live, l), Decode(bak, l)
	switch {
	case lf.Status == Valid:
		return Plan{Action: Nothing, Why: "live file is valid"}
	case len(live) == 0 && len(bak) == 0:
		return Plan{Action: Nothing, Why: "both files are empty: no history yet"}
	case bf.Status == Valid:
		return Plan{Action: RestoreBak, Output: bak, Why: fmt.Sprintf("live file: %v; .bak is valid", lf.Problem)}
	}
	best, from := SalvagePrefix(lf), "live file"
	if b := SalvagePrefix(bf); b != nil && (best == nil || len(b.Records) > len(best.Records)) {
		best, from = b, ".bak"
	}
	if best == nil {
		return Plan{Action: Impossible, Why: fmt.Sprintf("live file: %v; .bak: %v; no usable header in either", lf.Problem, bf.Problem)}
	}
	return Plan{Action: Salvage, Output: Encode(best),
		Why: fmt.Sprintf("live file: %v; .bak: %v; keeping %d records of the %s", lf.Problem, bf.Problem, len(best.Records), from)}
}

// SalvagePrefix returns the longest prefix of a damaged file the kernel
// would accept, or nil when its header or boot list is unusable. Trailing
// zero-length records are dropped, since the kernel rejects one at the end.
func SalvagePrefix(f *File) *File {
	if f.Status == NoGrace {
		return nil
	}
	s := *f
	recs := f.Records
	for len(recs) > 0 && len(recs[len(recs)-1].ID) == 0 {
		recs = recs[:len(recs)-1]
	}
	s.Records, s.Status, s.Problem = recs, Valid, nil
	return &s
}

// Compact rewrites a valid file as the kernel's end-of-grace rewrite
// would, without adding a boot: one NEWSTATE record per client that may
// reclaim, in order of first appearance; revoked clients are dropped.
func Compact(f *File) (*File, error) {
	if f.Status != Valid {
		return nil, fmt.Errorf("cannot compact a file the kernel rejects (%v): repair it first", f.Problem)
	}
	c := *f
	c.Records = nil
	for _, cl := range Replay(f) {
		if cl.Allowed {
			c.Records = append(c.Records, Record{Flag: FlagNewState, ID: cl.ID})
		}
	}
	return Decode(Encode(&c), f.Layout), nil
}
