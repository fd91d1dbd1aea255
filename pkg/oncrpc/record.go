package oncrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxRecord is libtirpc's RPC_MAXDATASIZE, the cap nfs-utils sets
// on TCP records. The largest NSM call is 2124 bytes.
const DefaultMaxRecord = 9000

const lastFragment = 1 << 31

// ErrRecordTooBig is returned as soon as a record's announced size passes
// the cap; the connection should then be closed.
var ErrRecordTooBig = errors.New("oncrpc: TCP record exceeds the size limit")

// ReadRecord reads one record-marked record from r, reassembling
// fragments, and refuses one longer than max bytes before reading it.
func ReadRecord(r io.Reader, max int) ([]byte, error) {
	var rec []byte
	var mark [4]byte
	for {
		if _, err := io.ReadFull(r, mark[:]); err != nil {
			if len(rec) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		word := binary.BigEndian.Uint32(mark[:])
		n := int(word &^ lastFragment)
		if len(rec)+n > max {
			return nil, fmt.Errorf("%w: %d+%d bytes > %d", ErrRecordTooBig, len(rec), n, max)
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if word&lastFragment != 0 {
			return rec, nil
		}
	}
}

// AppendRecordMark prefixes msg with a single last-fragment mark.
func AppendRecordMark(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, lastFragment|uint32(len(msg)))
	return append(b, msg...)
}
