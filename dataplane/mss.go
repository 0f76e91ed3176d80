package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// TCP MSS clamping (NetworkSpec.ClampMSS): the MSS option of a TCP SYN
// crossing the switch is lowered to what the network's MTU carries, so
// that neither end ever sends a segment the underlay would refuse, even
// where ICMP "too big" is filtered or ignored. The checksum is mended
// incrementally (RFC 1624); packets reach here with complete checksums.

const (
	tcpFlagSYN  = 0x02
	tcpFlagACK  = 0x10
	tcpOptMSS   = 2
	tcpOptNOP   = 1
	tcpOptEnd   = 0
	tcpMSSLen   = 4
	ipv6MSSLess = 20 // an IPv6 header is 20 bytes longer than IPv4's
)

// clampMSS lowers the MSS option of pkt, if it is a TCP SYN whose option
// asks for more, to limit (IPv4; 20 less for IPv6). It reports whether it
// changed the packet.
func clampMSS(pkt []byte, info *ipInfo, limit int) bool {
	l4 := info.l4
	if info.proto != protoTCP || l4 == 0 || len(pkt) < l4+tcpHeaderLen || pkt[l4+tcpFlagsOffset]&tcpFlagSYN == 0 {
		return false
	}
	if info.v6 {
		limit -= ipv6MSSLess
	}
	end := l4 + tcpHeaderLenAt(pkt, l4)
	if end > len(pkt) {
		return false
	}
	for i := l4 + tcpHeaderLen; i < end; {
		switch pkt[i] {
		case tcpOptEnd:
			return false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= end || pkt[i+1] < 2 || i+int(pkt[i+1]) > end {
			return false // malformed options: left for the receiver
		}
		if pkt[i] != tcpOptMSS || pkt[i+1] != tcpMSSLen {
			i += int(pkt[i+1])
			continue
		}
		old := binary.BigEndian.Uint16(pkt[i+2:])
		if int(old) <= limit {
			return false
		}
		binary.BigEndian.PutUint16(pkt[i+2:], uint16(limit))
		at := l4 + tcpChecksumOffset
		c := binary.BigEndian.Uint16(pkt[at:])
		m, m2 := old, uint16(limit)
		if (i+2-l4)&1 == 1 {
			// The value straddles two of the checksum's 16-bit words: its
			// bytes count swapped (RFC 1071 §2B).
			m, m2 = bits.ReverseBytes16(m), bits.ReverseBytes16(m2)
		}
		// HC' = ~(~HC + ~m + m'), RFC 1624 eq. 3.
		binary.BigEndian.PutUint16(pkt[at:], ^fold(uint64(^c)+uint64(^m)+uint64(m2)))
		return true
	}
	return false
}
