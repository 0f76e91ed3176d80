package dataplane

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Addresses the table does not list, resolved as a kernel VTEP would.
//
// A network may hold addresses no table row names: the containers of a
// Linux vxlan device that shares the VNI (a kernel peer whose addresses
// were never configured). A packet to such an address, inside the
// network's subnets, is not flooded (a Linux receiver drops TCP sent to
// the broadcast MAC): the switch holds it (held.go; dropped as
// neighbor_miss when it cannot) and asks the network, as a kernel VTEP's
// bridge would, with an ARP request or an IPv6 neighbour solicitation from
// the sender, to every VTEP of the network (only in the name of an address
// the sending port holds; other senders' packets are dropped). The
// answer (an ARP reply, a neighbour advertisement) from an allowed VTEP is
// learnt: the address, its MAC and the VTEP behind it, for
// learnedTTL, refreshed by asking again once half of it has passed while
// the address is in use. Requests and solicitations from kernel peers
// teach their senders the same way. Learnt entries never name an address
// the table lists (the table wins), are kept across table rebuilds while
// their VTEP stays one of the network's, and are bounded (maxLearned; the
// entry nearest expiry makes room). Link-local destinations are not asked
// for: they are flooded as before, as are broadcast and multicast.
//
// The packet loops read the cache through an atomic pointer to an
// immutable map. A loop that sees an answer only offers it (offerNeighbor:
// a non-blocking send of a small value, dropped when the queue is full);
// routineLearn checks the offers against the table in force and publishes
// a new map once per burst. Packet loops never lock or allocate for it.

const (
	learnedTTL = 2 * time.Minute
	maxLearned = 4096
	learnQueue = 256
)

type learnKey struct {
	vni  uint32
	addr addrKey
}

type learnedEntry struct {
	mac     vxlan.MAC
	vtep    netip.Addr
	expires int64 // UnixNano
}

type learnedMap map[learnKey]learnedEntry

// learnOffer is an answer a packet loop saw: addr of network vni has mac
// behind vtep.
type learnOffer struct {
	vni  uint32
	addr netip.Addr
	mac  vxlan.MAC
	vtep netip.Addr
}

// learnedNeighbor returns what was learnt of addr on network nw, if it has
// not expired at now and its VTEP is still one of the network's.
func (sw *Switch) learnedNeighbor(nw *network, addr addrKey, now int64) (learnedEntry, bool) {
	m := sw.learned.Load()
	if m == nil {
		return learnedEntry{}, false
	}
	e, ok := (*m)[learnKey{nw.vni, addr}]
	if !ok || now > e.expires || !nw.vtepSet.get(keyOf(e.vtep)) {
		return learnedEntry{}, false
	}
	return e, true
}

// offerNeighbor queues an answer for routineLearn; a full queue drops it
// (the address is asked again).
func (sw *Switch) offerNeighbor(o learnOffer) {
	select {
	case sw.learnCh <- o:
	default:
	}
}

// drainLearned applies first and every offer queued behind it, and
// publishes the result once.
func (sw *Switch) drainLearned(first learnOffer, now int64) {
	offers := []learnOffer{first}
	for more := true; more && len(offers) < learnQueue; {
		select {
		case o := <-sw.learnCh:
			offers = append(offers, o)
		default:
			more = false
		}
	}
	sw.applyLearned(offers, now)
}

// applyLearned records the offers that hold against the table in force:
// an address of the network (onNetwork) that the table does not list, a
// unicast MAC, a VTEP of the network. It publishes a new map only when
// something changes or an entry is past half its life, and reports how
// many offers it took.
func (sw *Switch) applyLearned(offers []learnOffer, now int64) int {
	tbl := sw.table.Load()
	var old learnedMap
	if m := sw.learned.Load(); m != nil {
		old = *m
	}
	var next learnedMap
	took := 0
	for _, o := range offers {
		nw := tbl.vnis.get(o.vni)
		if nw == nil || !o.addr.IsValid() {
			continue
		}
		addr, vtep := o.addr.Unmap(), o.vtep.Unmap()
		k := keyOf(addr)
		if o.mac.IsMulticast() || o.mac.IsZero() || !addr.IsGlobalUnicast() || nw.hosts.get(k) != nil ||
			!nw.onNetwork(k, addr.Is6()) || !nw.vtepSet.get(keyOf(vtep)) {
			continue
		}
		lk := learnKey{nw.vni, k}
		cur := old
		if next != nil {
			cur = next
		}
		if e, ok := cur[lk]; ok && e.mac == o.mac && e.vtep == vtep && e.expires-now > int64(learnedTTL/2) {
			continue
		}
		if next == nil {
			next = make(learnedMap, len(old)+1)
			for k, e := range old {
				if e.expires >= now { // the expired go
					next[k] = e
				}
			}
		}
		if _, ok := next[lk]; !ok && len(next) >= maxLearned {
			evictSoonest(next)
		}
		next[lk] = learnedEntry{mac: o.mac, vtep: vtep, expires: now + int64(learnedTTL)}
		took++
	}
	if next != nil {
		sw.learned.Store(&next)
	}
	return took
}

// evictSoonest removes the entry closest to expiry.
func evictSoonest(m learnedMap) {
	var victim learnKey
	first := true
	var soonest int64
	for k, e := range m {
		if first || e.expires < soonest {
			victim, soonest, first = k, e.expires, false
		}
	}
	delete(m, victim)
}

// resolve handles a packet (at buf[Headroom:], from port pi of network
// nw) to an address of the network's subnets no endpoint holds: out to
// what was learnt of it (within the path's MTU, pm), else held while the
// network is asked, but only in the name of the port's own address: a
// container never makes the switch announce an address it does not hold
// (such a packet is dropped).
func (l *insideLoop) resolve(nw *network, pi *portInfo, buf []byte, info *ipInfo, hash uint32, now int64, pm *pathMTUs) {
	sw := l.sw
	pkt := buf[Headroom : Headroom+info.length]
	own := false
	if info.v6 {
		own = l.ownsSource(nw, keyV6(pkt[ipv6SrcOffset:]))
	} else {
		own = l.ownsSource(nw, keyV4(pkt[ipv4SrcOffset:]))
	}
	e, ok := sw.learnedNeighbor(nw, info.dst, now)
	if ok {
		if (pm != nil || info.length > sw.cfg.MTU) && l.overPath(pm, e.vtep, buf, info, nw, e.mac, pi.mac, hash) {
			return
		}
		if own && e.expires-now < int64(learnedTTL/2) && l.arp.allow(info.dst, time.Unix(0, now)) {
			// Still in use: ask again, so the entry is refreshed before it
			// expires. The packet itself goes now (its buffer is intact:
			// the request is built in the scratch).
			l.askNetwork(nw, pi, buf, info, true)
		}
		frame := buf[UnderlayOffset : Headroom+info.length]
		vxlan.Encap(frame, nw.vni, e.mac, pi.mac, info.etherType)
		l.b.udp.add(frame, sw.vtepAddr(e.vtep), hash)
		return
	}
	if !own {
		l.tally.drop(DropNeighborMiss)
		return
	}
	// Held until the answer comes (held.go), or dropped; then asked for,
	// over the packet's buffer.
	if !sw.held.hold(nw.vni, info.dst, pi.mac, info.etherType, hash, pkt, now, &l.tally) {
		l.tally.drop(DropNeighborMiss)
	}
	if l.arp.allow(info.dst, time.Unix(0, now)) {
		l.askNetwork(nw, pi, buf, info, false)
	}
}

// ownsSource reports whether src is an address of the loop's own port on
// nw.
func (l *insideLoop) ownsSource(nw *network, src addrKey) bool {
	h := nw.hosts.get(src)
	return h != nil && h.port == l.port
}

// askNetwork sends every VTEP of nw an ARP request (IPv4) or a neighbour
// solicitation (IPv6) for the packet's destination, from its sender. It
// is built over the packet in buf, or, when the packet still goes out
// (scratch), in the loop's ask buffer.
func (l *insideLoop) askNetwork(nw *network, pi *portInfo, buf []byte, info *ipInfo, scratch bool) {
	if len(nw.vteps) == 0 {
		return
	}
	pkt := buf[Headroom : Headroom+info.length]
	out := buf
	if scratch {
		out = l.askBuf[:]
	}
	var n int
	var dstMAC vxlan.MAC
	var etherType uint16
	if info.v6 {
		var src, target [16]byte
		copy(src[:], pkt[ipv6SrcOffset:])
		copy(target[:], pkt[ipv6DstOffset:])
		n, dstMAC = writeNS(out[Headroom:], pi.mac, src, target), solicitedNodeMAC(target)
		etherType = vxlan.EtherTypeIPv6
	} else {
		src := netip.AddrFrom4([4]byte(pkt[ipv4SrcOffset:]))
		target := netip.AddrFrom4([4]byte(pkt[ipv4DstOffset:]))
		a := out[Headroom : Headroom+arpLen]
		copy(a, arpFixedHeader)
		binary.BigEndian.PutUint16(a[arpOpOffset:], arpOpRequest)
		copy(a[arpSHAOffset:], pi.mac[:])
		s4, t4 := src.As4(), target.As4()
		copy(a[arpSPAOffset:], s4[:])
		clear(a[arpTHAOffset : arpTHAOffset+6])
		copy(a[arpTPAOffset:], t4[:])
		n, dstMAC, etherType = arpLen, vxlan.Broadcast, vxlan.EtherTypeARP
	}
	frame := out[UnderlayOffset : Headroom+n]
	vxlan.Encap(frame, nw.vni, dstMAC, pi.mac, etherType)
	if scratch {
		// The scratch is reused by the next ask: send what it holds now.
		l.b.udp.flush(&l.tally)
	}
	for _, v := range nw.vteps {
		l.b.udp.add(frame, l.sw.vtepAddr(v), arpReplyHashKey^nw.vni)
	}
	if scratch {
		l.b.udp.flush(&l.tally)
	}
	l.tally.neighbor++
}

// nsLen is a neighbour solicitation with a source link-layer address
// option, IPv6 header included.
const nsLen = ipv6HeaderLen + ndMsgLen + ndOptLinkAddrLen

// writeNS writes a neighbour solicitation for target from (mac, src) to
// target's solicited-node address at the start of p, and returns its
// length.
func writeNS(p []byte, mac vxlan.MAC, src, target [16]byte) int {
	p = p[:nsLen]
	clear(p)
	binary.BigEndian.PutUint32(p, 6<<28)
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], ndMsgLen+ndOptLinkAddrLen)
	p[ipv6NextHeaderOffset] = protoICMPv6
	p[ipv6HopLimitOffset] = 255
	copy(p[ipv6SrcOffset:], src[:])
	dst := [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: target[13], 14: target[14], 15: target[15]}
	copy(p[ipv6DstOffset:], dst[:])
	icmp := p[ipv6HeaderLen:]
	icmp[0] = icmpv6TypeNS
	copy(icmp[ndTargetOffset:], target[:])
	icmp[ndMsgLen] = ndOptSourceLinkAddr
	icmp[ndMsgLen+1] = 1
	copy(icmp[ndMsgLen+2:], mac[:])
	info := ipInfo{v6: true, proto: protoICMPv6}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(pseudoHeaderSum(p, &info, len(icmp)), icmp)))
	return nsLen
}

// solicitedNodeMAC is the Ethernet group address of target's
// solicited-node multicast address (RFC 2464 §7).
func solicitedNodeMAC(target [16]byte) vxlan.MAC {
	return vxlan.MAC{0x33, 0x33, 0xff, target[13], target[14], target[15]}
}

// learnFromARP learns the sender of an ARP message (a reply to a request
// the switch sent, or a kernel peer's own request) that came from vtep.
func (l *outsideLoop) learnFromARP(nw *network, vtep netip.Addr, arp []byte) {
	spa := netip.AddrFrom4([4]byte(arp[arpSPAOffset:]))
	l.sw.offerNeighbor(learnOffer{vni: nw.vni, addr: spa, mac: vxlan.MAC(arp[arpSHAOffset:]), vtep: vtep})
}

// learnFromND learns from an IPv6 neighbour advertisement (its target and
// target link-layer address) or solicitation (its source and source
// link-layer address) that came from vtep; srcMAC is the frame's source,
// for messages without the option.
func (l *outsideLoop) learnFromND(nw *network, vtep netip.Addr, pkt []byte, info *ipInfo, srcMAC vxlan.MAC) {
	icmp := pkt[ipv6HeaderLen:info.length]
	if len(icmp) < ndMsgLen || icmp[1] != 0 {
		return
	}
	var addr netip.Addr
	wantOpt := byte(ndOptSourceLinkAddr)
	switch icmp[0] {
	case icmpv6TypeNA:
		addr, wantOpt = netip.AddrFrom16([16]byte(icmp[ndTargetOffset:])), ndOptTargetLinkAddr
	case icmpv6TypeNS:
		addr = netip.AddrFrom16([16]byte(pkt[ipv6SrcOffset:]))
	default:
		return
	}
	mac := ndLinkAddr(icmp[ndMsgLen:], wantOpt, srcMAC)
	l.sw.offerNeighbor(learnOffer{vni: nw.vni, addr: addr, mac: mac, vtep: vtep})
}
