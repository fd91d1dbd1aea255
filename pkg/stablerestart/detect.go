package stablerestart

import "fmt"

// Detection is Detect's answer: the layout to use and, when the bytes do
// not decide it, why.
type Detection struct {
	Layout    Layout
	Ambiguous string // "" when exactly one layout fits
}

// candidates are the distinct layouts FreeBSD uses.
var candidates = []Layout{archs["amd64"], archs["i386"], archs["powerpc64"]}

// Detect guesses the layout of data: a layout fits when the kernel would
// accept the file with it and every boot time is plausible. Exactly one
// fit is the answer. Otherwise amd64 is assumed and Ambiguous says why, so
// that an i386 file is never silently read as amd64.
func Detect(data []byte) Detection {
	var fits []Layout
	for _, l := range candidates {
		f := Decode(data, l)
		if f.Status == Valid && allPlausible(f.Boots) {
			fits = append(fits, l)
		}
	}
	switch len(fits) {
	case 1:
		return Detection{Layout: fits[0]}
	case 0:
		return detectDamaged(data)
	}
	var names []string
	for _, l := range fits {
		names = append(names, l.Name)
	}
	return Detection{Layout: fits[0], Ambiguous: fmt.Sprintf("the file reads as valid for %v; assuming %s (use --arch)", names, fits[0].Name)}
}

func allPlausible(ts []int64) bool {
	for _, t := range ts {
		if !plausible(t) {
			return false
		}
	}
	return true
}

// detectDamaged handles a file no layout accepts: the one whose header and
// boot times still make sense wins, since the damage is in the records.
func detectDamaged(data []byte) Detection {
	var fits []Layout
	for _, l := range candidates {
		f := Decode(data, l)
		if f.Status != NoGrace && allPlausible(f.Boots) {
			fits = append(fits, l)
		}
	}
	switch {
	case len(fits) == 1:
		return Detection{Layout: fits[0]}
	case len(data) < HeaderSize || len(fits) > 1:
		return Detection{Layout: archs["amd64"]} // nothing tells them apart
	}
	return Detection{Layout: archs["amd64"], Ambiguous: "no architecture reads this file with plausible boot times; assuming amd64 (use --arch)"}
}
