package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var (
	seg6EP   = netip.MustParseAddr("2001:db8:5::10")
	seg6Peer = netip.MustParseAddr("2001:db8:5::1")
	seg6Far  = netip.MustParseAddr("2001:db8:99::1")
	routerLL = netip.MustParseAddr("fe80::1")
	routerM  = vxlan.MAC{2, 0, 0, 0, 0, 0xfe}
)

func uplinkRig6(t *testing.T, l2bridge bool) (*rig, *fakeUplink) {
	return uplinkRigOn(t, l2bridge, netip.MustParsePrefix("2001:db8:5::/64"), seg6EP, netip.Addr{})
}

func ethFrame6(dst, src vxlan.MAC, pkt []byte) []byte {
	f := ethFrame(dst, src, pkt)
	binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeIPv6)
	return f
}

// nsPacket is a neighbour solicitation for target from (src, mac).
func nsPacket(src, target netip.Addr, mac vxlan.MAC) []byte {
	p := make([]byte, nsLen)
	writeNS(p, mac, src.As16(), target.As16())
	return p
}

// raPacket is a router advertisement from src with a lifetime and its
// source link-layer address.
func raPacket(src netip.Addr, mac vxlan.MAC) []byte {
	p := make([]byte, ipv6HeaderLen+raLen+8)
	binary.BigEndian.PutUint32(p, 6<<28)
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], raLen+8)
	p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = protoICMPv6, 255
	s, d := src.As16(), allNodes.As16()
	copy(p[ipv6SrcOffset:], s[:])
	copy(p[ipv6DstOffset:], d[:])
	icmp := p[ipv6HeaderLen:]
	icmp[0] = icmpv6TypeRA
	binary.BigEndian.PutUint16(icmp[raLifetimeOffset:], 1800)
	icmp[raLen], icmp[raLen+1] = ndOptSourceLinkAddr, 1
	copy(icmp[raLen+2:], mac[:])
	info := ipInfo{v6: true, proto: protoICMPv6}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(pseudoHeaderSum(p, &info, len(icmp)), icmp)))
	return p
}

// TestUplink_ipv6: on a segment of IPv6, for both drivers: a container's
// packet to an unresolved neighbour sends a solicitation and is dropped;
// the advertisement teaches the MAC and the next packet goes out to it;
// a solicitation for the endpoint is answered (with the host's MAC on
// l2bridge) and delivers nothing; a frame for the endpoint reaches it; off
// the segment, with no --gateway, packets go to the router the segment's
// router advertisement named.
func TestUplink_ipv6(t *testing.T) {
	for _, l2bridge := range []bool{false, true} {
		r, f := uplinkRig6(t, l2bridge)
		epMAC := mac1
		if l2bridge {
			epMAC = vxlan.MAC(f.mac)
		}
		pkt := ipv6UDP(seg6EP, seg6Peer, []byte("hi"))
		r.a.Inject(pkt)
		ns := f.next(t)
		if d := vxlan.MAC(ns[0:6]); d != (vxlan.MAC{0x33, 0x33, 0xff, 0, 0, 1}) || vxlan.MAC(ns[6:12]) != epMAC {
			t.Fatalf("l2bridge=%v: solicitation from %v to %v", l2bridge, vxlan.MAC(ns[6:12]), d)
		}
		info, _ := parseIP(ns[vxlan.EthernetLen:])
		if !isNeighborSolicitationTo(ns[vxlan.EthernetLen:], &info, seg6Peer) {
			t.Fatalf("l2bridge=%v: not a solicitation for %v: % x", l2bridge, seg6Peer, ns)
		}
		// The answer: the packet, held meanwhile, goes to the neighbour.
		na := make([]byte, ipv6HeaderLen+naLen)
		writeNA(na, seg6Peer, seg6EP, peerMAC)
		f.in <- ethFrame6(epMAC, peerMAC, na)
		got := f.next(t)
		if got == nil || vxlan.MAC(got[0:6]) != peerMAC || vxlan.MAC(got[6:12]) != epMAC || !bytes.Equal(got[vxlan.EthernetLen:], pkt) {
			t.Fatalf("l2bridge=%v: frame % x, want the held packet from %v to %v", l2bridge, got, epMAC, peerMAC)
		}
		if s := r.sw.Stats(); s.Drops["neighbor_miss"] != 0 {
			t.Errorf("l2bridge=%v: %d neighbour misses, want the packet held, not dropped", l2bridge, s.Drops["neighbor_miss"])
		}
		r.a.Inject(pkt)
		if got := f.next(t); vxlan.MAC(got[0:6]) != peerMAC || !bytes.Equal(got[vxlan.EthernetLen:], pkt) {
			t.Fatalf("l2bridge=%v: frame % x, want the packet to %v at once", l2bridge, got, peerMAC)
		}
		// A solicitation for the endpoint: answered.
		f.in <- ethFrame6(vxlan.MAC{0x33, 0x33, 0xff, 0, 0, 0x10}, peerMAC, nsPacket(seg6Peer, seg6EP, peerMAC))
		ans := f.next(t)
		ai, ok := parseIP(ans[vxlan.EthernetLen:])
		if !ok || !isNeighborAdvertisement(ans[vxlan.EthernetLen:], &ai) || vxlan.MAC(ans[0:6]) != peerMAC ||
			ndLinkAddr(ans[vxlan.EthernetLen+ipv6HeaderLen+ndMsgLen:], ndOptTargetLinkAddr, vxlan.MAC{}) != epMAC {
			t.Fatalf("l2bridge=%v: answer % x, want an advertisement of %v to %v", l2bridge, ans, epMAC, peerMAC)
		}
		// A frame for the endpoint reaches it.
		in := ipv6UDP(seg6Peer, seg6EP, []byte("back"))
		f.in <- ethFrame6(epMAC, peerMAC, in)
		if p := out(t, r.a); !bytes.Equal(p, in) {
			t.Errorf("l2bridge=%v: the endpoint got % x", l2bridge, p)
		}
		// Off the segment, no --gateway: to the advertised router.
		rx := r.sw.Stats().UplinkRxFrames
		f.in <- ethFrame6(vxlan.MAC{0x33, 0x33, 0, 0, 0, 1}, routerM, raPacket(routerLL, routerM))
		waitStats(t, r.sw, "the advertisement read", func(s Stats) bool { return s.UplinkRxFrames > rx })
		far := ipv6UDP(seg6EP, seg6Far, []byte("far"))
		r.a.Inject(far)
		got = f.next(t)
		if got == nil || vxlan.MAC(got[0:6]) != routerM {
			t.Errorf("l2bridge=%v: off-segment frame % x, want it to the router %v", l2bridge, got, routerM)
		}
	}
}

// FuzzUplink feeds arbitrary frames from the segment through an uplink's
// reader, on an IPv6 segment and an IPv4 one: it must never panic. Frames
// for nobody here are ignored, as a promiscuous NIC sees the whole
// segment's traffic.
func FuzzUplink(f *testing.F) {
	f.Add(ethFrame6(vxlan.MAC{0x33, 0x33, 0xff, 0, 0, 0x10}, peerMAC, nsPacket(seg6Peer, seg6EP, peerMAC)))
	f.Add(ethFrame6(vxlan.MAC{0x33, 0x33, 0, 0, 0, 1}, routerM, raPacket(routerLL, routerM)))
	f.Add(ethFrame6(mac1, peerMAC, ipv6UDP(seg6Peer, seg6EP, []byte("x"))))
	f.Add(arpFrame(arpOpRequest, peerMAC, segPeer, vxlan.MAC{}, segEP, vxlan.Broadcast))
	f.Add(ethFrame(mac1, peerMAC, ipv4UDP(segPeer, segEP, 1, 2, []byte("y"))))
	h := newHotRig(f)
	fake := newFakeUplink()
	go func() { // answers and solicitations: taken and dropped
		for range fake.out {
		}
	}()
	u, err := h.sw.AddUplink("eth9", fake)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fake.Close() })
	var tables []*Table
	for _, spec := range []NetworkSpec{
		{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("2001:db8:5::/64")}, Uplink: u,
			Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{seg6EP}, Port: h.inside.port}}},
		{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Uplink: u, L2Bridge: true, Router: segRouter,
			Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{segEP}, Port: h.inside.port}}},
	} {
		tbl, err := NewTable([]NetworkSpec{spec})
		if err != nil {
			f.Fatal(err)
		}
		tables = append(tables, tbl)
	}
	l := &uplinkLoop{sw: h.sw, u: u, bufs: newBuffers(1, Headroom+MaxSegmentSize+1), sizes: make([]int, 1), w: fake}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > MaxSegmentSize {
			return
		}
		for _, tbl := range tables {
			h.sw.SetTable(tbl)
			l.sizes[0] = copy(l.bufs[0][EthernetOffset:], frame)
			l.process(1)
		}
	})
}

// TestUplink_ipv6RouterAndStrangers: with no router known, a packet off
// the segment sends a router solicitation; an advertisement with lifetime
// 0 retires the router in use; an unsolicited neighbour advertisement
// adds nothing to the cache.
func TestUplink_ipv6RouterAndStrangers(t *testing.T) {
	r, f := uplinkRig6(t, false)
	u := func() *Uplink {
		for up := range r.sw.uplinks {
			return up
		}
		return nil
	}()
	r.a.Inject(ipv6UDP(seg6EP, seg6Far, []byte("far")))
	rs := f.next(t)
	if vxlan.MAC(rs[0:6]) != allRoutersMAC || rs[vxlan.EthernetLen+ipv6HeaderLen] != icmpv6TypeRS {
		t.Fatalf("frame % x, want a router solicitation to all routers", rs)
	}
	info, _ := parseIP(rs[vxlan.EthernetLen:])
	if p := rs[vxlan.EthernetLen:]; fold(sum(pseudoHeaderSum(p, &info, info.length-ipv6HeaderLen), p[ipv6HeaderLen:info.length])) != 0xffff {
		t.Error("the solicitation's checksum does not verify")
	}
	rx := r.sw.Stats().UplinkRxFrames
	f.in <- ethFrame6(allNodesMAC, routerM, raPacket(routerLL, routerM))
	waitStats(t, r.sw, "the advertisement read", func(s Stats) bool { return s.UplinkRxFrames > rx })
	if got := u.router6.Load(); got == nil || *got != routerM {
		t.Fatalf("router %v, want %v", got, routerM)
	}
	retire := raPacket(routerLL, routerM)
	icmp := retire[ipv6HeaderLen:]
	binary.BigEndian.PutUint16(icmp[raLifetimeOffset:], 0)
	f.in <- ethFrame6(allNodesMAC, routerM, retire)
	// An unsolicited advertisement of a stranger, behind it.
	stranger := netip.MustParseAddr("2001:db8:5::66")
	na := make([]byte, ipv6HeaderLen+naLen)
	writeNA(na, stranger, netip.IPv6Unspecified(), vxlan.MAC{2, 0, 0, 0, 0, 0x66}) // unsolicited: S clear
	f.in <- ethFrame6(allNodesMAC, vxlan.MAC{2, 0, 0, 0, 0, 0x66}, na)
	waitStats(t, r.sw, "both read", func(s Stats) bool { return s.UplinkRxFrames >= rx+3 })
	if got := u.router6.Load(); got != nil {
		t.Errorf("router %v still in use after it retired", *got)
	}
	if _, ok := u.neighbor(keyOf(stranger)); ok {
		t.Error("an unsolicited advertisement added a neighbour")
	}
}
