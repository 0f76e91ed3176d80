package dataplane

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/vxnet/vxnet/dataplane/udp"
)

// Packets too big for the way they would go.
//
// A container whose MTU is above the switch's (or whose packets would
// cross an underlay path narrower than the switch's MTU needs) sends
// packets the underlay cannot carry: the kernel never fragments VXLAN
// (package udp sets DF). The switch answers such a packet, when it may
// not be fragmented (IPv4 with DF, every IPv6 packet), as a router would:
// ICMP "fragmentation needed" or ICMPv6 "packet too big" with the MTU
// that fits, from the network's gateway address (the packet's
// destination's when the network has none), so the container's kernel
// lowers its path MTU and TCP its segment size. The answer is built in
// the packet's own buffer and rate-limited per port; the packet is
// counted as a too_big drop either way.
//
// The switch learns narrow paths from the underlay: a datagram the kernel
// refused as too big for its path names its destination VTEP
// (udp.Conn.TooBig), the switch asks the kernel for that path's MTU
// (udp.PathMTU), and publishes the VTEPs whose path is narrower than its
// MTU needs (pathMTUs); the inside loops load that list once per batch.

// Encapsulation overhead on the wire: outer IP, UDP, VXLAN and the inner
// Ethernet header.
const (
	overheadV4 = 20 + 8 + 8 + 14
	overheadV6 = 40 + 8 + 8 + 14
)

// icmpHeaderLen is the header of an ICMP or ICMPv6 error message.
const icmpHeaderLen = 8

// The most of an IP packet an ICMP error message is (RFC 1812 §4.3.2.3:
// 576 bytes; RFC 4443 §2.4: the IPv6 minimum MTU, 1280).
const (
	icmpMaxV4 = 576
	icmpMaxV6 = 1280
)

// pathMTUs lists the VTEPs whose underlay path is narrower than the
// switch's MTU needs, with the largest inner packet that fits each. It is
// immutable once published (byVTEP is built by seal).
type pathMTUs struct {
	vteps  []netip.Addr
	inner  []int
	byVTEP map[netip.Addr]int
}

// seal builds the lookup map; call it before publishing p.
func (p *pathMTUs) seal() *pathMTUs {
	p.byVTEP = make(map[netip.Addr]int, len(p.vteps))
	for i, v := range p.vteps {
		p.byVTEP[v] = p.inner[i]
	}
	return p
}

// innerMTU is the largest inner packet the path to v carries, or 0 when
// the path is not narrow.
func (p *pathMTUs) innerMTU(v netip.Addr) int { return p.byVTEP[v] }

// tooBigSource is an underlay that names the destinations of datagrams
// too big for their path (udp.Conn).
type tooBigSource interface {
	TooBig() <-chan struct{}
	TooBigDestinations() []netip.Addr
	LocalAddr() netip.AddrPort
}

// pathMTURecheck is how often narrow paths are asked again: the kernel
// forgets what ICMP taught it after ten minutes (net.ipv4.route.mtu_expires).
const pathMTURecheck = time.Minute

// routinePathMTU follows the underlay's too-big reports until ctx ends.
func (sw *Switch) routinePathMTU(ctx context.Context, src tooBigSource) {
	tick := time.NewTicker(pathMTURecheck)
	defer tick.Stop()
	for {
		var dsts []netip.Addr
		select {
		case <-ctx.Done():
			return
		case <-src.TooBig():
			dsts = src.TooBigDestinations()
		case <-tick.C:
			if p := sw.pmtu.Load(); p != nil {
				dsts = p.vteps
			}
		}
		if len(dsts) > 0 {
			sw.learnPathMTU(src.LocalAddr().Addr(), dsts)
		}
	}
}

// learnPathMTU asks the kernel for the paths to dsts and publishes the
// narrow ones with the rest of those already known.
func (sw *Switch) learnPathMTU(local netip.Addr, dsts []netip.Addr) {
	if local.IsUnspecified() {
		local = netip.Addr{}
	}
	old := sw.pmtu.Load()
	next := &pathMTUs{}
	if old != nil {
		next.vteps = append(next.vteps, old.vteps...)
		next.inner = append(next.inner, old.inner...)
	}
	for _, d := range dsts {
		d = d.Unmap()
		mtu, err := udp.PathMTU(local, d)
		if err != nil {
			sw.log.Debug("path MTU unknown", "peerAddr", d.String(), "error", err)
			continue
		}
		inner := mtu - overheadV4
		if d.Is6() {
			inner = mtu - overheadV6
		}
		i := 0
		for i < len(next.vteps) && next.vteps[i] != d {
			i++
		}
		switch {
		case inner >= sw.cfg.MTU && i < len(next.vteps):
			next.vteps = append(next.vteps[:i], next.vteps[i+1:]...)
			next.inner = append(next.inner[:i], next.inner[i+1:]...)
			sw.log.Info("underlay path wide enough again", "peerAddr", d.String(), "pathMTU", mtu)
		case inner >= sw.cfg.MTU:
		case i < len(next.vteps):
			next.inner[i] = max(inner, 68)
		default:
			next.vteps = append(next.vteps, d)
			next.inner = append(next.inner, max(inner, 68))
			sw.log.Warn("underlay path narrower than the MTU needs: containers get ICMP \"too big\" for larger packets to it",
				"peerAddr", d.String(), "pathMTU", mtu, "innerMTU", inner, "mtu", sw.cfg.MTU)
		}
	}
	if len(next.vteps) == 0 {
		sw.pmtu.Store(nil)
		return
	}
	sw.pmtu.Store(next.seal())
}

// icmpLimit rate-limits a loop's ICMP error messages: a burst of
// icmpBurst, then one per icmpEvery.
type icmpLimit struct {
	tokens int
	last   int64 // UnixNano of the last refill
}

const (
	icmpBurst = 20
	icmpEvery = int64(10 * time.Millisecond)
)

func (r *icmpLimit) allow() bool {
	now := time.Now().UnixNano()
	if add := (now - r.last) / icmpEvery; add > 0 {
		r.tokens = int(min(int64(r.tokens)+add, icmpBurst))
		r.last = now
	}
	if r.tokens == 0 {
		return false
	}
	r.tokens--
	return true
}

// tooBig answers the packet at buf[Headroom:] (size bytes, read from a
// port of network nw; fromGateway: from its gateway port, the host) with
// an ICMP "too big" carrying mtu, written over it in buf, and returns the
// answer's length at Headroom; 0 when it gets none (RFC 1122 §3.2.2, RFC
// 1812 §4.3.2.7, RFC 4443 §2.4): an IPv4 packet without DF (it could be
// fragmented; the switch does not) or to a broadcast or multicast
// address, a fragment but the first, a packet from an address that is
// not unicast, an ICMP error itself, or over the rate limit.
//
// The answer comes from the network's gateway address, as from a router,
// but to the host itself (its own address would be a martian source
// there) and where the network has none, from the packet's destination.
func (r *icmpLimit) tooBig(buf []byte, size int, info *ipInfo, mtu int, nw *network, fromGateway bool) int {
	return r.icmpError(buf, size, info, icmpKindTooBig, mtu, nw, fromGateway)
}

// icmpKind is an ICMP error message the switch sends.
type icmpKind uint8

const (
	// icmpKindTooBig: "fragmentation needed" (IPv4 with DF) or "packet too
	// big", carrying the MTU, from the gateway as from a router.
	icmpKindTooBig icmpKind = iota
	// icmpKindUnreachable: "port unreachable", from the packet's
	// destination, as from a host where nothing listens (a service's VIP
	// with no task).
	icmpKindUnreachable
)

// unreachable answers the TCP or UDP packet at buf[Headroom:] (size
// bytes), sent to a VIP that has no task, with ICMP "port unreachable"
// from the VIP, so that the client fails at once (ECONNREFUSED) rather
// than waiting out its timeouts; it returns the answer's length at
// Headroom, 0 when it gets none (as tooBig).
func (r *icmpLimit) unreachable(buf []byte, size int, info *ipInfo, nw *network) int {
	if info.proto != protoTCP && info.proto != protoUDP {
		return 0
	}
	return r.icmpError(buf, size, info, icmpKindUnreachable, 0, nw, true)
}

// icmpError builds the answer of kind to the packet (tooBig says when
// and how).
func (r *icmpLimit) icmpError(buf []byte, size int, info *ipInfo, kind icmpKind, mtu int, nw *network, fromGateway bool) int {
	pkt := buf[Headroom : Headroom+size]
	if info.v6 {
		return r.icmpErrorV6(buf, pkt, info, kind, mtu, nw, fromGateway)
	}
	frag := binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])
	if kind == icmpKindTooBig && frag&0x4000 == 0 || frag&0x1fff != 0 || nw.isFlood(info.dst, false) {
		return 0
	}
	src := netip.AddrFrom4([4]byte(pkt[ipv4SrcOffset : ipv4SrcOffset+4]))
	if !unicast(src) {
		return 0
	}
	ihl := int(pkt[0]&0x0f) * 4
	if info.proto == protoICMP && (info.l4 == 0 || len(pkt) < ihl+1 || isICMPv4Error(pkt[ihl])) {
		return 0
	}
	if !r.allow() {
		return 0
	}
	// From the gateway, else from the packet's destination; to its source.
	from := nw.gw4
	if !from.IsValid() || fromGateway || kind == icmpKindUnreachable {
		from = netip.AddrFrom4([4]byte(pkt[ipv4DstOffset : ipv4DstOffset+4]))
	}
	var to [4]byte
	copy(to[:], pkt[ipv4SrcOffset:ipv4SrcOffset+4])
	quoted := min(size, icmpMaxV4-ipv4HeaderLen-icmpHeaderLen)
	const hdr = ipv4HeaderLen + icmpHeaderLen
	copy(buf[Headroom+hdr:], pkt[:quoted])
	out := buf[Headroom : Headroom+hdr+quoted]
	clear(out[:hdr])
	out[0] = 0x45
	binary.BigEndian.PutUint16(out[ipv4TotalLenOffset:], uint16(len(out)))
	out[8] = 64 // TTL
	out[ipv4ProtocolOffset] = protoICMP
	a4 := from.As4()
	copy(out[ipv4SrcOffset:], a4[:])
	copy(out[ipv4DstOffset:], to[:])
	binary.BigEndian.PutUint16(out[ipv4ChecksumOffset:], ^fold(sum(0, out[:ipv4HeaderLen])))
	icmp := out[ipv4HeaderLen:]
	if kind == icmpKindTooBig {
		icmp[0], icmp[1] = 3, 4 // destination unreachable, fragmentation needed
		binary.BigEndian.PutUint16(icmp[6:], uint16(mtu))
	} else {
		icmp[0], icmp[1] = 3, 3 // destination unreachable, port unreachable
	}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(0, icmp)))
	return len(out)
}

// icmpErrorV6 is icmpError for an IPv6 packet: "packet too big" or "port
// unreachable".
func (r *icmpLimit) icmpErrorV6(buf, pkt []byte, info *ipInfo, kind icmpKind, mtu int, nw *network, fromGateway bool) int {
	if info.proto == protoICMPv6 && (len(pkt) < ipv6HeaderLen+1 || pkt[ipv6HeaderLen] < 128) {
		return 0 // an ICMPv6 error message
	}
	if !unicast(netip.AddrFrom16([16]byte(pkt[ipv6SrcOffset : ipv6SrcOffset+16]))) {
		return 0
	}
	// From the gateway, else from the packet's destination, which must
	// then be unicast (a "packet too big" may answer a multicast packet,
	// but never come from a multicast address).
	from := nw.gw6
	if !from.IsValid() || fromGateway || kind == icmpKindUnreachable {
		from = netip.AddrFrom16([16]byte(pkt[ipv6DstOffset : ipv6DstOffset+16]))
		if !unicast(from) {
			return 0
		}
	}
	if !r.allow() {
		return 0
	}
	var to [16]byte
	copy(to[:], pkt[ipv6SrcOffset:ipv6SrcOffset+16])
	size := len(pkt)
	quoted := min(size, icmpMaxV6-ipv6HeaderLen-icmpHeaderLen)
	const hdr = ipv6HeaderLen + icmpHeaderLen
	copy(buf[Headroom+hdr:], pkt[:quoted])
	out := buf[Headroom : Headroom+hdr+quoted]
	clear(out[:hdr])
	out[0] = 0x60
	binary.BigEndian.PutUint16(out[ipv6PayloadLenOffset:], uint16(len(out)-ipv6HeaderLen))
	out[ipv6NextHeaderOffset] = protoICMPv6
	out[ipv6HopLimitOffset] = 64
	a16 := from.As16()
	copy(out[ipv6SrcOffset:], a16[:])
	copy(out[ipv6DstOffset:], to[:])
	icmp := out[ipv6HeaderLen:]
	if kind == icmpKindTooBig {
		icmp[0] = 2 // packet too big
		binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
	} else {
		icmp[0], icmp[1] = 1, 4 // destination unreachable, port unreachable
	}
	ph := sum(0, out[ipv6SrcOffset:ipv6DstOffset+16]) + uint64(len(icmp)) + protoICMPv6
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(ph, icmp)))
	return len(out)
}

// unicast reports whether a can be the source of a packet: not
// unspecified, multicast or the IPv4 limited broadcast.
func unicast(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// isICMPv4Error reports whether an ICMP type is an error message (never
// answered with another).
func isICMPv4Error(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}
