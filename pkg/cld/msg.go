// Package cld is the message codec of the kernel's rpc_pipefs client
// tracking pipe (<pipefs>/nfsd/cld), the protocol nfsdcld speaks: packed
// structs in host byte order, version 1 (1034 bytes) and version 2 (1067
// bytes, with the client principal's hash).
//
// Caveats: a message is exactly one version's size; the kernel rejects a
// downcall of any other length. Decode keeps only the union member the
// command uses, so bytes of the others (zero in practice) are not kept.
package cld

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Versions and their message sizes.
const (
	Version1 = 1
	Version2 = 2
	Size1    = 1034 // struct cld_msg
	Size2    = 1067 // struct cld_msg_v2
	HdrSize  = 8    // struct cld_msg_hdr
	// MaxName is NFS4_OPAQUE_LIMIT, the longest client name.
	MaxName = 1024
	// MaxPrincHash is SHA256_DIGEST_SIZE.
	MaxPrincHash = 32
)

// Commands (enum cld_command).
const (
	Create     = 0
	Remove     = 1
	Check      = 2 // only "v0" kernels send it
	GraceDone  = 3
	GraceStart = 4
	GetVersion = 5
)

// Statuses nfsdcld answers with (negative errnos, Linux numbering).
const (
	StatusOK          = 0
	StatusEACCES      = -13
	StatusEOPNOTSUPP  = -95
	StatusEINPROGRESS = -115
	StatusEREMOTEIO   = -121
)

// Offsets inside the union, which starts after the header.
const (
	offNameLen   = 8
	offName      = 10
	offPrincLen  = 1034
	offPrincData = 1035
)

// Msg is one upcall or downcall.
type Msg struct {
	Vers   uint8
	Cmd    uint8
	Status int16
	XID    uint32
	// The union: which member is meaningful depends on Cmd.
	Name      []byte // Create, Remove, Check; GraceStart replies
	PrincHash []byte // version 2 Create and GraceStart replies
	GraceTime int64  // GraceDone from "v0" kernels
	Version   uint8  // GetVersion replies
}

// ErrMessage is wrapped by every decoding error.
var ErrMessage = errors.New("cld: bad message")

// SizeOf returns the message size of a version, or 0 for an unknown one.
func SizeOf(vers uint8) int {
	switch vers {
	case Version1:
		return Size1
	case Version2:
		return Size2
	}
	return 0
}

// hasName reports whether cmd's union member is a client name.
func hasName(cmd uint8) bool {
	return cmd == Create || cmd == Remove || cmd == Check || cmd == GraceStart
}

// hasPrincHash reports whether a message carries a principal hash: a
// version 2 Create upcall or GraceStart reply (struct cld_clntinfo).
func hasPrincHash(vers, cmd uint8) bool {
	return vers == Version2 && (cmd == Create || cmd == GraceStart)
}

// Decode reads one whole message. Its length must be its version's size,
// and a name or principal hash must fit its field.
func Decode(b []byte) (Msg, error) {
	if len(b) < HdrSize {
		return Msg{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMessage, len(b))
	}
	ne := binary.NativeEndian
	m := Msg{Vers: b[0], Cmd: b[1], Status: int16(ne.Uint16(b[2:])), XID: ne.Uint32(b[4:])}
	size := SizeOf(m.Vers)
	switch {
	case size == 0:
		return m, fmt.Errorf("%w: version %d", ErrMessage, m.Vers)
	case len(b) != size:
		return m, fmt.Errorf("%w: %d bytes for version %d (%d expected)", ErrMessage, len(b), m.Vers, size)
	}
	switch {
	case hasName(m.Cmd):
		n := int(ne.Uint16(b[offNameLen:]))
		if n > MaxName {
			return m, fmt.Errorf("%w: name length %d over %d", ErrMessage, n, MaxName)
		}
		m.Name = append([]byte{}, b[offName:offName+n]...)
		if hasPrincHash(m.Vers, m.Cmd) {
			p := int(b[offPrincLen])
			if p > MaxPrincHash {
				return m, fmt.Errorf("%w: principal hash length %d over %d", ErrMessage, p, MaxPrincHash)
			}
			m.PrincHash = append([]byte{}, b[offPrincData:offPrincData+p]...)
		}
	case m.Cmd == GraceDone:
		m.GraceTime = int64(ne.Uint64(b[offNameLen:]))
	case m.Cmd == GetVersion:
		m.Version = b[offNameLen]
	}
	return m, nil
}

// Encode writes m as a message of its version's size, the union member
// of its command filled in and the rest zero.
func Encode(m Msg) ([]byte, error) {
	size := SizeOf(m.Vers)
	switch {
	case size == 0:
		return nil, fmt.Errorf("cld: encode: unknown version %d", m.Vers)
	case len(m.Name) > MaxName:
		return nil, fmt.Errorf("cld: encode: name of %d bytes over %d", len(m.Name), MaxName)
	case len(m.PrincHash) > MaxPrincHash:
		return nil, fmt.Errorf("cld: encode: principal hash of %d bytes over %d", len(m.PrincHash), MaxPrincHash)
	case len(m.PrincHash) > 0 && !hasPrincHash(m.Vers, m.Cmd):
		return nil, fmt.Errorf("cld: encode: only version 2 Create and GraceStart carry a principal hash (version %d, command %d)", m.Vers, m.Cmd)
	}
	b := make([]byte, size)
	ne := binary.NativeEndian
	b[0], b[1] = m.Vers, m.Cmd
	ne.PutUint16(b[2:], uint16(m.Status))
	ne.PutUint32(b[4:], m.XID)
	switch {
	case hasName(m.Cmd):
		ne.PutUint16(b[offNameLen:], uint16(len(m.Name)))
		copy(b[offName:], m.Name)
		if hasPrincHash(m.Vers, m.Cmd) {
			b[offPrincLen] = uint8(len(m.PrincHash))
			copy(b[offPrincData:], m.PrincHash)
		}
	case m.Cmd == GraceDone:
		ne.PutUint64(b[offNameLen:], uint64(m.GraceTime))
	case m.Cmd == GetVersion:
		b[offNameLen] = m.Version
	}
	return b, nil
}

// setStatus sets the status of a raw message.
func setStatus(b []byte, status int16) { binary.NativeEndian.PutUint16(b[2:], uint16(status)) }

// putNameLen sets the name length of a raw message.
func putNameLen(b []byte, n int) { binary.NativeEndian.PutUint16(b[offNameLen:], uint16(n)) }
