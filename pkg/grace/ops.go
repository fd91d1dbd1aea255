package grace

import (
	"fmt"
	"strings"
)

// Op is one change to the database for the listed nodes. It changes db in
// place and may leave it half changed when it fails: apply it to a Clone
// and keep the copy only when Op returns nil.
type Op func(db *DB, ids []string) error

// Command is one administrative command, as ganesha-rados-grace names it.
type Command struct {
	Name    string
	Summary string
	Op      Op
}

// Commands is the table of commands that change or test membership and
// flags, in ganesha-rados-grace's order ("dump" only reads, so it is not
// an Op).
var Commands = []Command{
	{"add", "add the nodes to the cluster (each starts enforcing, as it cannot grant state before its own grace ends)", Add},
	{"start", "start a grace period if none is in force (R=C, C=C+1), and set NEED and ENFORCING on the nodes", Start},
	{"join", "like start, but only if a grace period is already in force (otherwise nothing changes)", Join},
	{"lift", "clear NEED on the nodes; the grace period ends when no member needs it", Lift},
	{"remove", "remove the nodes from the cluster; the grace period ends when no remaining member needs it", Remove},
	{"enforce", "set ENFORCING on the nodes: they grant no new state", Enforce},
	{"noenforce", "clear ENFORCING on the nodes: they grant new state again", NoEnforce},
	{"member", "succeed only if every node is a member of the cluster", Member},
}

// Lookup returns the command called name.
func Lookup(name string) (Command, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Add makes the nodes members with ENFORCING set. None may be a member
// already, and the list may not repeat a node.
func Add(db *DB, ids []string) error {
	if err := db.checkIDs(ids, false); err != nil {
		return err
	}
	seen := map[string]bool{}
	var dup []string
	for _, id := range ids {
		if _, ok := db.Nodes[id]; ok || seen[id] {
			dup = append(dup, id)
		}
		seen[id] = true
	}
	if len(dup) > 0 {
		return fmt.Errorf("%s: %w", strings.Join(dup, ", "), ErrExists)
	}
	if len(db.Nodes)+len(ids) > MaxNodes {
		return fmt.Errorf("%w: %d members and %d more, at most %d", ErrTooMany, len(db.Nodes), len(ids), MaxNodes)
	}
	for _, id := range ids {
		db.Nodes[id] = Enforcing
	}
	return nil
}

// Start begins a grace period if none is in force (R = C, then C = C+1)
// and sets NEED and ENFORCING on the nodes, which must be members.
func Start(db *DB, ids []string) error {
	if err := db.checkIDs(ids, true); err != nil {
		return err
	}
	if db.Recovery == 0 {
		db.Recovery = db.Current
		db.Current++
	}
	for _, id := range ids {
		db.Nodes[id] |= Need | Enforcing
	}
	return nil
}

// Join is Start without starting: when no grace period is in force it
// changes nothing (and succeeds, as in ganesha).
func Join(db *DB, ids []string) error {
	if err := db.checkIDs(ids, true); err != nil {
		return err
	}
	if db.Recovery == 0 {
		return nil
	}
	return Start(db, ids)
}

// Lift clears NEED on the nodes; when no member needs grace any more the
// grace period ends (R = 0). ENFORCING stays: each node clears its own once
// it has seen R = 0 and stopped enforcing.
func Lift(db *DB, ids []string) error {
	if err := db.checkIDs(ids, true); err != nil {
		return err
	}
	for _, id := range ids {
		db.Nodes[id] &^= Need
	}
	db.liftIfDone()
	return nil
}

// Remove deletes the nodes; when no remaining member needs grace the grace
// period ends. This is how an administrator releases the cluster from a
// node that crashed and will not come back.
func Remove(db *DB, ids []string) error {
	if err := db.checkIDs(ids, true); err != nil {
		return err
	}
	for _, id := range ids {
		delete(db.Nodes, id)
	}
	db.liftIfDone()
	return nil
}

// Enforce sets ENFORCING on the nodes.
func Enforce(db *DB, ids []string) error { return db.setFlag(ids, Enforcing, true) }

// NoEnforce clears ENFORCING on the nodes.
func NoEnforce(db *DB, ids []string) error { return db.setFlag(ids, Enforcing, false) }

// Member fails with ErrNoNode naming every node that is not a member.
func Member(db *DB, ids []string) error { return db.checkIDs(ids, true) }

func (db *DB) setFlag(ids []string, f Flags, on bool) error {
	if err := db.checkIDs(ids, true); err != nil {
		return err
	}
	for _, id := range ids {
		if on {
			db.Nodes[id] |= f
		} else {
			db.Nodes[id] &^= f
		}
	}
	return nil
}
