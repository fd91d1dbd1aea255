package stablerestart

import (
	"encoding/binary"
	"fmt"
	"runtime"
)

// Detection is Detect's answer: the layout to use and, when the bytes do
// not decide it, why.
type Detection struct {
	Layout    Layout
	Ambiguous string // "" when exactly one layout fits
}

// candidates are the distinct layouts FreeBSD uses.
var candidates = []Layout{archs["amd64"], archs["i386"], archs["powerpc64"]}

// goarchs names the FreeBSD architecture of each GOARCH that has one.
var goarchs = map[string]string{
	"amd64": "amd64", "arm64": "arm64", "riscv64": "riscv64", "arm": "armv7",
	"ppc64": "powerpc64", "ppc64le": "powerpc64le", "386": "i386",
}

// Native returns the layout of the machine this program runs on, which is
// the one its own kernel writes. A machine FreeBSD does not run on (s390x)
// gets its word size and byte order under its GOARCH name.
func Native() Layout {
	if l, ok := archs[goarchs[runtime.GOARCH]]; ok {
		return l
	}
	var order ByteOrder = binary.LittleEndian
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		order = binary.BigEndian
	}
	return Layout{runtime.GOARCH, 8, order}
}

// Detect guesses the layout of data on this machine: DetectFrom with the
// native layout.
func Detect(data []byte) Detection { return DetectFrom(data, Native()) }

// DetectFrom guesses the layout of data: a layout fits when the kernel
// would accept the file with it and every boot time is plausible. Exactly
// one fit is the answer. When the bytes do not decide it, the native
// layout is assumed (the file is most likely this machine's own) and
// Ambiguous says why when several layouts fit, so that an i386 file is
// never silently read as amd64.
func DetectFrom(data []byte, native Layout) Detection {
	var fits []Layout
	for _, l := range candidates {
		f := Decode(data, l)
		if f.Status == Valid && allPlausible(f.Boots) {
			fits = append(fits, l)
		}
	}
	switch len(fits) {
	case 1:
		return Detection{Layout: preferNative(fits[0], native)}
	case 0:
		return detectDamaged(data, native)
	}
	var names []string
	guess := fits[0]
	for _, l := range fits {
		names = append(names, l.Name)
		if sameShape(l, native) {
			guess = native
		}
	}
	return Detection{Layout: guess, Ambiguous: fmt.Sprintf("the file reads as valid for %v; assuming %s (use --arch)", names, guess.Name)}
}

// sameShape reports whether two layouts read every file alike.
func sameShape(a, b Layout) bool { return a.TimeSize == b.TimeSize && a.Order == b.Order }

// preferNative names a detected layout after the native architecture
// when both read files alike (arm64 rather than amd64 on an arm64 host).
func preferNative(l, native Layout) Layout {
	if sameShape(l, native) {
		return native
	}
	return l
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
func detectDamaged(data []byte, native Layout) Detection {
	var fits []Layout
	for _, l := range candidates {
		f := Decode(data, l)
		if f.Status != NoGrace && allPlausible(f.Boots) {
			fits = append(fits, l)
		}
	}
	switch {
	case len(data) < HeaderSize:
		return Detection{Layout: native} // nothing to read
	case len(fits) == 0:
		return Detection{Layout: native, Ambiguous: "no architecture reads this file with plausible boot times; assuming " + native.Name + " (use --arch)"}
	}
	for _, l := range fits { // several fit: the damage hides the layout
		if sameShape(l, native) {
			return Detection{Layout: native}
		}
	}
	return Detection{Layout: fits[0]}
}
