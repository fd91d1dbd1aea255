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
	err := db.Update(func(tx *store.Tx) error {
		s, ok, err := tx.NSMState()
		switch {
		case err != nil:
			return err
		case !ok:
			s = 3
		case s%2 == 0:
			s++
		default:
			state = s
			return nil // unchanged: nothing to write
		}
		state = s
		return tx.PutNSMState(s)
	})
	return state, err
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
