package store

import (
	"encoding/binary"
	"fmt"
)

var keyNSMState = []byte("nsm.state")

// NSMState returns the stored NSM state number, or ok=false when none has
// been stored yet.
func (tx *Tx) NSMState() (state int32, ok bool, err error) {
	v := tx.tx.Bucket(bucketMeta).Get(keyNSMState)
	switch {
	case v == nil:
		return 0, false, nil
	case len(v) != 4:
		return 0, false, fmt.Errorf("meta/nsm.state: %w: %d bytes", ErrCorrupt, len(v))
	}
	return int32(binary.BigEndian.Uint32(v)), true, nil
}

// PutNSMState stores the NSM state number.
func (tx *Tx) PutNSMState(state int32) error {
	return tx.tx.Bucket(bucketMeta).Put(keyNSMState, binary.BigEndian.AppendUint32(nil, uint32(state)))
}

var keyNotifyBoot = []byte("nsm.notify.boot")

// NotifyBoot returns the boot id under which the state was last bumped.
func (tx *Tx) NotifyBoot() string { return string(tx.tx.Bucket(bucketMeta).Get(keyNotifyBoot)) }

// PutNotifyBoot records the boot id of a state bump.
func (tx *Tx) PutNotifyBoot(id string) error {
	return tx.tx.Bucket(bucketMeta).Put(keyNotifyBoot, []byte(id))
}
