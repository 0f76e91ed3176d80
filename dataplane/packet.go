package dataplane

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Layout of the buffers every packet loop owns (see the package doc).
const (
	// Headroom is the offset of the IP packet in every buffer: room for
	// the headers of a sealed datagram (SealedOffset).
	Headroom = 48
	// UnderlayOffset is where the UDP payload (the VXLAN header) starts.
	UnderlayOffset = Headroom - vxlan.EncapLen
	// SealedOffset is where a sealed datagram (package seal) starts: its
	// VXLAN header and seal header in front of the inner Ethernet header
	// at EthernetOffset.
	SealedOffset = EthernetOffset - seal.HeaderLen
	// EthernetOffset is where the inner Ethernet header starts.
	EthernetOffset = Headroom - vxlan.EthernetLen
	// MaxSegmentSize is the capacity of an outside-path buffer past
	// Headroom: the TUN write coalesces received TCP segments into one
	// packet of up to 64 KB.
	MaxSegmentSize = 65535
)

// IP header field offsets and sizes.
const (
	ipv4HeaderLen       = 20
	ipv4TotalLenOffset  = 2
	ipv4FlagsFragOffset = 6
	ipv4FlagDF          = 0x40 // in the byte at ipv4FlagsFragOffset
	ipv4ProtocolOffset  = 9
	ipv4ChecksumOffset  = 10
	ipv4SrcOffset       = 12
	ipv4DstOffset       = 16

	ipv6HeaderLen        = 40
	ipv6PayloadLenOffset = 4
	ipv6NextHeaderOffset = 6
	ipv6HopLimitOffset   = 7
	ipv6SrcOffset        = 8
	ipv6DstOffset        = 24

	protoICMP   = 1
	protoICMPv6 = 58
	protoTCP    = 6
	protoUDP    = 17
)

// ipInfo is what the switch needs to know of an IP packet.
type ipInfo struct {
	etherType uint16
	v6        bool
	dst       addrKey
	proto     uint8
	l4        int // offset of the transport header, 0 if unknown (fragment, options chain)
	length    int // length from the IP header (drops link-layer padding)
}

// parseIP reads the IP header of pkt. ok is false for anything that is not a
// well-formed IPv4 or IPv6 packet whose header length fits in pkt.
func parseIP(pkt []byte) (info ipInfo, ok bool) {
	if len(pkt) < 1 {
		return info, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return info, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[ipv4TotalLenOffset:]))
		if ihl < ipv4HeaderLen || total < ihl || total > len(pkt) {
			return info, false
		}
		info.etherType = vxlan.EtherTypeIPv4
		info.dst = keyV4(pkt[ipv4DstOffset:])
		info.proto = pkt[ipv4ProtocolOffset]
		info.length = total
		// Only the first fragment carries ports; treat all fragments alike
		// (no ports) so a flow's fragments hash to one source port.
		if binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])&0x3fff == 0 {
			info.l4 = ihl
		}
		return info, true
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return info, false
		}
		total := ipv6HeaderLen + int(binary.BigEndian.Uint16(pkt[ipv6PayloadLenOffset:]))
		if total > len(pkt) {
			return info, false
		}
		info.etherType = vxlan.EtherTypeIPv6
		info.v6 = true
		info.dst = keyV6(pkt[ipv6DstOffset:])
		info.proto = pkt[ipv6NextHeaderOffset]
		info.length = total
		switch info.proto {
		case protoTCP, protoUDP, protoICMPv6:
			info.l4 = ipv6HeaderLen
		}
		return info, true
	}
	return info, false
}

// flowHash hashes the inner flow (addresses, protocol, ports) so that all
// packets of one flow leave from one UDP source port (RFC 7348 §5) and
// different flows spread across the receiver's queues. Word-wide loads and
// two multiplications: it runs for every packet.
func flowHash(pkt []byte, info *ipInfo) uint32 {
	var h uint64
	if !info.v6 {
		h = binary.LittleEndian.Uint64(pkt[ipv4SrcOffset:]) // source and destination
	} else {
		src := binary.LittleEndian.Uint64(pkt[ipv6SrcOffset:]) ^ binary.LittleEndian.Uint64(pkt[ipv6SrcOffset+8:])
		dst := binary.LittleEndian.Uint64(pkt[ipv6DstOffset:]) ^ binary.LittleEndian.Uint64(pkt[ipv6DstOffset+8:])
		h = src ^ bits.RotateLeft64(dst, 32)
	}
	var ports uint64
	if info.l4 != 0 && (info.proto == protoTCP || info.proto == protoUDP) && info.l4+4 <= info.length {
		ports = uint64(binary.LittleEndian.Uint32(pkt[info.l4:]))
	}
	h = (h ^ 0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	h ^= ports<<8 | uint64(info.proto)
	h *= 0xc4ceb9fe1a85ec53
	return uint32(h>>32) ^ uint32(h)
}

// isFlood reports whether a packet to dst goes to every member of the
// network: multicast, limited broadcast or a subnet's directed broadcast.
func (n *network) isFlood(dst addrKey, v6 bool) bool {
	if v6 {
		return dst.hi>>56 == 0xff
	}
	if first := byte(dst.lo >> 24); first >= 224 && first <= 239 || dst == limitedBroadcast {
		return true
	}
	for _, b := range n.broadcasts {
		if b == dst {
			return true
		}
	}
	return false
}

// isInside reports whether dst is in one of the network's subnets.
func (n *network) isInside(dst addrKey) bool {
	for _, p := range n.inside {
		if p.contains(dst) {
			return true
		}
	}
	return false
}

// isOutside reports whether a packet to dst leaves the network: unicast,
// of a family the network has, outside its subnets.
func (n *network) isOutside(dst addrKey, v6 bool) bool {
	if v6 && !n.hasV6 || !v6 && !n.hasV4 {
		return false
	}
	return !n.isFlood(dst, v6) && !n.isInside(dst)
}

// isLinkLocal reports whether dst is link-local unicast: fe80::/10 or
// 169.254.0.0/16.
func isLinkLocal(dst addrKey, v6 bool) bool {
	if v6 {
		return dst.hi>>54 == 0xfe80>>6
	}
	return (dst.lo>>16)&0xffff == 0xa9fe
}

// onNetwork reports whether unicast to dst stays on the network: inside
// its subnets, or of a family it has no subnet of (a static network may
// name none).
func (n *network) onNetwork(dst addrKey, v6 bool) bool {
	if v6 && !n.hasV6 || !v6 && !n.hasV4 {
		return true
	}
	return n.isInside(dst)
}

var limitedBroadcast = keyV4([]byte{255, 255, 255, 255})

// floodMAC is the destination MAC of a flooded packet: the group address
// of a multicast destination, broadcast otherwise.
func floodMAC(dst addrKey, v6 bool) vxlan.MAC {
	var a netip.Addr
	if v6 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], dst.hi)
		binary.BigEndian.PutUint64(b[8:], dst.lo)
		a = netip.AddrFrom16(b)
	} else {
		a = netip.AddrFrom4([4]byte{byte(dst.lo >> 24), byte(dst.lo >> 16), byte(dst.lo >> 8), byte(dst.lo)})
	}
	if a.IsMulticast() {
		return vxlan.MulticastMAC(a)
	}
	return vxlan.Broadcast
}
