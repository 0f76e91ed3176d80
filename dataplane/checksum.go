package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// Transport checksum field offsets inside the TCP and UDP headers.
const (
	tcpChecksumOffset = 16
	udpChecksumOffset = 6
	tcpHeaderLen      = 20
	udpHeaderLen      = 8
)

// sum adds b as big-endian 16-bit words to acc (one's-complement sum,
// unfolded). It adds little-endian 64-bit words with end-around carry and
// swaps the folded result: one's-complement addition does not care about
// byte order as long as it is swapped back at the end (RFC 1071 §2B), and
// eight bytes per add is what makes a 64 KB segment cheap to sum.
func sum(acc uint64, b []byte) uint64 {
	var s, c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	var tail uint64
	if len(b) >= 4 {
		tail = uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.LittleEndian.Uint16(b)) << 32
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0]) << 48 // the odd byte is the high byte of its word
	}
	s, c = bits.Add64(s, tail, c)
	s, c = bits.Add64(s, 0, c)
	s += c
	// Fold to 16 bits, then back to big-endian order.
	s = s&0xffffffff + s>>32
	s = s&0xffffffff + s>>32
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return acc + uint64(bits.ReverseBytes16(uint16(s)))
}

// fold reduces a one's-complement sum to 16 bits.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// pseudoHeaderSum is the unfolded sum of the IPv4 or IPv6 pseudo-header.
func pseudoHeaderSum(pkt []byte, info *ipInfo, l4Len int) uint64 {
	return addrSum(pkt, info.v6) + uint64(info.proto) + uint64(l4Len)
}

// addrSum is the unfolded sum of an IP packet's source and destination
// addresses (the pseudo-header's).
func addrSum(pkt []byte, v6 bool) uint64 {
	if v6 {
		return sum(0, pkt[ipv6SrcOffset:ipv6DstOffset+16])
	}
	return sum(0, pkt[ipv4SrcOffset:ipv4DstOffset+4])
}

// tcpHeaderLenAt is the length the data offset of the TCP header at l4
// gives.
func tcpHeaderLenAt(pkt []byte, l4 int) int { return int(pkt[l4+12]>>4) * 4 }

// completeChecksum finishes a TCP or UDP checksum that a sender left
// partial. A Linux peer whose VXLAN device sends through a veth (or any
// device with checksum offload that does not finish it) puts only the
// folded pseudo-header sum in the field and leaves the rest to hardware
// that never comes; the inner packet reaches us that way. The field holding
// exactly the pseudo-header sum marks that case; any other value is left
// alone for the receiver to verify. (Recomputing a checksum that happened to
// be valid and equal to that value changes nothing.)
func completeChecksum(pkt []byte, info *ipInfo) {
	if info.l4 == 0 {
		return
	}
	var field int
	switch info.proto {
	case protoTCP:
		if info.length-info.l4 < tcpHeaderLen {
			return
		}
		field = info.l4 + tcpChecksumOffset
	case protoUDP:
		if info.length-info.l4 < udpHeaderLen {
			return
		}
		field = info.l4 + udpChecksumOffset
	default:
		return
	}
	got := binary.BigEndian.Uint16(pkt[field:])
	if got == 0 && info.proto == protoUDP && !info.v6 {
		return // IPv4 UDP without a checksum
	}
	l4Len := info.length - info.l4
	pseudo := pseudoHeaderSum(pkt, info, l4Len)
	if got != fold(pseudo) {
		return
	}
	binary.BigEndian.PutUint16(pkt[field:], 0)
	c := ^fold(sum(pseudo, pkt[info.l4:info.length]))
	if c == 0 && info.proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[field:], c)
}
