package vxlan

import "encoding/binary"

// Sizes, offsets and field values of the VXLAN header (RFC 7348 §5).
const (
	HeaderLen   = 8                       // VXLAN header
	EthernetLen = 14                      // inner Ethernet header (no VLAN tag)
	EncapLen    = HeaderLen + EthernetLen // bytes written by Encap: 22

	FlagsOffset = 0 // flags byte (I flag) within the VXLAN header
	VNIOffset   = 4 // 24-bit VNI within the VXLAN header
	VNILen      = 3 // VNI field size in bytes

	FlagVNI = 0x08 // the I flag: VNI is valid

	MaxVNI      = 1<<24 - 1 // largest 24-bit VNI
	DefaultPort = 4789      // IANA-assigned VXLAN UDP port
)

// TrainBytes bounds the payload of one UDP GSO message (a train of
// equal-sized VXLAN datagrams to one VTEP that the kernel cuts apart as late
// as it can): one IP packet's worth, with room to spare below 65535.
const TrainBytes = 65000

// trainOverhead is what a datagram of a train carries besides the inner
// packet, at most: the inner Ethernet and VXLAN headers (22 bytes) and an
// encrypted network's seal (28 bytes).
const trainOverhead = EncapLen + 28

// SegmentsPerTrain is the largest number of inner packets of size mtu whose
// datagrams fit one train (TrainBytes): 43 for the default 1450. A port
// whose kernel hands over TCP super-packets of at most that many segments
// sees each one leave in one message and reach the receiving host's port in
// one piece, so that host writes it once and its kernel answers with one
// ACK, not two (a 64 KB super-packet of 46 segments would leave as a train
// and a straggler).
func SegmentsPerTrain(mtu int) int {
	if mtu <= 0 {
		return 1
	}
	return max(1, TrainBytes/(mtu+trainOverhead))
}

// PutHeader writes an 8-byte VXLAN header into b[:HeaderLen]: the I flag set,
// all reserved bits zero, and the low 24 bits of vni.
//
// The caller guarantees len(b) >= HeaderLen; PutHeader panics otherwise,
// before writing anything. Bits of vni above MaxVNI are discarded; validate
// configured VNIs with ValidVNI.
func PutHeader(b []byte, vni uint32) {
	_ = b[HeaderLen-1] // single bounds check; panics before any write
	binary.BigEndian.PutUint32(b[FlagsOffset:], FlagVNI<<24)
	binary.BigEndian.PutUint32(b[VNIOffset:], vni<<8) // low byte: reserved = 0
}

// ParseHeader validates and decodes the VXLAN header at the start of b and
// returns its 24-bit VNI.
//
// It returns ErrTooShort if len(b) < HeaderLen and ErrFlags if the I flag is
// clear. Reserved bits (the other flag bits, bytes 1-3 and byte 7) are
// ignored, as RFC 7348 §5 requires of receivers. VNI 0 is returned without
// error; whether it is acceptable is the caller's policy (see ValidVNI).
func ParseHeader(b []byte) (vni uint32, err error) {
	if len(b) < HeaderLen {
		return 0, ErrTooShort
	}
	if b[FlagsOffset]&FlagVNI == 0 {
		return 0, ErrFlags
	}
	return binary.BigEndian.Uint32(b[VNIOffset:]) >> 8, nil
}

// Encap writes the VXLAN header and the inner Ethernet header into
// b[:EncapLen], the headroom in front of an L3 packet at b[EncapLen:], which
// is left untouched. The caller guarantees len(b) >= EncapLen; Encap panics
// otherwise, before writing anything.
func Encap(b []byte, vni uint32, dst, src MAC, etherType uint16) {
	_ = b[EncapLen-1]
	PutHeader(b, vni)
	PutEthernet(b[HeaderLen:], dst, src, etherType)
}

// Frame is a decoded VXLAN datagram.
type Frame struct {
	VNI uint32   // 24-bit VXLAN Network Identifier
	Eth Ethernet // inner Ethernet header
	// PayloadOffset is the offset of the inner L3 packet within the
	// datagram; it is always EncapLen when Decap succeeds.
	PayloadOffset int
}

// Decap decodes a VXLAN datagram (the outer UDP payload). A datagram shorter
// than EncapLen yields ErrTooShort whatever its content; otherwise the
// errors are those of ParseHeader, then ParseEthernet. On error the returned
// Frame is zero. The inner packet is b[f.PayloadOffset:].
func Decap(b []byte) (f Frame, err error) {
	if len(b) < EncapLen {
		return f, ErrTooShort
	}
	if f.VNI, err = ParseHeader(b); err != nil {
		return Frame{}, err
	}
	if f.Eth, err = ParseEthernet(b[HeaderLen:]); err != nil {
		return Frame{}, err
	}
	f.PayloadOffset = EncapLen
	return f, nil
}
