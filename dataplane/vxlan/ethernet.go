package vxlan

import "encoding/binary"

// Offsets within the inner Ethernet header, relative to its first byte.
const (
	MACLen             = 6  // Ethernet address size
	EthernetDstOffset  = 0  // destination MAC
	EthernetSrcOffset  = 6  // source MAC
	EthernetTypeOffset = 12 // EtherType
)

// EtherType values.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86DD
	EtherTypeVLAN = 0x8100 // 802.1Q C-tag; rejected by ParseEthernet
	EtherTypeQinQ = 0x88A8 // 802.1ad S-tag; rejected by ParseEthernet
)

// Ethernet is a decoded inner Ethernet header.
type Ethernet struct {
	Dst, Src MAC
	Type     uint16 // EtherType, e.g. EtherTypeIPv4
}

// PutEthernet writes an untagged Ethernet header into b[:EthernetLen]. The
// caller guarantees len(b) >= EthernetLen; PutEthernet panics otherwise,
// before writing anything.
func PutEthernet(b []byte, dst, src MAC, etherType uint16) {
	_ = b[EthernetLen-1]
	copy(b[EthernetDstOffset:], dst[:])
	copy(b[EthernetSrcOffset:], src[:])
	binary.BigEndian.PutUint16(b[EthernetTypeOffset:], etherType)
}

// ParseEthernet decodes the untagged Ethernet header at the start of b. It
// returns ErrTooShort if len(b) < EthernetLen and ErrVLAN if the EtherType is
// an 802.1Q (0x8100) or 802.1ad (0x88a8) tag.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetLen {
		return Ethernet{}, ErrTooShort
	}
	t := binary.BigEndian.Uint16(b[EthernetTypeOffset:])
	if t == EtherTypeVLAN || t == EtherTypeQinQ {
		return Ethernet{}, ErrVLAN
	}
	return Ethernet{
		Dst:  MAC(b[EthernetDstOffset : EthernetDstOffset+MACLen]),
		Src:  MAC(b[EthernetSrcOffset : EthernetSrcOffset+MACLen]),
		Type: t,
	}, nil
}
