package dataplane

import "encoding/binary"

// ACK filtering on the way to a container (as the kernel's CAKE qdisc does
// with ack-filter): a TCP stream's receiver answers each super-packet with
// a pure acknowledgement, and several of one flow often reach the sending
// host's switch in one batch. Each costs a TUN write (a system call) and a
// trip through the container's TCP, though the last one says all the
// earlier ones said. An ACK is left out only when a later ACK of the same
// flow, in the same group of packets for the same port, makes it
// redundant:
//
//   - both carry nothing but an acknowledgement: no data, no flag but ACK
//     (so no SYN, FIN, RST, URG, PSH, ECE, CWR, AE), no option but NOP, EOL
//     and timestamps (so never a SACK block, which tells of losses), and
//     no congestion mark (ECN CE) in the IP header;
//   - the later one acknowledges more, and offers a window no smaller: a
//     duplicate ACK (the same number, perhaps the sender's sign of a loss)
//     goes unless a later one acknowledges more, by when the hole is filled;
//   - the later one's checksums are good, so the kernel will not drop it
//     and with it what the earlier ones said.
//
// The sender's TCP counts acknowledged bytes, not ACKs, so it grows its
// window as it would have; it sees one stretch ACK where GRO on a real NIC
// would often have made one too.

// ackKey names a TCP flow: its addresses and ports, as in the packet.
type ackKey struct {
	addrs [32]byte
	ports uint32
	v6    bool
}

// ackSeen is a pure ACK later in the group: the one an earlier ACK of its
// flow is compared with.
type ackSeen struct {
	key    ackKey
	ack    uint32
	win    uint16
	intact bool // its checksums are good
}

// ackFlows bounds the flows one filtering pass keeps track of; a group
// with more keeps the ACKs of flows that fall out.
const ackFlows = 8

// pureACK reports whether pkt is a TCP segment that carries only an
// acknowledgement (see above), and its flow, acknowledgement number and
// window, with its IP header as parsed.
func pureACK(pkt []byte) (k ackKey, ack uint32, win uint16, info ipInfo, ok bool) {
	info, ok = parseIP(pkt)
	if !ok || info.proto != protoTCP || info.l4 == 0 || info.length < info.l4+tcpHeaderLen {
		return k, 0, 0, info, false
	}
	l4 := info.l4
	tl := tcpHeaderLenAt(pkt, l4)
	// The data offset's byte also holds AE (AccECN) and reserved bits.
	if tl < tcpHeaderLen || info.length != l4+tl || pkt[l4+tcpFlagsOffset] != tcpFlagACK || pkt[l4+12]&0x0f != 0 || ecnCE(pkt, info.v6) {
		return k, 0, 0, info, false
	}
	for i, n := l4+tcpHeaderLen, 0; i < l4+tl; i += n {
		var kind byte
		kind, n, ok = nextOption(pkt[:l4+tl], i)
		switch {
		case kind == tcpOptEnd:
			n = l4 + tl - i
		case !ok || kind != tcpOptNOP && (kind != tcpOptTimestamps || n != tcpTimestampsLen):
			return k, 0, 0, info, false
		}
	}
	if info.v6 {
		k.v6 = true
		copy(k.addrs[:], pkt[8:40])
	} else {
		copy(k.addrs[:8], pkt[12:20])
	}
	k.ports = binary.BigEndian.Uint32(pkt[l4:])
	return k, binary.BigEndian.Uint32(pkt[l4+8:]), binary.BigEndian.Uint16(pkt[l4+14:]), info, true
}

const (
	tcpOptTimestamps = 8
	tcpTimestampsLen = 10
)

// ecnCE reports whether the IP header carries the congestion mark.
func ecnCE(pkt []byte, v6 bool) bool {
	if v6 {
		return (binary.BigEndian.Uint16(pkt)>>4)&3 == 3
	}
	return pkt[1]&3 == 3
}

// ackIntact reports whether a pure ACK's checksums are ones the kernel
// takes: the IPv4 header's, and TCP's (whole, or partial as a vxnet peer
// may leave it; see checksumAcceptable).
func ackIntact(pkt []byte, info *ipInfo) bool {
	if !info.v6 && fold(sum(0, pkt[:info.l4])) != 0xffff {
		return false
	}
	return checksumAcceptable(pkt, info)
}

// redundantACKs sets skip[i] for each packet of bufs (each at Headroom)
// that a later pure ACK of its flow makes redundant, and returns how many.
// skip must be as long as bufs.
func redundantACKs(bufs [][]byte, skip []bool) int {
	var seen [ackFlows]ackSeen
	used, next, n := 0, 0, 0
	for i := len(bufs) - 1; i >= 0; i-- {
		skip[i] = false
		pkt := bufs[i][Headroom:]
		k, ack, win, info, ok := pureACK(pkt)
		if !ok {
			continue
		}
		j := 0
		for j < used && seen[j].key != k {
			j++
		}
		if j < used {
			if later := seen[j]; later.intact && int32(later.ack-ack) > 0 && later.win >= win {
				skip[i] = true
				n++
				continue
			}
		} else if used < ackFlows {
			used++
		} else {
			j = next
			next = (next + 1) % ackFlows
		}
		seen[j] = ackSeen{key: k, ack: ack, win: win, intact: ackIntact(pkt, &info)}
	}
	return n
}
