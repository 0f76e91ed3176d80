package vxlan

import (
	"errors"
	"strconv"
)

// Sentinel errors returned by the decoders. They are never wrapped, so
// callers on the hot path may compare with ==.
var (
	// ErrTooShort means the buffer is shorter than the header being decoded.
	ErrTooShort = errors.New("vxlan: datagram too short")
	// ErrFlags means the I flag (FlagVNI) is not set in the VXLAN header.
	ErrFlags = errors.New("vxlan: i flag not set")
	// ErrVLAN means the inner Ethernet frame carries an 802.1Q/802.1ad tag,
	// which this package does not support.
	ErrVLAN = errors.New("vxlan: vlan-tagged inner frame not supported")
	// ErrVNIRange is matched (via errors.Is) by every *VNIError.
	ErrVNIRange = errors.New("vxlan: vni out of range")
	// ErrInvalidMAC is wrapped by the errors returned from ParseMAC.
	ErrInvalidMAC = errors.New("vxlan: invalid mac address")
)

// VNIError reports a VNI outside 1..MaxVNI.
type VNIError struct {
	VNI uint32
}

func (e *VNIError) Error() string {
	return "vxlan: vni " + strconv.FormatUint(uint64(e.VNI), 10) +
		" out of range 1-" + strconv.Itoa(MaxVNI)
}

// Unwrap makes errors.Is(err, ErrVNIRange) true.
func (e *VNIError) Unwrap() error { return ErrVNIRange }

// ValidVNI returns nil if vni is usable by this project (1..MaxVNI) and a
// *VNIError otherwise. VNI 0 is reserved here. Use it when loading
// configuration; the encoders do not validate.
func ValidVNI(vni uint32) error {
	if vni == 0 || vni > MaxVNI {
		return &VNIError{VNI: vni}
	}
	return nil
}
