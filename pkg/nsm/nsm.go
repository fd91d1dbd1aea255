// Package nsm holds the types of the Network Status Monitor protocol (ONC
// RPC program 100024, version 1) and their XDR codecs, with the protocol's
// limits enforced on decode: strings are string<1024> (SM_MAXSTRLEN) and
// the private cookie is a fixed opaque[16] (SM_PRIV_SIZE).
package nsm

import (
	"bytes"
	"fmt"

	xdr "github.com/davecgh/go-xdr/xdr2"
)

// Program, version and procedure numbers.
const (
	Program = 100024
	Version = 1

	ProcNull      = 0
	ProcStat      = 1
	ProcMon       = 2
	ProcUnmon     = 3
	ProcUnmonAll  = 4
	ProcSimuCrash = 5
	ProcNotify    = 6

	MaxStrLen = 1024 // SM_MAXSTRLEN
	PrivSize  = 16   // SM_PRIV_SIZE
)

// Result codes of sm_stat_res.
const (
	StatSucc = 0
	StatFail = 1
)

// SmName is SM_STAT's argument.
type SmName struct{ MonName string }

// MyID identifies the local lock manager callback (my_id).
type MyID struct {
	MyName                 string
	MyProg, MyVers, MyProc int32
}

// MonID is SM_UNMON's argument.
type MonID struct {
	MonName string
	MyID    MyID
}

// Mon is SM_MON's argument.
type Mon struct {
	MonID MonID
	Priv  [PrivSize]byte
}

// SmStatRes is the result of SM_STAT and SM_MON. State is sent even on
// failure (nfs-utils sends -1 then).
type SmStatRes struct{ ResStat, State int32 }

// SmStat is the result of SM_UNMON and SM_UNMON_ALL.
type SmStat struct{ State int32 }

// StatChge is SM_NOTIFY's argument; MonName is the rebooted host's name.
type StatChge struct {
	MonName string
	State   int32
}

// Status is the argument of the reboot callback to the lock manager.
type Status struct {
	MonName string
	State   int32
	Priv    [PrivSize]byte
}

// Decode reads v from b, refusing any string longer than MaxStrLen and
// any input too short for v. Trailing bytes are ignored, as nfs-utils'
// XDR routines ignore them.
func Decode(b []byte, v any) error {
	if _, err := xdr.UnmarshalLimited(bytes.NewReader(b), v, MaxStrLen); err != nil {
		return fmt.Errorf("nsm: decode %T: %w", v, err)
	}
	return nil
}

// Encode returns v's XDR encoding.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := xdr.Marshal(&buf, v); err != nil {
		return nil, fmt.Errorf("nsm: encode %T: %w", v, err)
	}
	return buf.Bytes(), nil
}

// The NSM programs' names as nfs-utils installs them, which HA agents
// look for (pgrep rpc.statd, killall sm-notify).
const (
	StatdName  = "rpc.statd"
	NotifyName = "sm-notify"
)
