// Package grace is the cluster-wide grace period database: the state that
// lets several knfsd heads serving one clustered file system agree on when
// clients may reclaim and when new state may be granted. It follows the
// design of nfs-ganesha's rados_cluster recovery backend.
//
// # Basics
//
// The whole database is one value, DB: two epoch serial numbers and one set
// of flags per member node.
//
//   - Current (C) is the epoch under which new client records are made.
//     It starts at 1 and only grows.
//   - Recovery (R) is the epoch clients may reclaim from. R != 0 means a
//     cluster-wide grace period is in force; R == 0 means none is.
//   - Need: the node has clients that may still reclaim.
//   - Enforcing: the node refuses new state (it is in grace locally).
//
// Starting a grace period when none is in force makes R = C and C = C+1;
// starting one while one is in force joins it. Grace is lifted (R = 0) when
// the last node that needs it clears its Need, by Lift or by Remove. NEED is
// data, not liveness: a crashed node keeps needing grace until it comes back
// and lifts, or an administrator removes it.
//
// The operations are pure functions on a DB. Callers that share the value
// (package cluster, on etcd) read it, apply one operation to a copy and
// write it back only if nobody else wrote in between.
//
// # Caveats
//
// One deliberate difference from ganesha: ganesha's remove lifts grace when
// the number of removed nodes equals the number that need grace, so removing
// a node that does not need grace can lift it under another that does. Here
// grace is lifted only when no remaining node needs it.
package grace

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Flags are one node's state bits.
type Flags uint8

// The flags, as ganesha-rados-grace prints them ("N", "E").
const (
	// Need: the node has clients from the recovery epoch that may reclaim.
	Need Flags = 1 << 0
	// Enforcing: the node grants no new state (it is in grace locally).
	Enforcing Flags = 1 << 1
)

// String is the flags as ganesha-rados-grace's dump shows them: two
// columns, "N" or blank then "E" or blank.
func (f Flags) String() string {
	b := []byte("  ")
	if f&Need != 0 {
		b[0] = 'N'
	}
	if f&Enforcing != 0 {
		b[1] = 'E'
	}
	return string(b)
}

// MaxNodes bounds the members of one cluster (ganesha's MAX_ITEMS).
const MaxNodes = 1024

// MaxNodeID bounds a node id's length in bytes (a host name's).
const MaxNodeID = 255

// Errors the operations return; callers branch on them with errors.Is, or
// on all of them at once with Refused.
var (
	// ErrNoNode: a named node is not a member.
	ErrNoNode = errors.New("not a member of the cluster")
	// ErrExists: add named a node that is already a member.
	ErrExists = errors.New("already a member of the cluster")
	// ErrNoNodes: the operation needs at least one node id.
	ErrNoNodes = errors.New("need at least one node id")
	// ErrBadNodeID: a node id is empty, too long or not printable.
	ErrBadNodeID = errors.New("bad node id")
	// ErrTooMany: add would take the cluster over MaxNodes members.
	ErrTooMany = errors.New("too many cluster members")
)

// Refused reports whether err is one of the refusals above: the command
// does not apply to the database as it is (or to the ids given), as
// opposed to a failure to read or write it.
func Refused(err error) bool {
	for _, e := range []error{ErrNoNode, ErrExists, ErrNoNodes, ErrBadNodeID, ErrTooMany} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// DB is the grace database. The zero value is not valid; use New.
type DB struct {
	Current  uint64           // C: epoch of new client records, >= 1
	Recovery uint64           // R: epoch clients reclaim from; 0 = no grace
	Nodes    map[string]Flags // members and their flags
}

// New returns the database of a cluster that was never in grace:
// C = 1, R = 0, no members (what ganesha-rados-grace creates).
func New() DB { return DB{Current: 1, Nodes: map[string]Flags{}} }

// Clone returns a deep copy, which an operation may change freely.
func (db DB) Clone() DB {
	c := db
	c.Nodes = maps.Clone(db.Nodes)
	if c.Nodes == nil {
		c.Nodes = map[string]Flags{}
	}
	return c
}

// InGrace reports whether a cluster-wide grace period is in force.
func (db DB) InGrace() bool { return db.Recovery != 0 }

// Members returns the node ids in sorted order.
func (db DB) Members() []string { return slices.Sorted(maps.Keys(db.Nodes)) }

// Needing returns, sorted, the nodes that still need grace.
func (db DB) Needing() []string { return db.where(Need, Need) }

// NotEnforcing returns, sorted, the nodes that do not enforce grace.
func (db DB) NotEnforcing() []string { return db.where(Enforcing, 0) }

// where returns, sorted, the nodes whose flags masked by mask equal want.
func (db DB) where(mask, want Flags) []string {
	var out []string
	for _, id := range db.Members() {
		if db.Nodes[id]&mask == want {
			out = append(out, id)
		}
	}
	return out
}

// AllEnforcing reports whether id is a member and every member enforces
// grace: the point after which a restarted node may let its clients
// reclaim (ganesha's enforcing check).
func (db DB) AllEnforcing(id string) bool {
	_, ok := db.Nodes[id]
	return ok && len(db.NotEnforcing()) == 0
}

// CheckNodeID reports whether id can name a node: 1 to MaxNodeID bytes of
// printable ASCII without spaces, so that dump's "id<TAB>flags" lines and
// etcd keys stay unambiguous.
func CheckNodeID(id string) error {
	if id == "" || len(id) > MaxNodeID {
		return fmt.Errorf("%w %q: must be 1 to %d bytes", ErrBadNodeID, id, MaxNodeID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w %q: byte %d is not printable ASCII", ErrBadNodeID, id, i)
		}
	}
	return nil
}

// checkIDs validates a list of ids; with members set, every id must be one.
func (db DB) checkIDs(ids []string, members bool) error {
	if len(ids) == 0 {
		return ErrNoNodes
	}
	var missing []string
	for _, id := range ids {
		if err := CheckNodeID(id); err != nil {
			return err
		}
		if _, ok := db.Nodes[id]; members && !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(missing, ", "), ErrNoNode)
	}
	return nil
}

// liftIfDone ends the grace period once no member needs it.
func (db *DB) liftIfDone() {
	if db.Recovery != 0 && len(db.Needing()) == 0 {
		db.Recovery = 0
	}
}
