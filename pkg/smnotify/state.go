// Package smnotify tells every peer monitored before our reboot that we
// rebooted (sm-notify): it retires the monitor list into the notify list,
// bumps the NSM state number, and sends SM_NOTIFY to all peers in
// parallel with per-peer retries, removing each peer from the notify list
// only once it answered.
package smnotify

import (
	"fmt"

	"nfsrecover/pkg/store"
)

// Plan is what Prepare decided.
type Plan struct {
	Peers   []store.Monitor // the notify list
	State   int32           // the state to send
	Bumped  bool
	Retired int // monitors moved to the notify list now
}

// NextState is the state after a reboot, as nfs-utils' nsm_get_state
// computes it: a missing state counts as 1, an even one (zero and
// negative values included: agents write random states) is first made
// odd, then it advances by 2. The first state is therefore 3.
func NextState(cur int32, ok bool) int32 {
	return Current(cur, ok) + 2
}

// Current is the state as read without advancing it: 1 when missing, an
// even one made odd.
func Current(cur int32, ok bool) int32 {
	if !ok {
		return 1
	}
	if cur&1 == 0 {
		cur++
	}
	return cur
}

// Options control Prepare.
type Options struct {
	Bump   bool   // advance the state (sm-notify without -n)
	Force  bool   // -f: advance it even if this boot already did (HA fail-over)
	BootID string // this boot's id; "" disables resume detection
}

// Prepare runs in one transaction, before anything is sent: it moves the
// monitor list into the notify list (sm -> sm.bak), and, when there is
// somebody to notify, stores the next state number. It does not advance
// the state again within the same boot unless forced: a run killed half
// way resumes with the same number, so peers see one reboot, not two.
func Prepare(db *store.DB, o Options) (Plan, error) {
	var p Plan
	err := db.Update(func(tx *store.Tx) error {
		p = Plan{}
		var monitors []store.Monitor
		if err := tx.ForEachMonitor(func(m store.Monitor) error { monitors = append(monitors, m); return nil }); err != nil {
			return err
		}
		for _, m := range monitors {
			if err := tx.PutNotify(m); err != nil {
				return err
			}
			if err := tx.DeleteMonitor(m); err != nil {
				return err
			}
		}
		p.Retired = len(monitors)
		if err := tx.ForEachNotify(func(m store.Monitor) error { p.Peers = append(p.Peers, m); return nil }); err != nil {
			return err
		}
		cur, ok, err := tx.NSMState()
		if err != nil {
			return err
		}
		p.State = Current(cur, ok)
		resumed := o.BootID != "" && tx.NotifyBoot() == o.BootID && ok
		if len(p.Peers) == 0 || !o.Bump || resumed && !o.Force {
			return nil
		}
		p.State, p.Bumped = NextState(cur, ok), true
		if err := tx.PutNSMState(p.State); err != nil {
			return err
		}
		return tx.PutNotifyBoot(o.BootID)
	})
	if err != nil {
		return Plan{}, fmt.Errorf("smnotify: prepare: %w", err)
	}
	return p, nil
}
