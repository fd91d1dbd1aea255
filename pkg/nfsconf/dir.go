package nfsconf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// dropIns lists dir's "*.conf" files in version order. A missing directory
// is silent; any other listing error becomes a warning on c.
func dropIns(dir string, c *Config) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			c.warn(dir, 0, "cannot list drop-in directory: "+err.Error())
		}
		return nil
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || len(n) <= len(".conf") || !strings.HasSuffix(n, ".conf") {
			continue
		}
		if t := e.Type(); !t.IsRegular() && t&os.ModeSymlink == 0 {
			continue
		}
		names = append(names, n)
	}
	slices.SortFunc(names, VersionCompare)
	for i, n := range names {
		names[i] = filepath.Join(dir, n)
	}
	return names
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// at returns s[i], or 0 past the end, like reading a C string.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// VersionCompare orders strings as glibc's strverscmp (and so scandir's
// versionsort) does. Digit runs without leading zeros compare as numbers
// ("9-a" < "10-b"); when the common part of a digit run is all zeros, the
// run is a fraction and a digit sorts before anything else, so
// "000" < "00" < "01" < "010" < "09" < "0" < "1" < "9" < "10".
func VersionCompare(a, b string) int {
	i, runStart, zeros := 0, 0, true
	for i < len(a) && i < len(b) && a[i] == b[i] {
		switch c := a[i]; {
		case !isDigit(c):
			runStart, zeros = i+1, true
		case c != '0':
			zeros = false
		}
		i++
	}
	if i == len(a) && i == len(b) {
		return 0
	}
	ca, cb := at(a, i), at(b, i)
	nonZero := func(c byte) bool { return c >= '1' && c <= '9' }
	switch {
	case nonZero(at(a, runStart)) && nonZero(at(b, runStart)):
		// Integral runs: the longer run is the larger number.
		j := i
		for ; isDigit(at(a, j)); j++ {
			if !isDigit(at(b, j)) {
				return 1
			}
		}
		if isDigit(at(b, j)) {
			return -1
		}
	case zeros && runStart < i && (isDigit(ca) || isDigit(cb)):
		// Fractional runs: digits map to 0..9, everything else above.
		return cmpInt(int(ca-'0'), int(cb-'0'))
	}
	return cmpInt(int(ca), int(cb))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
