package stablerestart

import (
	"fmt"
	"time"
)

// Client is one client after the kernel's replay of its records.
type Client struct {
	ID         []byte
	Flags      byte  // in-memory flags after replay
	Records    int   // how many records name it
	LastOffset int64 // of its last record
	Allowed    bool  // may reclaim at the next boot
	rejected   bool  // the whole file is rejected
}

// Reason explains the verdict in words.
func (c Client) Reason() string {
	switch {
	case c.rejected:
		return "file not accepted by the kernel: no grace for anyone"
	case c.Flags&FlagRevoke != 0:
		return fmt.Sprintf("state revoked (record at offset %d)", c.LastOffset)
	}
	return fmt.Sprintf("state recorded (record at offset %d)", c.LastOffset)
}

// Replay applies the kernel's per-client rules to f's records and returns
// the clients in order of first appearance with their verdicts.
func Replay(f *File) []Client {
	out := make([]Client, 0, len(f.Records)/2+1)
	index := make(map[string]int, len(f.Records)/2+1)
	for _, r := range f.Records {
		i, seen := index[string(r.ID)]
		if !seen {
			index[string(r.ID)] = len(out)
			out = append(out, Client{ID: r.ID, Flags: r.Flag, Records: 1, LastOffset: r.Offset})
			continue
		}
		c := &out[i]
		c.Records++
		c.LastOffset = r.Offset
		if r.Flag == FlagRevoke {
			c.Flags |= FlagRevoke
		} else {
			c.Flags &^= FlagRevoke
		}
	}
	for i := range out {
		c := &out[i]
		c.rejected = f.Status != Valid
		c.Allowed = !c.rejected && c.Flags&FlagRevoke == 0
	}
	return out
}

// Severity orders findings.
type Severity int

// Severities: Rejected means the kernel will not use the file; Danger and
// Odd mean it will, but the content is harmful or unusual.
const (
	Info Severity = iota
	Odd
	Danger
	Rejected
)

func (s Severity) String() string { return [...]string{"info", "odd", "danger", "rejected"}[s] }

// Finding is one observation about a file.
type Finding struct {
	Severity Severity
	Offset   int64 // -1 when not tied to a place
	Msg      string
}

func (x Finding) String() string {
	if x.Offset < 0 {
		return fmt.Sprintf("%s: %s", x.Severity, x.Msg)
	}
	return fmt.Sprintf("%s: offset %d: %s", x.Severity, x.Offset, x.Msg)
}

// Plausible boot times: 2000-01-01 to 2100-01-01. Anything outside is a
// sign of the wrong time_t size or byte order.
const (
	minPlausible = 946684800
	maxPlausible = 4102444800
)

func plausible(t int64) bool { return t >= minPlausible && t < maxPlausible }

// Check lists what is wrong or unusual in f, worst first within the file
// order: the kernel's rejection, memory-only or unknown flags, boot times
// that are duplicated, out of order, in the future or implausible (a hint
// of the wrong --arch), and a boot count near the limit.
func Check(f *File, now time.Time) []Finding {
	var out []Finding
	add := func(s Severity, off int64, format string, args ...any) {
		out = append(out, Finding{s, off, fmt.Sprintf(format, args...)})
	}
	if f.Problem != nil {
		add(Rejected, f.Problem.Offset, "%s", f.Problem.Msg)
	}
	for _, r := range f.Records {
		switch {
		case r.Flag == FlagNewState || r.Flag == FlagRevoke:
		case r.Flag&(FlagGotState|FlagReclaimed) != 0:
			add(Danger, r.Offset, "flag 0x%02x carries a memory-only bit (0x4 GOTSTATE / 0x8 RECLAIMED): the kernel may misbehave or crash", r.Flag)
		default:
			add(Danger, r.Offset, "flag 0x%02x is neither NEWSTATE (0x1) nor REVOKE (0x2)", r.Flag)
		}
	}
	limit := now.Add(24 * time.Hour).Unix()
	for i, b := range f.Boots {
		off := int64(HeaderSize + i*f.Layout.TimeSize)
		switch {
		case !plausible(b):
			add(Odd, off, "boot time %d is implausible: wrong --arch (time_t size or byte order)?", b)
		case b > limit:
			add(Odd, off, "boot time %s is in the future", time.Unix(b, 0).UTC().Format(time.RFC3339))
		}
		if i > 0 {
			switch prev := f.Boots[i-1]; {
			case b == prev:
				add(Odd, off, "boot time %d repeats the previous one", b)
			case b > prev:
				add(Odd, off, "boot times are not newest first")
			}
		}
	}
	if f.NumBoots >= MaxBoots-100 && f.NumBoots <= MaxBoots {
		add(Odd, 4, "%d boot times: at %d the kernel discards the file and the history restarts", f.NumBoots, MaxBoots+1)
	}
	return out
}

// Worst returns the highest severity among findings (Info when none).
func Worst(fs []Finding) Severity {
	w := Info
	for _, x := range fs {
		w = max(w, x.Severity)
	}
	return w
}
