package grace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FormatVersion is the version of the stored form that Encode writes.
const FormatVersion = 1

// MaxEncoded bounds the stored form Decode accepts: MaxNodes ids of
// MaxNodeID bytes with their flags fit well inside it.
const MaxEncoded = 512 << 10

// ErrCorrupt: the stored form does not decode to a valid database.
var ErrCorrupt = errors.New("corrupt grace database")

// stored is the JSON form kept in the store, readable with etcdctl:
// {"version":1,"current":3,"recovery":2,"nodes":{"a":"NE","b":"E"}}.
type stored struct {
	Version  int               `json:"version"`
	Current  uint64            `json:"current"`
	Recovery uint64            `json:"recovery"`
	Nodes    map[string]string `json:"nodes"`
}

// Encode returns the stored form of db.
func Encode(db DB) []byte {
	s := stored{Version: FormatVersion, Current: db.Current, Recovery: db.Recovery, Nodes: map[string]string{}}
	for id, f := range db.Nodes {
		s.Nodes[id] = strings.TrimSpace(f.String())
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("grace: encode: %v", err)) // maps of strings always marshal
	}
	return b
}

// Decode parses a stored form and checks every invariant: a known
// version, C >= 1, R < C, valid node ids, flags made of N and E, at most
// MaxNodes members. Unknown fields are refused: a newer writer's record is
// never half understood.
func Decode(b []byte) (DB, error) {
	if len(b) > MaxEncoded {
		return DB{}, fmt.Errorf("%w: %d bytes, at most %d", ErrCorrupt, len(b), MaxEncoded)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s stored
	if err := dec.Decode(&s); err != nil {
		return DB{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return DB{}, fmt.Errorf("%w: data after the record", ErrCorrupt)
	}
	if s.Version != FormatVersion {
		return DB{}, fmt.Errorf("%w: format version %d, this program knows %d", ErrCorrupt, s.Version, FormatVersion)
	}
	if s.Current < 1 || s.Recovery >= s.Current {
		return DB{}, fmt.Errorf("%w: epochs current=%d recovery=%d (need current >= 1 and recovery < current)", ErrCorrupt, s.Current, s.Recovery)
	}
	if len(s.Nodes) > MaxNodes {
		return DB{}, fmt.Errorf("%w: %d members, at most %d", ErrCorrupt, len(s.Nodes), MaxNodes)
	}
	db := DB{Current: s.Current, Recovery: s.Recovery, Nodes: make(map[string]Flags, len(s.Nodes))}
	for id, fs := range s.Nodes {
		if err := CheckNodeID(id); err != nil {
			return DB{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		f, err := parseFlags(fs)
		if err != nil {
			return DB{}, fmt.Errorf("%w: node %q: %v", ErrCorrupt, id, err)
		}
		db.Nodes[id] = f
	}
	return db, nil
}

func parseFlags(s string) (Flags, error) {
	switch s {
	case "":
		return 0, nil
	case "N":
		return Need, nil
	case "E":
		return Enforcing, nil
	case "NE":
		return Need | Enforcing, nil
	}
	return 0, fmt.Errorf("flags %q: want \"\", \"N\", \"E\" or \"NE\"", s)
}

// Dump writes db as ganesha-rados-grace's dump prints it: "cur=C rec=R",
// a rule, then one "id<TAB>flags" line per member in sorted order, so
// scripts written for ganesha read it unchanged.
func Dump(w io.Writer, db DB) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cur=%d rec=%d\n", db.Current, db.Recovery)
	b.WriteString(strings.Repeat("=", 54) + "\n")
	for _, id := range db.Members() {
		fmt.Fprintf(&b, "%s\t%s\n", id, db.Nodes[id])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
