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

// nextOption reads the option at opts[i] of an IPv4 or a TCP header's
// option list, which both lay out alike: end of list (0) and no-operation
// (1) are one byte, every other option is kind, length (at least 2), data.
// n is its length; ok is false when it is malformed (its length below 2,
// or running past the list).
func nextOption(opts []byte, i int) (kind byte, n int, ok bool) {
	kind = opts[i]
	if kind == tcpOptEnd || kind == tcpOptNOP {
		return kind, 1, true
	}
	if i+1 >= len(opts) {
		return kind, 0, false
	}
	n = int(opts[i+1])
	return kind, n, n >= 2 && i+n <= len(opts)
}

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
	for i, n := l4+tcpHeaderLen, 0; i < end; i += n {
		var kind byte
		var ok bool
		kind, n, ok = nextOption(pkt[:end], i)
		if !ok || kind == tcpOptEnd {
			return false // malformed options are left for the receiver
		}
		if kind != tcpOptMSS || n != tcpMSSLen {
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
