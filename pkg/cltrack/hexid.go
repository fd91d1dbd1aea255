package cltrack

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"syscall"

	"nfsrecover/pkg/store"
)

// DecodeHex decodes a client id the way nfsdcltrack's hex_str_to_bin does:
// pairs of case-insensitive hex digits; before each pair, if MaxIDLen bytes
// were already produced, fail with ENOBUFS (exit 151) even when the rest is
// not hex; an odd length or a non-hex digit fails with EINVAL (exit 234).
// The empty string is a valid, empty id.
func DecodeHex(s string) ([]byte, error) {
	out := make([]byte, 0, min(len(s)/2, store.MaxIDLen))
	for i := 0; i < len(s); i += 2 {
		if len(out) >= store.MaxIDLen {
			return nil, fail(syscall.ENOBUFS, "client id longer than %d bytes", store.MaxIDLen)
		}
		if i+1 >= len(s) {
			return nil, fail(syscall.EINVAL, "client id %q has an odd number of hex digits", clip(s))
		}
		hi, lo := digitVal(s[i]), digitVal(s[i+1])
		if hi > 15 || lo > 15 {
			return nil, fail(syscall.EINVAL, "client id %q: %q is not a hex byte", clip(s), s[i:i+2])
		}
		out = append(out, byte(hi<<4|lo))
	}
	return out, nil
}

// clip shortens a string for log lines.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// LegacyName is the v4recovery directory name of a client id: its md5 in
// 32 lowercase hex digits.
func LegacyName(id []byte) string {
	sum := md5.Sum(id)
	return hex.EncodeToString(sum[:])
}

// idString renders an id for logs: hex, plus the text when printable.
func idString(id []byte) string {
	for _, c := range id {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", id)
		}
	}
	return fmt.Sprintf("%x (%q)", id, id)
}
