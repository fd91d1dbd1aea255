package cltrack

import (
	"math"
	"strings"
	"syscall"
)

// The environment variables the kernel passes (spec: only these; no PATH).
const (
	EnvHasSession   = "NFSDCLTRACK_CLIENT_HAS_SESSION"
	EnvGraceStart   = "NFSDCLTRACK_GRACE_START"
	EnvLegacyRecdir = "NFSDCLTRACK_LEGACY_RECDIR"
	EnvLegacyTopdir = "NFSDCLTRACK_LEGACY_TOPDIR"
)

// Env is what one upcall's environment says.
type Env struct {
	// HasSession: the client is v4.1+. True only when the variable's first
	// character is an uppercase 'Y' ("yes" is false), as in nfsdcltrack.
	HasSession bool
	// GraceStart is the nfsd boot time; valid only if GraceStartOK.
	GraceStart   int64
	GraceStartOK bool
	// LegacyRecdir is this client's v4recovery directory, "" when unset.
	LegacyRecdir string
	// LegacyTopdir is the v4recovery top directory, "" when unset.
	LegacyTopdir string
}

// EnvFrom reads the upcall environment through lookup (os.LookupEnv).
func EnvFrom(lookup func(string) (string, bool)) Env {
	var e Env
	if v, ok := lookup(EnvHasSession); ok && strings.HasPrefix(v, "Y") {
		e.HasSession = true
	}
	if v, ok := lookup(EnvGraceStart); ok {
		n, _, err := strtol(v)
		// nfsdcltrack returns LONG_MAX for "invalid" and then tests for
		// LONG_MAX, so that exact value is invalid too. A value with no
		// digits ("abc") parses as 0 without error and is valid.
		e.GraceStart, e.GraceStartOK = n, err == nil && n != math.MaxInt64
	}
	e.LegacyRecdir, _ = lookup(EnvLegacyRecdir)
	e.LegacyTopdir, _ = lookup(EnvLegacyTopdir)
	return e
}

// strtol parses s as C's strtol(s, &end, 0) does for a 64-bit long:
// leading white space, an optional sign, then "0x" hex, "0" octal or
// decimal. It returns the value, the unparsed rest (all of s when there are
// no digits) and ERANGE on overflow, with the value clamped.
func strtol(s string) (int64, string, error) {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	switch {
	case i+1 < len(s) && s[i] == '0' && (s[i+1]|0x20) == 'x' && i+2 < len(s) && digitVal(s[i+2]) < 16:
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	start := i
	var mag uint64
	overflow := false
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	for ; i < len(s) && digitVal(s[i]) < base; i++ {
		d := digitVal(s[i])
		if mag > (limit-d)/base {
			overflow = true
			continue
		}
		mag = mag*base + d
	}
	if i == start {
		return 0, s, nil
	}
	if overflow {
		if neg {
			return math.MinInt64, s[i:], syscall.ERANGE
		}
		return math.MaxInt64, s[i:], syscall.ERANGE
	}
	if neg {
		return -int64(mag-1) - 1, s[i:], nil
	}
	return int64(mag), s[i:], nil
}

func digitVal(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'a' && c <= 'z':
		return uint64(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return uint64(c-'A') + 10
	}
	return 99
}
