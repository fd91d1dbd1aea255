// Package oncrpc is the ONC RPC version 2 layer (RFC 5531) shared by
// statd and notify: call and reply headers, authentication fields and TCP
// record marking. Headers are hand-coded; procedure arguments and results
// are opaque bytes that the program's own package (pkg/nsm) decodes.
//
// # Limits
//
// Every decoder takes untrusted bytes and never allocates more than the
// input holds: an opaque_auth body is at most MaxAuthBytes (400, RFC 5531),
// and a TCP record is refused as soon as its announced size passes the
// caller's cap, before anything is read into memory.
package oncrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types, reply and accept/reject statuses, auth flavors.
const (
	MsgCall  = 0 // msg_type
	MsgReply = 1

	MsgAccepted = 0
	MsgDenied   = 1

	Success      = 0 // accept_stat
	ProgUnavail  = 1
	ProgMismatch = 2
	ProcUnavail  = 3
	GarbageArgs  = 4
	SystemErr    = 5

	RPCMismatch = 0 // reject_stat
	AuthError   = 1

	AuthBadCred = 1 // auth_stat

	AuthNone = 0 // flavors
	AuthSys  = 1

	RPCVersion   = 2
	MaxAuthBytes = 400
)

// Errors returned by the decoders.
var (
	ErrShort   = errors.New("oncrpc: message truncated")
	ErrNotCall = errors.New("oncrpc: not a call")
	ErrVersion = errors.New("oncrpc: RPC version is not 2")
	ErrAuthLen = errors.New("oncrpc: auth body longer than 400 bytes")
	ErrReply   = errors.New("oncrpc: malformed reply")
)

// Auth is an opaque_auth: a flavor and its body.
type Auth struct {
	Flavor uint32
	Body   []byte
}

// CallHeader is a decoded call; Args aliases the input after the header.
type CallHeader struct {
	XID, Prog, Vers, Proc uint32
	Cred, Verf            Auth
	Args                  []byte
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0 // keep the first error
	}
	if len(r.b) < 4 {
		r.err = ErrShort
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) auth() Auth {
	a := Auth{Flavor: r.u32()}
	n := r.u32()
	switch {
	case r.err != nil:
	case n > MaxAuthBytes:
		r.err = ErrAuthLen
	case uint32(len(r.b)) < pad4(n):
		r.err = ErrShort
	default:
		a.Body, r.b = r.b[:n], r.b[pad4(n):]
	}
	return a
}

func pad4(n uint32) uint32 { return (n + 3) &^ 3 }

// DecodeCall parses a call message. On ErrVersion the XID is valid, so the
// caller can answer with an RPC_MISMATCH rejection.
func DecodeCall(b []byte) (CallHeader, error) {
	r := reader{b: b}
	h := CallHeader{XID: r.u32()}
	if t := r.u32(); r.err == nil && t != MsgCall {
		return h, ErrNotCall
	}
	if v := r.u32(); r.err == nil && v != RPCVersion {
		return h, ErrVersion
	}
	h.Prog, h.Vers, h.Proc = r.u32(), r.u32(), r.u32()
	h.Cred = r.auth()
	h.Verf = r.auth()
	if r.err != nil {
		return h, r.err
	}
	h.Args = r.b
	return h, nil
}

func appendAuth(b []byte, a Auth) []byte {
	b = binary.BigEndian.AppendUint32(b, a.Flavor)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Body)))
	b = append(b, a.Body...)
	return append(b, make([]byte, pad4(uint32(len(a.Body)))-uint32(len(a.Body)))...)
}

// AppendCall appends a call header (with AUTH_NONE verifier) and args.
func AppendCall(b []byte, xid, prog, vers, proc uint32, cred Auth, args []byte) []byte {
	for _, v := range []uint32{xid, MsgCall, RPCVersion, prog, vers, proc} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = appendAuth(b, cred)
	b = appendAuth(b, Auth{})
	return append(b, args...)
}

// AppendAccepted appends an accepted reply with an AUTH_NONE verifier.
// For ProgMismatch, low and high follow; for Success, results.
func AppendAccepted(b []byte, xid, stat uint32, results []byte, low, high uint32) []byte {
	for _, v := range []uint32{xid, MsgReply, MsgAccepted} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	b = appendAuth(b, Auth{})
	b = binary.BigEndian.AppendUint32(b, stat)
	switch stat {
	case Success:
		b = append(b, results...)
	case ProgMismatch:
		b = binary.BigEndian.AppendUint32(b, low)
		b = binary.BigEndian.AppendUint32(b, high)
	}
	return b
}

// AppendDenied appends a rejected reply: RPCMismatch (versions 2..2) or
// AuthError with authStat.
func AppendDenied(b []byte, xid, rejectStat, authStat uint32) []byte {
	for _, v := range []uint32{xid, MsgReply, MsgDenied, rejectStat} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	if rejectStat == RPCMismatch {
		b = binary.BigEndian.AppendUint32(b, RPCVersion)
		return binary.BigEndian.AppendUint32(b, RPCVersion)
	}
	return binary.BigEndian.AppendUint32(b, authStat)
}

// ReplyHeader is a decoded reply. Results aliases the input; it is set
// only for an accepted, successful reply.
type ReplyHeader struct {
	XID        uint32
	Accepted   bool
	AcceptStat uint32 // when Accepted
	RejectStat uint32 // when not
	Low, High  uint32 // ProgMismatch / RPCMismatch ranges
	AuthStat   uint32 // AuthError
	Results    []byte
	VerfFlavor uint32
}

// DecodeReply parses a reply message (for clients: sm-notify, callbacks).
func DecodeReply(b []byte) (ReplyHeader, error) {
	r := reader{b: b}
	h := ReplyHeader{XID: r.u32()}
	if t := r.u32(); r.err == nil && t != MsgReply {
		return h, fmt.Errorf("%w: message type %d", ErrReply, t)
	}
	switch stat := r.u32(); {
	case r.err != nil:
	case stat == MsgAccepted:
		h.Accepted = true
		h.VerfFlavor = r.auth().Flavor
		h.AcceptStat = r.u32()
		switch h.AcceptStat {
		case Success:
			h.Results = r.b
		case ProgMismatch:
			h.Low, h.High = r.u32(), r.u32()
		}
	case stat == MsgDenied:
		h.RejectStat = r.u32()
		if h.RejectStat == RPCMismatch {
			h.Low, h.High = r.u32(), r.u32()
		} else {
			h.AuthStat = r.u32()
		}
	default:
		return h, fmt.Errorf("%w: reply status %d", ErrReply, stat)
	}
	return h, r.err
}
