//go:build unix

package doctor

import (
	"os"
	"syscall"

	"nfsrecover/pkg/fileutil"
)

func ownerOf(path string) (uid, gid int, err error) { return fileutil.Owner(path) }

// statIDs returns a file's owner and group.
func statIDs(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1, false
	}
	return int(st.Uid), int(st.Gid), true
}
