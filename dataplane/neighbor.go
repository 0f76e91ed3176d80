package dataplane

import (
	"encoding/binary"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// ARP (RFC 826) for IPv4 over Ethernet.
const (
	arpLen          = 28
	arpOpOffset     = 6
	arpSHAOffset    = 8
	arpSPAOffset    = 14
	arpTHAOffset    = 18
	arpTPAOffset    = 24
	arpOpRequest    = 1
	arpOpReply      = 2
	arpFixedHeader  = "\x00\x01\x08\x00\x06\x04" // htype 1, ptype IPv4, hlen 6, plen 4
	arpFixedHdrLen  = len(arpFixedHeader)
	arpReplyHashKey = 0x41525020 // any constant: replies of a VNI share a source port
)

// ICMPv6 neighbour discovery (RFC 4861).
const (
	icmpv6TypeNS        = 135
	icmpv6TypeNA        = 136
	ndTargetOffset      = 8  // in the ICMPv6 message
	ndMsgLen            = 24 // type, code, checksum, flags, target
	ndOptLinkAddrLen    = 8
	ndOptSourceLinkAddr = 1
	ndOptTargetLinkAddr = 2
	naFlagSolicited     = 0x40
	naFlagOverride      = 0x20
	naLen               = ndMsgLen + ndOptLinkAddrLen
)

var allNodes = netip.MustParseAddr("ff02::1")

// answerARP answers an ARP request for an address in the table, in place,
// and queues the reply to the VTEP that asked. Replies, and the senders of
// requests, are learnt where the table does not list them (learned.go);
// other ARP messages are dropped.
func (l *outsideLoop) answerARP(nw *network, asker netip.Addr, buf []byte, size int) {
	arp := buf[Headroom : Headroom+size]
	if size < arpLen || string(arp[:arpFixedHdrLen]) != arpFixedHeader {
		l.tally.drop(DropMalformed)
		return
	}
	spa := netip.AddrFrom4([4]byte(arp[arpSPAOffset:]))
	tpa := netip.AddrFrom4([4]byte(arp[arpTPAOffset:]))
	op := binary.BigEndian.Uint16(arp[arpOpOffset:])
	if op != arpOpReply && op != arpOpRequest {
		l.tally.drop(DropUnsupported)
		return
	}
	// A reply to the switch's request, or a kernel peer's own request or
	// announcement, teaches its sender (learned.go).
	l.learnFromARP(nw, asker, arp)
	if op != arpOpRequest || spa == tpa {
		l.tally.neighborIn++
		return // replies and gratuitous ARP: nothing to answer
	}
	h := nw.hosts.get(keyOf(tpa))
	if h == nil || (h.port == nil && h.vtep == asker) {
		l.tally.drop(DropNoEndpoint)
		return
	}
	sha := vxlan.MAC(arp[arpSHAOffset:])
	binary.BigEndian.PutUint16(arp[arpOpOffset:], arpOpReply)
	copy(arp[arpTHAOffset:], sha[:])
	a4 := spa.As4()
	copy(arp[arpTPAOffset:], a4[:])
	copy(arp[arpSHAOffset:], h.mac[:])
	t4 := tpa.As4()
	copy(arp[arpSPAOffset:], t4[:])
	frame := buf[UnderlayOffset : Headroom+arpLen]
	vxlan.Encap(frame, nw.vni, sha, h.mac, vxlan.EtherTypeARP)
	l.udp.add(frame, l.sw.vtepAddr(asker), arpReplyHashKey^nw.vni)
	l.tally.neighbor++
}

// isNeighborSolicitation reports whether an IPv6 packet is a well-formed
// neighbour solicitation (RFC 4861 §7.1.1: hop limit 255, code 0).
func isNeighborSolicitation(pkt []byte, info *ipInfo) bool {
	return info.proto == protoICMPv6 && info.l4 == ipv6HeaderLen &&
		info.length >= ipv6HeaderLen+ndMsgLen &&
		pkt[ipv6HopLimitOffset] == 255 &&
		pkt[ipv6HeaderLen] == icmpv6TypeNS && pkt[ipv6HeaderLen+1] == 0
}

// writeNA writes at the start of p a neighbour advertisement of target at
// mac, answering a solicitation from asker (solicited; to all nodes when
// asker is unspecified, as for duplicate address detection).
func writeNA(p []byte, target, asker netip.Addr, mac vxlan.MAC) {
	dst, flags := asker, byte(naFlagSolicited|naFlagOverride)
	if dst.IsUnspecified() {
		dst, flags = allNodes, naFlagOverride
	}
	// IPv6 header: version 6, no traffic class or flow label.
	binary.BigEndian.PutUint32(p, 6<<28)
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], naLen)
	p[ipv6NextHeaderOffset] = protoICMPv6
	p[ipv6HopLimitOffset] = 255
	t16, d16 := target.As16(), dst.As16()
	copy(p[ipv6SrcOffset:], t16[:])
	copy(p[ipv6DstOffset:], d16[:])
	// ICMPv6 neighbour advertisement with a target link-layer address.
	icmp := p[ipv6HeaderLen : ipv6HeaderLen+naLen]
	clear(icmp)
	icmp[0] = icmpv6TypeNA
	icmp[4] = flags
	copy(icmp[ndTargetOffset:], t16[:])
	icmp[ndMsgLen] = ndOptTargetLinkAddr
	icmp[ndMsgLen+1] = 1 // length in units of 8 bytes
	copy(icmp[ndMsgLen+2:], mac[:])
	na := ipInfo{v6: true, proto: protoICMPv6}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(pseudoHeaderSum(p, &na, naLen), icmp)))
}

// isNeighborAdvertisement reports whether an IPv6 packet is a neighbour
// advertisement (RFC 4861 §7.1.2: hop limit 255, code 0).
func isNeighborAdvertisement(pkt []byte, info *ipInfo) bool {
	return info.proto == protoICMPv6 && info.l4 == ipv6HeaderLen &&
		info.length >= ipv6HeaderLen+ndMsgLen &&
		pkt[ipv6HopLimitOffset] == 255 &&
		pkt[ipv6HeaderLen] == icmpv6TypeNA && pkt[ipv6HeaderLen+1] == 0
}

// answerNS answers a neighbour solicitation for an address in the table
// with a neighbour advertisement built in place; its sender is learnt
// where the table does not list it (learned.go).
func (l *outsideLoop) answerNS(nw *network, asker netip.Addr, buf []byte, info *ipInfo) {
	pkt := buf[Headroom:]
	l.learnFromND(nw, asker, pkt, info, vxlan.MAC(buf[EthernetOffset+6:]))
	target := netip.AddrFrom16([16]byte(pkt[ipv6HeaderLen+ndTargetOffset:]))
	h := nw.hosts.get(keyOf(target))
	if h == nil || (h.port == nil && h.vtep == asker) {
		l.tally.drop(DropNoEndpoint)
		return
	}
	askerMAC := vxlan.MAC(buf[EthernetOffset+6:])
	writeNA(pkt, target, netip.AddrFrom16([16]byte(pkt[ipv6SrcOffset:])), h.mac)

	frame := buf[UnderlayOffset : Headroom+ipv6HeaderLen+naLen]
	vxlan.Encap(frame, nw.vni, askerMAC, h.mac, vxlan.EtherTypeIPv6)
	l.udp.add(frame, l.sw.vtepAddr(asker), arpReplyHashKey^nw.vni)
	l.tally.neighbor++
}
