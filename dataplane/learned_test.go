package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/internal/testutil"
)

var (
	ipK  = netip.MustParseAddr("10.0.9.77") // a kernel peer's, in no table
	ip6K = netip.MustParseAddr("fd00:9::77")
	macK = vxlan.MAC{2, 0, 0, 0, 9, 0x77}
)

func arpReply(sha vxlan.MAC, spa netip.Addr, tha vxlan.MAC, tpa netip.Addr) []byte {
	a := arpRequest(sha, spa, tpa)
	binary.BigEndian.PutUint16(a[arpOpOffset:], arpOpReply)
	copy(a[arpTHAOffset:], tha[:])
	return a
}

// neighborAdvert builds an NA for target with its link-layer address.
func neighborAdvert(src, dst netip.Addr, mac vxlan.MAC) []byte {
	p := make([]byte, ipv6HeaderLen+naLen)
	binary.BigEndian.PutUint32(p, 6<<28)
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], naLen)
	p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = protoICMPv6, 255
	s, d := src.As16(), dst.As16()
	copy(p[ipv6SrcOffset:], s[:])
	copy(p[ipv6DstOffset:], d[:])
	icmp := p[ipv6HeaderLen:]
	icmp[0], icmp[4] = icmpv6TypeNA, naFlagSolicited|naFlagOverride
	copy(icmp[ndTargetOffset:], s[:])
	icmp[ndMsgLen], icmp[ndMsgLen+1] = ndOptTargetLinkAddr, 1
	copy(icmp[ndMsgLen+2:], mac[:])
	info := ipInfo{v6: true, proto: protoICMPv6}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(pseudoHeaderSum(p, &info, naLen), icmp)))
	return p
}

// TestSwitch_unknownUnicast_resolved: a packet to an address of the
// network no table lists is not flooded: it is held while every VTEP is
// asked (ARP; IPv6 neighbour solicitation); the answer from a VTEP is
// learnt, the held packet goes to it, and so do later packets, to it
// alone, to the MAC it gave.
func TestSwitch_unknownUnicast_resolved(t *testing.T) {
	r := newRig(t)
	pkt := ipv4UDP(ip1, ipK, 1000, 2000, []byte("hello kernel"))
	r.a.Inject(pkt)
	for name, peer := range map[string]func() []byte{
		"vtep2": func() []byte { b, _ := recv(t, r.peer2); return b },
		"vtep3": func() []byte { b, _ := recv(t, r.peer3); return b },
	} {
		got := peer()
		f, err := vxlan.Decap(got)
		if err != nil || f.Eth.Dst != vxlan.Broadcast || f.Eth.Type != vxlan.EtherTypeARP {
			t.Fatalf("%s got %+v (%v), want a broadcast ARP frame", name, f, err)
		}
		if want := arpRequest(mac1, ip1, ipK); !bytes.Equal(got[vxlan.EncapLen:], want) {
			t.Errorf("%s got ARP % x, want % x", name, got[vxlan.EncapLen:], want)
		}
	}
	s := r.sw.Stats()
	if s.Flooded != 0 || s.PortTxPackets != 0 || s.Drops["neighbor_miss"] != 0 {
		t.Errorf("flooded %d, written to ports %d, dropped %d: want none (held)", s.Flooded, s.PortTxPackets, s.Drops["neighbor_miss"])
	}
	// vtep3 answers for it: the held packet goes there.
	send(t, r.peer3, frame(testVNI, mac1, macK, vxlan.EtherTypeARP, arpReply(macK, ipK, mac1, ip1)))
	got, _ := recv(t, r.peer3)
	if f, _ := vxlan.Decap(got); f.Eth.Dst != macK || !bytes.Equal(got[vxlan.EncapLen:], pkt) {
		t.Errorf("vtep3 got %+v, want the held packet to %v", f, macK)
	}
	nw := r.sw.table.Load().vnis.get(testVNI)
	testutil.WaitFor(t, "the reply learnt", 5*time.Second, func() bool { _, ok := r.sw.learnedNeighbor(nw, keyOf(ipK), time.Now().UnixNano()); return ok })
	before := waitStats(t, r.sw, "the held packet counted", func(s Stats) bool { return s.UnderlayTxPackets == 3 }).UnderlayTxPackets // 2 requests, 1 packet
	r.a.Inject(pkt)
	got, _ = recv(t, r.peer3)
	if f, _ := vxlan.Decap(got); f.Eth.Dst != macK || !bytes.Equal(got[vxlan.EncapLen:], pkt) {
		t.Errorf("vtep3 got %+v, want the packet to %v", f, macK)
	}
	if s := waitStats(t, r.sw, "the send counted", func(s Stats) bool { return s.UnderlayTxPackets > before }); s.UnderlayTxPackets != before+1 {
		t.Errorf("%d datagrams sent, want 1 (to vtep3 alone)", s.UnderlayTxPackets-before)
	}

	// IPv6: a solicitation to the solicited-node group, an advertisement
	// learnt.
	pkt6 := ipv6UDP(ip6a, ip6K, []byte("hello6"))
	r.a.Inject(pkt6)
	got, _ = recv(t, r.peer2)
	recv(t, r.peer3)
	f, _ := vxlan.Decap(got)
	ns := got[vxlan.EncapLen:]
	info, ok := parseIP(ns)
	if !ok || f.Eth.Dst != (vxlan.MAC{0x33, 0x33, 0xff, 0, 0, 0x77}) || !isNeighborSolicitationTo(ns, &info, ip6K) {
		t.Fatalf("vtep2 got %+v % x, want a neighbour solicitation for %v", f, ns, ip6K)
	}
	if fold(sum(pseudoHeaderSum(ns, &info, info.length-ipv6HeaderLen), ns[ipv6HeaderLen:info.length])) != 0xffff {
		t.Error("the solicitation's checksum does not verify")
	}
	send(t, r.peer2, frame(testVNI, mac1, macK, vxlan.EtherTypeIPv6, neighborAdvert(ip6K, ip6a, macK)))
	got, _ = recv(t, r.peer2)
	if f, _ := vxlan.Decap(got); f.Eth.Dst != macK || !bytes.Equal(got[vxlan.EncapLen:], pkt6) {
		t.Errorf("vtep2 got %+v, want the held IPv6 packet to %v", f, macK)
	}
	testutil.WaitFor(t, "the advertisement learnt", 5*time.Second, func() bool { _, ok := r.sw.learnedNeighbor(nw, keyOf(ip6K), time.Now().UnixNano()); return ok })
	r.a.Inject(pkt6)
	got, _ = recv(t, r.peer2)
	if f, _ := vxlan.Decap(got); f.Eth.Dst != macK || !bytes.Equal(got[vxlan.EncapLen:], pkt6) {
		t.Errorf("vtep2 got %+v, want the IPv6 packet to %v", f, macK)
	}
}

func isNeighborSolicitationTo(p []byte, info *ipInfo, target netip.Addr) bool {
	t16 := target.As16()
	return isNeighborSolicitation(p, info) && bytes.Equal(p[ipv6HeaderLen+ndTargetOffset:ipv6HeaderLen+ndTargetOffset+16], t16[:])
}

// TestLearned_tableWinsAndExpiry: an answer for an address the table
// lists, off the network, from a VTEP not of the network or with a group
// MAC is not learnt; an entry is gone once it expires or its VTEP leaves
// the network; a full cache makes room by dropping the entry nearest
// expiry; a kernel peer's own request teaches its sender.
func TestLearned_tableWinsAndExpiry(t *testing.T) {
	h := newHotRig(t)
	sw := h.sw
	nw := sw.table.Load().vnis.get(testVNI)
	now := time.Now().UnixNano()
	learn := func(addr netip.Addr, mac vxlan.MAC, vtep netip.Addr, at int64) bool {
		return sw.applyLearned([]learnOffer{{vni: testVNI, addr: addr, mac: mac, vtep: vtep}}, at) == 1
	}
	for name, tc := range map[string]struct {
		addr netip.Addr
		mac  vxlan.MAC
		vtep netip.Addr
	}{
		"in the table":    {ip2, macK, vtep3},
		"off the network": {netip.MustParseAddr("192.0.2.1"), macK, vtep3},
		"unknown VTEP":    {ipK, macK, vtepX},
		"group MAC":       {ipK, vxlan.Broadcast, vtep3},
		"link-local":      {netip.MustParseAddr("169.254.1.1"), macK, vtep3},
	} {
		if learn(tc.addr, tc.mac, tc.vtep, now) {
			t.Errorf("%s: learnt", name)
		}
	}
	if !learn(ipK, macK, vtep3, now) {
		t.Fatal("a kernel peer's address not learnt")
	}
	if learn(ipK, macK, vtep3, now+1) {
		t.Error("learnt again with nothing changed")
	}
	if _, ok := sw.learnedNeighbor(nw, keyOf(ipK), now+int64(learnedTTL)+1); ok {
		t.Error("an expired entry was used")
	}
	// Its VTEP gone from the network: the entry is not used.
	tbl, _ := NewTable([]NetworkSpec{{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2}}}})
	if _, ok := sw.learnedNeighbor(tbl.vnis.get(testVNI), keyOf(ipK), now); ok {
		t.Error("an entry whose VTEP left the network was used")
	}
	// Full: the entry nearest expiry makes room.
	m := learnedMap{}
	for i := 0; i < maxLearned; i++ {
		m[learnKey{testVNI, addrKey{lo: uint64(i)}}] = learnedEntry{mac: macK, vtep: vtep3, expires: now + int64(time.Minute) + int64(i)}
	}
	sw.learned.Store(&m)
	ipN := netip.MustParseAddr("10.0.9.123")
	if !learn(ipN, macK, vtep3, now) {
		t.Fatal("nothing learnt into a full cache")
	}
	if got := *sw.learned.Load(); len(got) != maxLearned {
		t.Errorf("%d entries, want %d", len(got), maxLearned)
	} else if _, ok := got[learnKey{testVNI, addrKey{lo: 0}}]; ok {
		t.Error("the entry nearest expiry was kept")
	}
	// A kernel peer's request for a local endpoint teaches its sender.
	ipQ := netip.MustParseAddr("10.0.9.88")
	req := frame(testVNI, vxlan.Broadcast, macK, vxlan.EtherTypeARP, arpRequest(macK, ipQ, ip1))
	h.loadOutside(req, vtep3, 1)
	h.outside.process(1)
	sw.drainLearned(<-sw.learnCh, time.Now().UnixNano())
	if e, ok := sw.learnedNeighbor(nw, keyOf(ipQ), time.Now().UnixNano()); !ok || e.mac != macK || e.vtep != vtep3 {
		t.Errorf("the requester %v: %+v %v, want %v behind %v", ipQ, e, ok, macK, vtep3)
	}
}

// TestResolve_onlyInTheSendersName: a packet whose source is not its
// port's address makes the switch ask nobody (it would announce that
// address as the port's); link-local unicast is flooded as before; an
// l2tunnel network asks for nothing.
func TestResolve_onlyInTheSendersName(t *testing.T) {
	h := newHotRig(t)
	before := h.under.sent
	h.inside.arp = arpThrottle{}
	h.loadInside(ipv4UDP(netip.MustParseAddr("10.0.9.50"), netip.MustParseAddr("10.0.9.99"), 1, 2, make([]byte, 8)), 1)
	h.processInside(1)
	if h.under.sent != before {
		t.Errorf("%d datagrams sent for a spoofed source, want none", h.under.sent-before)
	}
	if d := h.sw.Stats().Drops["neighbor_miss"]; d != 1 {
		t.Errorf("neighbor_miss %d, want 1", d)
	}
	// Link-local: flooded to both VTEPs and the other port, as before.
	h.loadInside(ipv4UDP(ip1, netip.MustParseAddr("169.254.7.7"), 1, 2, make([]byte, 8)), 1)
	h.processInside(1)
	if h.under.sent != before+2 || h.devB.written != 1 {
		t.Errorf("link-local: %d datagrams, %d port writes; want 2 and 1", h.under.sent-before, h.devB.written)
	}
}

// TestHeld_slotsAndExpiry: packets to unresolved addresses take the
// slots until they are full (the next is dropped as neighbor_miss); none
// goes out before its address is known; once one is learnt its packet
// alone leaves, encapsulated to the learnt MAC and VTEP; the rest are
// dropped (neighbor_miss) once heldWait has passed, and their slots serve
// again.
func TestHeld_slotsAndExpiry(t *testing.T) {
	h := newHotRig(t)
	h.inside.arp = arpThrottle{}
	hs := newHeldSender(h.sw, h.under)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 9, byte(100 + i)}) }
	for i := 0; i <= heldSlots; i++ {
		h.loadInside(ipv4UDP(ip1, addr(i), 1, 2, []byte{byte(i)}), 1)
		h.processInside(1)
	}
	if d := h.sw.Stats().Drops["neighbor_miss"]; d != 1 {
		t.Errorf("neighbor_miss %d with %d packets for %d slots, want 1", d, heldSlots+1, heldSlots)
	}
	now := time.Now().UnixNano()
	sent := h.under.sent
	if !hs.release(now) || h.under.sent != sent {
		t.Fatalf("released with nothing learnt: %d sent, want none and packets waiting", h.under.sent-sent)
	}
	h.sw.applyLearned([]learnOffer{{vni: testVNI, addr: addr(3), mac: macK, vtep: vtep3}}, now)
	h.under.bytes = 0
	if !hs.release(now) || h.under.sent != sent+1 {
		t.Fatalf("%d sent once one address was learnt, want 1 (and the rest waiting)", h.under.sent-sent)
	}
	if want := vxlan.EncapLen + 28 + 1; h.under.bytes != want {
		t.Errorf("the held packet left as %d bytes, want %d", h.under.bytes, want)
	}
	if hs.release(now+int64(heldWait)+1) || h.under.sent != sent+1 {
		t.Error("packets past their time still wait or were sent")
	}
	if d := h.sw.Stats().Drops["neighbor_miss"]; d != uint64(heldSlots) {
		t.Errorf("neighbor_miss %d after expiry, want %d", d, heldSlots)
	}
	for i := range h.sw.held.slots {
		if st := h.sw.held.slots[i].state.Load(); st != heldFree {
			t.Fatalf("slot %d in state %d after expiry, want free", i, st)
		}
	}
}
