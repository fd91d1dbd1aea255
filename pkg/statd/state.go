package statd

import (
	"os"
	"strconv"

	"nfsrecover/pkg/store"
)

// DefaultKernelStateFile is where the kernel learns our NSM state.
const DefaultKernelStateFile = "/proc/sys/fs/nfs/nsm_local_state"

// LoadState returns the stored NSM state, as rpc.statd reads it without
// bumping it: a missing state starts at 3 (and is stored), an even one is
// made odd. Only sm-notify advances it, once per boot.
func LoadState(db *store.DB) (int32, error) {
	var state int32
	var ok bool
	err := db.View(func(tx *store.Tx) (err error) { state, ok, err = tx.NSMState(); return err })
	switch {
	case err != nil:
		return 0, err
	case ok && state%2 == 1:
		return state, nil // the usual case: nothing to write
	case !ok:
		state = 3
	default:
		state++
	}
	return state, db.Update(func(tx *store.Tx) error { return tx.PutNSMState(state) })
}

// TellKernel writes the state to the kernel's file; an absent file (lockd
// not loaded) is ignored, as nfs-utils does.
func TellKernel(path string, state int32) error {
	err := os.WriteFile(path, []byte(strconv.Itoa(int(state))), 0)
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
