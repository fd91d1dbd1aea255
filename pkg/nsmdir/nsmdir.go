// Package nsmdir holds the rules of an NSM state directory that statd and
// sm-notify share: the NSM state number and its hand-off to the kernel,
// and the owner both run as.
package nsmdir

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"nfsrecover/pkg/daemon"
	"nfsrecover/pkg/fileutil"
	"nfsrecover/pkg/store"
)

// KernelStateFile is where the kernel learns our NSM state.
const KernelStateFile = "/proc/sys/fs/nfs/nsm_local_state"

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
	case ok && state&1 == 1:
		return state, nil // the usual case (negative odd values too): nothing to write
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

// DropToOwner switches to the owner of stateDir/sm, as rpc.statd and
// sm-notify do, once every privileged socket is bound. The database file
// is handed to that user first (nfsdcltrack, running as root, opens it
// before it drops its capabilities, so the ownership suits both), and
// must still open afterwards. A root-owned or missing sm/ keeps root.
func DropToOwner(stateDir, dbPath string, log *slog.Logger) error {
	if stateDir == "" || os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := fileutil.Owner(filepath.Join(stateDir, "sm"))
	if err != nil {
		log.Warn("state directory has no sm/: staying root", "dir", stateDir, "err", err)
		return nil
	}
	if uid == 0 {
		log.Warn("running as root: chown the sm/ directory to choose a different user", "dir", stateDir)
		return nil
	}
	if err := os.Chown(dbPath, uid, gid); err != nil {
		return fmt.Errorf("hand the database to uid %d: %w", uid, err)
	}
	if err := daemon.DropTo(uid, gid); err != nil {
		return err
	}
	db, err := store.Open(dbPath, nil)
	if err != nil {
		return fmt.Errorf("as uid %d (owner of %s/sm) the database is out of reach: %w", uid, stateDir, err)
	}
	db.Close()
	log.Info("privileges dropped", "uid", uid, "gid", gid)
	return nil
}
