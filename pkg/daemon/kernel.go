package daemon

import (
	"strconv"
	"strings"
)

// parseRelease returns the major and minor numbers of a kernel release
// string such as "4.18.0-553.el8_10.x86_64"; ok is false when it has none.
func parseRelease(r string) (major, minor int, ok bool) {
	parts := strings.SplitN(r, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	digits := func(s string) (int, error) {
		end := strings.IndexFunc(s, func(c rune) bool { return c < '0' || c > '9' })
		if end >= 0 {
			s = s[:end]
		}
		return strconv.Atoi(s)
	}
	ma, err1 := digits(parts[0])
	mi, err2 := digits(parts[1])
	return ma, mi, err1 == nil && err2 == nil
}

// releaseBefore reports whether release is older than major.minor; an
// unparsable release counts as new.
func releaseBefore(release string, major, minor int) bool {
	ma, mi, ok := parseRelease(release)
	return ok && (ma < major || ma == major && mi < minor)
}
