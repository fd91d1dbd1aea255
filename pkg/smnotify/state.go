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

// NextState is the state after a reboot: odd, +2, first value 3 (an even
// or missing state is first made odd, as nfs-utils does).
func NextState(cur int32, ok bool) int32 {
	if !ok || cur < 1 {
		cur = 1
	}
	if cur%2 == 0 {
		cur++
	}
	return cur + 2
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
		p.State = cur
		if !ok || cur < 1 {
			p.State = 1
		}
		resumed := o.BootID != "" && tx.NotifyBoot() == o.BootID && ok
		if len(p.Peers) == 0 || !o.Bump || resumed && !o.Force {
			if p.State%2 == 0 {
				p.State++
			}
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
