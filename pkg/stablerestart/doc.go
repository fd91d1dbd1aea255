// Package stablerestart reads, checks and writes FreeBSD's NFSv4 stable
// restart file (/var/db/nfs-stablerestart and its .bak), the record nfsd
// keeps of which clients may reclaim state after a reboot.
//
// # Layout
//
// Native byte order and native time_t size (T = 8 on amd64, arm64,
// riscv64, powerpc64 and armv7; T = 4 on i386). No magic, no version, no
// checksum:
//
//	offset        size  field
//	0             4     lease      u32, seconds
//	4             4     numboots   u32, 1..10000 boot times follow
//	8             n*T   boots      time_t, newest first
//	8+n*T         ...   records, back to back, no padding:
//	  +0          2     len        u16, client id length (0..1024)
//	  +2          1     flag       0x1 NEWSTATE or 0x2 REVOKE
//	  +3          len   id         the NFSv4 client owner id
//
// # What the kernel accepts (nfsrv_setupstable)
//
// A header shorter than 8 bytes, numboots 0 or over 10000, or a short boot
// list: the file is ignored and there is no grace at all (NoGrace). Then
// records are read with a 1027-byte buffer: 1 to 3 bytes left, or fewer
// bytes than 3+len (which includes every len over 1024), is corruption:
// everything is discarded and there is no grace (Corrupt). A zero-length
// record is fine in the middle and corrupt as the very last 3 bytes.
//
// Records are replayed per client: the first record's flag is copied
// verbatim; a later record sets REVOKE if its flag is exactly 0x2 and
// clears it otherwise. A client may reclaim if the file is accepted and its
// REVOKE bit ends clear. Flags 0x4 (GOTSTATE) and 0x8 (RECLAIMED) exist
// only in kernel memory: on disk they are dangerous (Replay and Check
// report them) and this package never writes them.
package stablerestart
