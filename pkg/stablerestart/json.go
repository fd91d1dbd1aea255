package stablerestart

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Document is the JSON form of a file, for inspection and editing.
type Document struct {
	Arch      string       `json:"arch"`
	TimeSize  int          `json:"time_size"`
	ByteOrder string       `json:"byte_order"`
	Lease     uint32       `json:"lease"`
	Boots     []int64      `json:"boots"`
	Records   []JSONRecord `json:"records"`
	// Read-only report fields (ignored by FromDocument).
	Size     int64        `json:"size,omitempty"`
	Status   string       `json:"status,omitempty"`
	Problem  string       `json:"problem,omitempty"`
	Clients  []JSONClient `json:"clients,omitempty"`
	Findings []string     `json:"findings,omitempty"`
}

// JSONRecord is one record; ID is hex, Text the id when printable.
type JSONRecord struct {
	Offset int64  `json:"offset,omitempty"`
	Flag   byte   `json:"flag"`
	ID     string `json:"id"`
	Text   string `json:"text,omitempty"`
}

// JSONClient is one client's verdict.
type JSONClient struct {
	ID      string `json:"id"`
	Text    string `json:"text,omitempty"`
	Allowed bool   `json:"may_reclaim"`
	Reason  string `json:"reason"`
}

// Printable returns the id as text if it is printable UTF-8, else "".
func Printable(id []byte) string {
	if !utf8.Valid(id) {
		return ""
	}
	for _, r := range string(id) {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	return string(id)
}

// ToDocument renders f, with verdicts and findings, as a Document.
func ToDocument(f *File, now time.Time) Document {
	order := "little"
	if f.Layout.Order.String() == "BigEndian" {
		order = "big"
	}
	d := Document{Arch: f.Layout.Name, TimeSize: f.Layout.TimeSize, ByteOrder: order, Lease: f.Lease,
		Boots: append([]int64{}, f.Boots...), Records: []JSONRecord{}, Size: f.Size, Status: f.Status.String()}
	if f.Problem != nil {
		d.Problem = f.Problem.Error()
	}
	for _, r := range f.Records {
		d.Records = append(d.Records, JSONRecord{Offset: r.Offset, Flag: r.Flag, ID: hex.EncodeToString(r.ID), Text: Printable(r.ID)})
	}
	for _, c := range Replay(f) {
		d.Clients = append(d.Clients, JSONClient{ID: hex.EncodeToString(c.ID), Text: Printable(c.ID), Allowed: c.Allowed, Reason: c.Reason()})
	}
	for _, x := range Check(f, now) {
		d.Findings = append(d.Findings, x.String())
	}
	return d
}

// FromDocument builds a file from an edited Document. It refuses what the
// kernel would reject or must never see: no boot times or more than
// MaxBoots, ids over MaxIDLen or not hex, flags other than 0x1 and 0x2, and
// a zero-length id as the last record.
func FromDocument(d Document) (*File, error) {
	l, err := Arch(d.Arch)
	if err != nil {
		return nil, err
	}
	if d.TimeSize != 0 && d.TimeSize != l.TimeSize {
		return nil, fmt.Errorf("time_size %d does not match arch %s (%d)", d.TimeSize, l.Name, l.TimeSize)
	}
	if n := len(d.Boots); n == 0 || n > MaxBoots {
		return nil, fmt.Errorf("%d boot times: need 1 to %d", n, MaxBoots)
	}
	f := &File{Layout: l, Lease: d.Lease, Boots: d.Boots}
	for i, r := range d.Records {
		id, err := hex.DecodeString(r.ID)
		switch {
		case err != nil:
			return nil, fmt.Errorf("record %d: id %q: %v", i, r.ID, err)
		case len(id) > MaxIDLen:
			return nil, fmt.Errorf("record %d: id of %d bytes exceeds %d", i, len(id), MaxIDLen)
		case r.Flag != FlagNewState && r.Flag != FlagRevoke:
			return nil, fmt.Errorf("record %d: flag 0x%02x refused: only 0x1 (NEWSTATE) and 0x2 (REVOKE) may be written", i, r.Flag)
		}
		f.Records = append(f.Records, Record{Flag: r.Flag, ID: id})
	}
	g := Decode(Encode(f), l)
	if g.Status != Valid {
		return nil, fmt.Errorf("the kernel would reject the result: %v", g.Problem)
	}
	return g, nil
}

// ParseDocument decodes JSON strictly (unknown fields are errors).
func ParseDocument(data []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("stablerestart JSON: %w", err)
	}
	return d, nil
}
