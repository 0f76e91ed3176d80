package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Receive-side coalescing. A datagram train the kernel coalesced (UDP GRO)
// usually carries one flow's consecutive packets: a TCP flow's segments,
// or a run of equal-sized UDP datagrams. Instead of cutting
// it into datagrams, copying each into a buffer of its own and having the
// TUN write coalesce them again, the outside path merges such a run where
// it lies: the payloads slide down over the headers between them, and the
// result goes to the TUN device as one TCP (TSO) or UDP (USO) super-packet
// behind a virtio-net header, the way GRO would have built it: one copy
// and one system call, where the datagrams one by one would cost a write
// each. The container's kernel cuts a UDP super-packet back into its
// datagrams.
//
// A run is consecutive datagrams of one network whose inner packets are
// TCP segments of one flow to one local port: the same VXLAN and Ethernet
// headers, IP headers equal but for length, ID and checksum, TCP headers
// equal but for the sequence number (which must follow on), the checksum
// and PSH (allowed on the last), only ACK set otherwise, every payload
// gsoSize bytes but the last, which may be shorter. A UDP run is the same
// with UDP headers equal but for the checksum. Each packet's checksum must
// be valid, or partial as a Linux peer leaves it (see completeChecksum), or
// absent (UDP over IPv4): the kernel takes a TCP super-packet as
// checksummed, as it does any GRO packet, and gives each datagram of a UDP
// one a fresh checksum, so a corrupt packet must never join. Anything else
// leaves the run and takes the ordinary path.

// superWriter writes one super-packet (virtio-net header and packet).
type superWriter interface{ Write([]byte) (int, error) }

// maxCoalesced bounds a super-packet: the IPv4 total length and the IPv6
// payload length are 16 bits.
const maxCoalesced = 65535

// run is the first packet of a run, as parsed.
type run struct {
	port  *Port
	info  ipInfo
	l4Len int    // transport header length
	seg   int    // the payload length every packet but the last has
	next  uint32 // TCP: the sequence number the next segment must have
}

// udpRunLimit bounds a UDP super-packet's datagrams: maxUDPRun (the
// kernel's UDP_MAX_SEGMENTS is at least this), or maxSmallUDPRun when
// the datagrams' inner packets are shorter than smallUDP bytes. The
// container's kernel cuts a super-packet into its datagrams within the
// agent's write and queues them on the socket all at once; for small
// datagrams, runs of 8 had the receiving application take 20–40 % more
// of a flood than runs of 64 (64 to 768 bytes, side-by-side runs on two
// CPUs), while for full-sized ones runs of 64 did 10–15 % better than 8
// or 16 (1400 bytes) and the two were even at 1000.
func udpRunLimit(inner int) int {
	if inner < smallUDP {
		return maxSmallUDPRun
	}
	return maxUDPRun
}

const (
	maxUDPRun      = 64
	maxSmallUDPRun = 8
	smallUDP       = 1024
)

// coalesce tries to merge a run starting at train[off:], whose datagrams
// are seg bytes apart. It writes the run to its port and returns how many
// datagrams it took, or 0 when fewer than two would merge (nothing is
// changed then).
func (l *outsideLoop) coalesce(tbl *Table, train []byte, off, seg int, from netip.AddrPort) int {
	first := train[off:min(off+seg, len(train))]
	var r run
	if !l.runHead(tbl, first, from, &r) {
		return 0
	}
	pkt := first[vxlan.EncapLen:]
	hdrLen := r.info.l4 + r.l4Len
	tcp := r.info.proto == protoTCP
	if tcp && pkt[r.info.l4+tcpFlagsOffset]&tcpFlagPSH != 0 {
		return 0 // a run cannot go on past PSH
	}
	// Which datagrams join.
	count, total := 1, len(pkt)
	udpLimit := udpRunLimit(len(pkt))
	lastPSH := false
	for o := off + seg; o < len(train) && !lastPSH; o += seg {
		d := train[o:min(o+seg, len(train))]
		payload, psh, ok := r.follows(first, d)
		if !ok || r.info.v6 && total+payload-ipv6HeaderLen > maxCoalesced || !r.info.v6 && total+payload > maxCoalesced ||
			!tcp && count == udpLimit {
			break
		}
		count++
		total += payload
		lastPSH = psh
		if payload < r.seg {
			break // a short segment ends the run
		}
	}
	// The first packet's checksum last: only a run pays for it.
	if count < 2 || !checksumAcceptable(pkt, &r.info) {
		return 0
	}
	// Slide the payloads down behind the first segment.
	end := off + len(first)
	for i := 1; i < count; i++ {
		o := off + i*seg
		d := train[o:min(o+seg, len(train))]
		end += copy(train[end:], d[vxlan.EncapLen+hdrLen:])
	}
	pkt = train[off+vxlan.EncapLen : end]
	if r.port.rev.Load() != nil {
		// Replies of a service's task to a client of its VIP: from the
		// VIP. The checksums below cover the new address.
		fromVIP(r.port, pkt, &r.info, l.clock())
	}
	if r.info.v6 {
		binary.BigEndian.PutUint16(pkt[ipv6PayloadLenOffset:], uint16(len(pkt)-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(pkt[ipv4TotalLenOffset:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[ipv4ChecksumOffset:], 0)
		binary.BigEndian.PutUint16(pkt[ipv4ChecksumOffset:], ^fold(sum(0, pkt[:r.info.l4])))
	}
	if lastPSH {
		pkt[r.info.l4+tcpFlagsOffset] |= tcpFlagPSH
	}
	r.info.length = len(pkt)
	l4Len := len(pkt) - r.info.l4
	// The checksum field holds the pseudo-header sum, as the kernel wants
	// it of a packet whose checksum is left to it (NEEDS_CSUM).
	csumAt := tcpChecksumOffset
	gso := uint8(virtioGSOTCPv4)
	switch {
	case !tcp:
		csumAt, gso = udpChecksumOffset, virtioGSOUDPL4
		binary.BigEndian.PutUint16(pkt[r.info.l4+4:], uint16(l4Len))
	case r.info.v6:
		gso = virtioGSOTCPv6
	}
	binary.BigEndian.PutUint16(pkt[r.info.l4+csumAt:], fold(pseudoHeaderSum(pkt, &r.info, l4Len)))
	// The virtio-net header goes over the inner Ethernet header.
	h := train[off+vxlan.EncapLen-virtioHdrLen : off+vxlan.EncapLen]
	h[0] = virtioFlagNeedsCsum
	h[1] = gso
	binary.NativeEndian.PutUint16(h[2:], uint16(hdrLen))
	binary.NativeEndian.PutUint16(h[4:], uint16(r.seg))
	binary.NativeEndian.PutUint16(h[6:], uint16(r.info.l4))
	binary.NativeEndian.PutUint16(h[8:], uint16(csumAt))

	// Packets of this batch already queued for ports go first: one flow's
	// segments must not overtake each other.
	l.local.flush(&l.tally)
	l.tally.udpRx += uint64(count)
	if _, err := l.local.writer(r.port).Write(train[off+vxlan.EncapLen-virtioHdrLen : end]); err != nil {
		l.tally.drops[DropWrite] += uint64(count)
	} else {
		l.tally.portTx += uint64(count)
		l.tally.coalesced += uint64(count)
	}
	return count
}

// runHead checks that datagram d can start a run and fills r (all but its
// checksum, which coalesce checks once a second datagram joins).
func (l *outsideLoop) runHead(tbl *Table, d []byte, from netip.AddrPort, r *run) bool {
	if len(d) < vxlan.EncapLen+ipv4HeaderLen+udpHeaderLen {
		return false
	}
	vni, err := vxlan.ParseHeader(d)
	if err != nil {
		return false
	}
	eth := d[vxlan.HeaderLen:vxlan.EncapLen]
	if eth[0]&1 != 0 {
		return false // group address
	}
	// Only TCP and UDP merge: anything else (ICMP, say) is turned away on
	// one byte, before the lookups handle does anyway.
	pkt := d[vxlan.EncapLen:]
	etherType := binary.BigEndian.Uint16(eth[vxlan.EthernetTypeOffset:])
	var proto byte
	switch etherType {
	case vxlan.EtherTypeIPv4:
		proto = pkt[ipv4ProtocolOffset]
	case vxlan.EtherTypeIPv6:
		proto = pkt[ipv6NextHeaderOffset]
	}
	if proto != protoTCP && proto != protoUDP {
		return false
	}
	nw := l.last.network(tbl, vni)
	if nw == nil || nw.policy != nil || !l.allowed(nw, from) {
		return false // the policy host decides per packet
	}
	if nw.sealed != l.opened {
		return false // handle drops it: sealed where plain belongs, or plain where sealed
	}
	info, ok := parseIP(pkt)
	if !ok || info.etherType != etherType || info.proto != proto || info.length != len(pkt) {
		return false
	}
	// No IPv4 options, no IPv6 extension headers: headers compare whole.
	// (parseIP leaves l4 0 for a fragment.)
	if info.v6 && info.l4 != ipv6HeaderLen || !info.v6 && info.l4 != ipv4HeaderLen {
		return false
	}
	var tl int
	var next uint32
	if proto == protoUDP {
		tl = udpHeaderLen
		if info.l4+tl >= info.length || int(binary.BigEndian.Uint16(pkt[info.l4+4:])) != info.length-info.l4 {
			return false // no payload, or a UDP length that is not the packet's
		}
		if !info.v6 && pkt[ipv4FlagsFragOffset]&ipv4FlagDF == 0 {
			// The kernel gives the datagrams it cuts from a super-packet
			// IDs counting up from the first's; only where DF is set is
			// the ID nobody's business (RFC 6864).
			return false
		}
	} else {
		if info.length < info.l4+tcpHeaderLen {
			return false
		}
		tl = tcpHeaderLenAt(pkt, info.l4)
		if tl < tcpHeaderLen || info.l4+tl >= info.length {
			return false // no payload
		}
		if f := pkt[info.l4+tcpFlagsOffset]; f&^tcpFlagPSH != 0x10 {
			return false // only ACK, and PSH
		}
		next = binary.BigEndian.Uint32(pkt[info.l4+4:]) + uint32(info.length-info.l4-tl)
	}
	if nw.isFlood(info.dst, info.v6) {
		return false
	}
	h := l.last.host(nw, info.dst)
	if h == nil || h.port == nil || h.port.newSuperOut == nil || proto == protoUDP && !h.port.uso {
		return false // the device cannot take this super-packet
	}
	*r = run{
		port:  h.port,
		info:  info,
		l4Len: tl,
		seg:   info.length - info.l4 - tl,
		next:  next,
	}
	return true
}

// follows reports whether datagram d continues the run whose first
// datagram is first, and with how many payload bytes; psh is its PSH flag.
func (r *run) follows(first, d []byte) (payload int, psh, ok bool) {
	hdr := vxlan.EncapLen + r.info.l4 + r.l4Len
	if len(d) <= hdr {
		return 0, false, false
	}
	// VXLAN and Ethernet headers.
	if !bytes.Equal(d[:vxlan.EncapLen], first[:vxlan.EncapLen]) {
		return 0, false, false
	}
	a, b := first[vxlan.EncapLen:], d[vxlan.EncapLen:]
	if r.info.v6 {
		if !bytes.Equal(a[:4], b[:4]) || !bytes.Equal(a[6:ipv6HeaderLen], b[6:ipv6HeaderLen]) {
			return 0, false, false
		}
		if int(binary.BigEndian.Uint16(b[ipv6PayloadLenOffset:]))+ipv6HeaderLen != len(b) {
			return 0, false, false
		}
	} else {
		// Version, IHL, TOS; flags and fragment offset, TTL, protocol;
		// addresses.
		if a[0] != b[0] || a[1] != b[1] || !bytes.Equal(a[6:10], b[6:10]) || !bytes.Equal(a[12:20], b[12:20]) {
			return 0, false, false
		}
		if int(binary.BigEndian.Uint16(b[ipv4TotalLenOffset:])) != len(b) {
			return 0, false, false
		}
	}
	ta, tb := a[r.info.l4:], b[r.info.l4:]
	if r.info.proto == protoUDP {
		// Ports equal, and a length that is the packet's.
		if !bytes.Equal(ta[:4], tb[:4]) || int(binary.BigEndian.Uint16(tb[4:])) != len(b)-r.info.l4 {
			return 0, false, false
		}
		payload = len(b) - r.info.l4 - udpHeaderLen
		info := r.info
		info.length = len(b)
		if payload > r.seg || !checksumAcceptable(b, &info) {
			return 0, false, false
		}
		return payload, false, true
	}
	// Ports; acknowledgement, data offset; window, urgent pointer and
	// options: all equal. Flags: equal but for PSH.
	if !bytes.Equal(ta[:4], tb[:4]) || !bytes.Equal(ta[8:13], tb[8:13]) ||
		!bytes.Equal(ta[14:16], tb[14:16]) || !bytes.Equal(ta[18:r.l4Len], tb[18:r.l4Len]) {
		return 0, false, false
	}
	if (ta[tcpFlagsOffset]^tb[tcpFlagsOffset])&^tcpFlagPSH != 0 {
		return 0, false, false
	}
	if binary.BigEndian.Uint32(tb[4:]) != r.next {
		return 0, false, false
	}
	payload = len(b) - r.info.l4 - r.l4Len
	if payload > r.seg {
		return 0, false, false
	}
	info := r.info
	info.length = len(b)
	if !checksumAcceptable(b, &info) {
		return 0, false, false
	}
	r.next += uint32(payload)
	return payload, tb[tcpFlagsOffset]&tcpFlagPSH != 0, true
}

// checksumAcceptable reports whether a TCP segment's or UDP datagram's
// checksum is valid, or partial (the pseudo-header sum alone) as a Linux
// peer sends it through a device that never finishes it, or absent (a UDP
// checksum of 0 over IPv4).
func checksumAcceptable(pkt []byte, info *ipInfo) bool {
	l4Len := info.length - info.l4
	at := info.l4 + tcpChecksumOffset
	if info.proto == protoUDP {
		at = info.l4 + udpChecksumOffset
		if binary.BigEndian.Uint16(pkt[at:]) == 0 {
			return !info.v6 // IPv6 receivers drop a UDP checksum of 0
		}
	}
	pseudo := pseudoHeaderSum(pkt, info, l4Len)
	if binary.BigEndian.Uint16(pkt[at:]) == fold(pseudo) {
		return true
	}
	return fold(sum(pseudo, pkt[info.l4:info.length])) == 0xffff
}
