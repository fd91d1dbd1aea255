package stablerestart

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ParseAnnotatedHex reads the annotated hex used for the hand-built files
// in testdata/stablerestart, a convenient way to write a file by hand:
// "#" starts a comment, bytes are two hex digits separated by blanks, and
// "NxHH" stands for N copies of byte HH.
func ParseAnnotatedHex(text []byte) ([]byte, error) {
	var out []byte
	for n, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, tok := range strings.Fields(line) {
			count, digits := 1, tok
			if c, h, ok := strings.Cut(tok, "x"); ok {
				v, err := strconv.Atoi(c)
				if err != nil || v < 0 || v > 1<<20 {
					return nil, fmt.Errorf("line %d: bad run %q", n+1, tok)
				}
				count, digits = v, h
			}
			b, err := hex.DecodeString(digits)
			if err != nil || len(b) != 1 {
				return nil, fmt.Errorf("line %d: bad byte %q", n+1, tok)
			}
			out = append(out, bytes.Repeat(b, count)...)
		}
	}
	return out, nil
}
