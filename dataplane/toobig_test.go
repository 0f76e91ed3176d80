package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// withDF sets the IPv4 packet's DF bit and mends its header checksum.
func withDF(p []byte) []byte {
	p[ipv4FlagsFragOffset] |= ipv4FlagDF
	binary.BigEndian.PutUint16(p[ipv4ChecksumOffset:], 0)
	binary.BigEndian.PutUint16(p[ipv4ChecksumOffset:], ^fold(sum(0, p[:ipv4HeaderLen])))
	return p
}

// checkTooBig checks an ICMP "too big" answer to orig: addressed from
// from to orig's source, carrying mtu, quoting orig's start, checksums
// valid, no longer than the family's limit.
func checkTooBig(t *testing.T, got, orig []byte, from netip.Addr, mtu int) {
	t.Helper()
	if orig[0]>>4 == 4 {
		if len(got) != icmpMaxV4 || got[0] != 0x45 || got[ipv4ProtocolOffset] != protoICMP {
			t.Fatalf("answer: %d bytes, version/IHL %#x, protocol %d; want 576, 0x45, ICMP", len(got), got[0], got[ipv4ProtocolOffset])
		}
		if fold(sum(0, got[:20])) != 0xffff || fold(sum(0, got[20:])) != 0xffff {
			t.Error("bad IP or ICMP checksum")
		}
		if s, d := netip.AddrFrom4([4]byte(got[12:16])), netip.AddrFrom4([4]byte(got[16:20])); s != from || !bytes.Equal(got[16:20], orig[12:16]) {
			t.Errorf("answer from %v to %v, want from %v to the sender", s, d, from)
		}
		icmp := got[20:]
		if icmp[0] != 3 || icmp[1] != 4 || int(binary.BigEndian.Uint16(icmp[6:])) != mtu {
			t.Errorf("ICMP type %d code %d MTU %d, want 3/4 and %d", icmp[0], icmp[1], binary.BigEndian.Uint16(icmp[6:]), mtu)
		}
		if !bytes.Equal(icmp[8:], orig[:len(icmp)-8]) {
			t.Error("the answer does not quote the packet's start")
		}
		return
	}
	if len(got) != icmpMaxV6 || got[0]>>4 != 6 || got[ipv6NextHeaderOffset] != protoICMPv6 {
		t.Fatalf("answer: %d bytes, version %d, next header %d; want 1280, 6, ICMPv6", len(got), got[0]>>4, got[ipv6NextHeaderOffset])
	}
	icmp := got[40:]
	if fold(sum(sum(0, got[8:40])+uint64(len(icmp))+protoICMPv6, icmp)) != 0xffff {
		t.Error("bad ICMPv6 checksum")
	}
	if s := netip.AddrFrom16([16]byte(got[8:24])); s != from || !bytes.Equal(got[24:40], orig[8:24]) {
		t.Errorf("answer from %v, want from %v to the sender", s, from)
	}
	if icmp[0] != 2 || icmp[1] != 0 || int(binary.BigEndian.Uint32(icmp[4:])) != mtu {
		t.Errorf("ICMPv6 type %d code %d MTU %d, want 2/0 and %d", icmp[0], icmp[1], binary.BigEndian.Uint32(icmp[4:]), mtu)
	}
	if !bytes.Equal(icmp[8:], orig[:len(icmp)-8]) {
		t.Error("the answer does not quote the packet's start")
	}
}

// TestSwitch_tooBig_answeredWithICMP: packets above the MTU are dropped,
// counted, and answered with ICMP "too big" carrying the MTU (IPv4 with
// DF, IPv6), from the destination when the network has no gateway; an
// IPv4 packet without DF gets no answer: it is sent in fragments.
func TestSwitch_tooBig_answeredWithICMP(t *testing.T) {
	r := newRig(t)
	mtu := r.sw.cfg.MTU
	v4 := withDF(ipv4UDP(ip1, ip2, 1000, 2000, make([]byte, 1472)))
	r.a.Inject(v4)
	checkTooBig(t, out(t, r.a), v4, ip2, mtu)
	v6 := ipv6UDP(ip6a, ip62, make([]byte, 1452))
	r.a.Inject(v6)
	checkTooBig(t, out(t, r.a), v6, ip62, mtu)
	r.a.Inject(ipv4UDP(ip1, ip2, 1000, 2000, make([]byte, 1472))) // no DF
	recv(t, r.peer2)
	recv(t, r.peer2)
	// The counters are flushed one by one: wait for every one, then
	// check none went past.
	s := waitStats(t, r.sw, "two datagrams sent, two ICMP answers and two drops counted", func(s Stats) bool {
		return s.UnderlayTxPackets >= 2 && s.ICMPTooBig >= 2 && s.Drops["too_big"] >= 2
	})
	if s.UnderlayTxPackets != 2 || s.ICMPTooBig != 2 || s.Drops["too_big"] != 2 {
		t.Errorf("%d datagrams, %d ICMP answers, %d too_big drops; want 2, 2 and 2", s.UnderlayTxPackets, s.ICMPTooBig, s.Drops["too_big"])
	}
	select {
	case p := <-r.a.Outbound():
		t.Errorf("a packet without DF was answered: % x", p[:28])
	default:
	}
}

// narrowPathRig is a rig whose network has port a's endpoint (ip1) and
// endpoints behind vtep2 (ip2) and vtep3 (ip3), the underlay path to
// vtep2 carrying 1300 bytes inside; gw, if valid, is its gateway address
// (port b's).
func narrowPathRig(t *testing.T, gw netip.Addr) *rig {
	t.Helper()
	r := newRig(t)
	spec := NetworkSpec{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3},
		},
	}
	if gw.IsValid() {
		spec.Gateway, spec.GatewayAddrs = r.portB, []netip.Addr{gw}
	}
	tbl, err := NewTable([]NetworkSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	r.sw.pmtu.Store((&pathMTUs{vteps: []netip.Addr{vtep2}, inner: []int{1300}}).seal())
	return r
}

// TestSwitch_tooBig_narrowPath: a VTEP whose underlay path is narrower
// than the MTU needs gets packets up to that path's inner MTU; larger ones
// are answered with it, from the network's gateway address; other VTEPs
// are unaffected.
func TestSwitch_tooBig_narrowPath(t *testing.T) {
	gw := netip.MustParseAddr("10.0.9.1")
	r := narrowPathRig(t, gw)
	big := withDF(ipv4UDP(ip1, ip2, 1000, 2000, make([]byte, 1372))) // 1400 bytes
	r.a.Inject(big)
	checkTooBig(t, out(t, r.a), big, gw, 1300)
	fits := withDF(ipv4UDP(ip1, ip2, 1000, 2000, make([]byte, 1272))) // 1300 bytes
	r.a.Inject(fits)
	if got, _ := recv(t, r.peer2); len(got) != 8+14+1300 {
		t.Errorf("vtep2 got %d bytes, want the 1300-byte packet encapsulated", len(got))
	}
	r.a.Inject(withDF(ipv4UDP(ip1, ip3, 1000, 2000, make([]byte, 1372))))
	if got, _ := recv(t, r.peer3); len(got) != 8+14+1400 {
		t.Errorf("vtep3 got %d bytes, want the 1400-byte packet encapsulated", len(got))
	}
}

// TestSwitch_tooBig_flood: a flooded packet larger than the path to one
// VTEP goes there in fragments (IPv4 without DF) or not at all (DF),
// counted, unanswered (no ICMP answers a multicast packet); the VTEP whose
// path is wide enough gets it whole either way, and the next small
// datagram is not lost with it.
func TestSwitch_tooBig_flood(t *testing.T) {
	r := narrowPathRig(t, netip.Addr{})
	group := netip.MustParseAddr("239.1.2.3")
	r.a.Inject(ipv4UDP(ip1, group, 1000, 2000, make([]byte, 1372))) // 1400 bytes, no DF
	var frags int
	for frags < 2 {
		got, _ := recv(t, r.peer2)
		if len(got) > 8+14+1300 {
			t.Fatalf("vtep2 got %d bytes over its 1300-byte path", len(got))
		}
		frags++
	}
	if got, _ := recv(t, r.peer3); len(got) != 8+14+1400 {
		t.Errorf("vtep3 got %d bytes, want the 1400-byte packet whole", len(got))
	}
	r.a.Inject(withDF(ipv4UDP(ip1, group, 1000, 2000, make([]byte, 1372))))
	r.a.Inject(ipv4UDP(ip1, group, 1000, 2000, make([]byte, 100)))
	if got, _ := recv(t, r.peer2); len(got) != 8+14+128 {
		t.Errorf("vtep2 got %d bytes, want the small datagram after the DF one it cannot take", len(got))
	}
	if got, _ := recv(t, r.peer3); len(got) != 8+14+1400 {
		t.Errorf("vtep3 got %d bytes, want the DF packet whole", len(got))
	}
	waitStats(t, r.sw, "the DF packet counted too big", func(s Stats) bool { return s.Drops["too_big"] >= 1 })
	select {
	case p := <-r.a.Outbound():
		t.Errorf("a flooded packet was answered: % x", p[:28])
	default:
	}
}

// TestICMPLimit_burstThenRate: a burst of icmpBurst answers, then none
// until time passes.
func TestICMPLimit_burstThenRate(t *testing.T) {
	var r icmpLimit
	n := 0
	for i := 0; i < 3*icmpBurst; i++ {
		if r.allow() {
			n++
		}
	}
	if n != icmpBurst {
		t.Errorf("%d allowed at once, want %d", n, icmpBurst)
	}
	r.last -= 5 * icmpEvery
	if !r.allow() {
		t.Error("nothing allowed after time passed")
	}
}

// TestPathMTUs_innerMTU: listed VTEPs give their inner MTU, others 0.
func TestPathMTUs_innerMTU(t *testing.T) {
	p := (&pathMTUs{vteps: []netip.Addr{vtep2, vtep3}, inner: []int{1300, 1200}}).seal()
	if p.innerMTU(vtep3) != 1200 || p.innerMTU(vtep2) != 1300 || p.innerMTU(vtepX) != 0 {
		t.Errorf("innerMTU: %d %d %d", p.innerMTU(vtep2), p.innerMTU(vtep3), p.innerMTU(vtepX))
	}
}

// TestTooBig_whoGetsAnAnswer: no answer to a non-first fragment, to a
// broadcast or multicast destination (IPv4), from a source that is not
// unicast, or, on a network without a gateway, to an IPv6 multicast
// destination (there is no unicast address to answer from); packets from
// the gateway port (the host) are answered from their destination, not
// from the host's own gateway address.
func TestTooBig_whoGetsAnAnswer(t *testing.T) {
	gw := netip.MustParseAddr("10.0.9.1")
	withGW, err := NewTable([]NetworkSpec{{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Gateway: &Port{index: 5}, GatewayAddrs: []netip.Addr{gw}}})
	if err != nil {
		t.Fatal(err)
	}
	noGW, _ := NewTable([]NetworkSpec{{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")}}})
	answer := func(tbl *Table, pkt []byte, fromGateway bool) []byte {
		t.Helper()
		buf := make([]byte, Headroom+2048)
		n := copy(buf[Headroom:], pkt)
		info, ok := parseIP(buf[Headroom : Headroom+n])
		if !ok {
			t.Fatal("bad test packet")
		}
		r := icmpLimit{tokens: icmpBurst}
		m := r.tooBig(buf, n, &info, 1400, tbl.vnis.get(testVNI), fromGateway)
		return buf[Headroom : Headroom+m]
	}
	big := func(src, dst netip.Addr) []byte { return withDF(ipv4UDP(src, dst, 1, 2, make([]byte, 1472))) }
	frag := big(ip1, ip2)
	frag[ipv4FlagsFragOffset+1] = 1 // offset 8
	for name, p := range map[string][]byte{
		"non-first fragment": withDF(frag),
		"broadcast":          big(ip1, netip.MustParseAddr("10.0.9.255")),
		"multicast":          big(ip1, netip.MustParseAddr("239.1.2.3")),
		"from 0.0.0.0":       big(netip.IPv4Unspecified(), ip2),
	} {
		if got := answer(withGW, p, false); len(got) != 0 {
			t.Errorf("%s: answered", name)
		}
	}
	if got := answer(noGW, ipv6UDP(ip6a, netip.MustParseAddr("ff02::fb"), make([]byte, 1452)), false); len(got) != 0 {
		t.Error("IPv6 multicast without a gateway: answered from a multicast address")
	}
	p := big(gw, ip2)
	if got := answer(withGW, p, true); len(got) == 0 || netip.AddrFrom4([4]byte(got[12:16])) != ip2 {
		t.Errorf("from the gateway port: answer % x, want one from %v", got, ip2)
	}
	if got := answer(withGW, big(ip1, ip2), false); len(got) == 0 || netip.AddrFrom4([4]byte(got[12:16])) != gw {
		t.Errorf("from a container: answer % x, want one from the gateway %v", got, gw)
	}
}

// TestSwitch_fragment_noDF: an IPv4 packet without DF that does not fit
// the path to its VTEP leaves in fragments that do (RFC 791: each a copy
// of the header with its own length, offset, MF and checksum, the
// identification kept), which reassemble into the packet; a packet that
// is a fragment itself keeps its offset and MF; one with IP options is
// dropped (too_big), as is one with DF (and answered).
func TestSwitch_fragment_noDF(t *testing.T) {
	r := newRig(t)
	r.sw.pmtu.Store((&pathMTUs{vteps: []netip.Addr{vtep2}, inner: []int{600}}).seal())
	payload := make([]byte, 1372)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	pkt := ipv4UDP(ip1, ip2, 1000, 2000, payload) // 1400 bytes
	binary.BigEndian.PutUint16(pkt[4:], 0xbeef)   // identification
	binary.BigEndian.PutUint16(pkt[10:], 0)
	binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(0, pkt[:20])))
	reassemble := func(name string, wantFirstOff int, wantLastMF bool, n int) []byte {
		t.Helper()
		var whole []byte
		for i := 0; i < n; i++ {
			got, _ := recv(t, r.peer2)
			f := got[vxlan.EncapLen:]
			if len(f) > 600 || f[0] != 0x45 || int(binary.BigEndian.Uint16(f[2:])) != len(f) {
				t.Fatalf("%s: fragment %d: %d bytes, header % x", name, i, len(f), f[:20])
			}
			if fold(sum(0, f[:20])) != 0xffff {
				t.Errorf("%s: fragment %d: header checksum does not verify", name, i)
			}
			if id := binary.BigEndian.Uint16(f[4:]); id != 0xbeef {
				t.Errorf("%s: fragment %d: identification %#x", name, i, id)
			}
			field := binary.BigEndian.Uint16(f[6:])
			off, mf := int(field&0x1fff)*8, field&0x2000 != 0
			if off != wantFirstOff+len(whole) {
				t.Errorf("%s: fragment %d at offset %d, want %d", name, i, off, wantFirstOff+len(whole))
			}
			if last := i == n-1; mf != (!last || wantLastMF) || field&0x4000 != 0 {
				t.Errorf("%s: fragment %d of %d: flags %#x", name, i, n, field)
			}
			whole = append(whole, f[20:]...)
		}
		return whole
	}
	r.a.Inject(pkt)
	if got := reassemble("whole packet", 0, false, 3); !bytes.Equal(got, pkt[20:]) {
		t.Errorf("the fragments reassemble into %d bytes that differ from the packet's %d", len(got), len(pkt)-20)
	}
	// A fragment itself (offset 800, more to come): split further.
	frag := append([]byte(nil), pkt...)
	binary.BigEndian.PutUint16(frag[6:], 0x2000|100)
	binary.BigEndian.PutUint16(frag[10:], 0)
	binary.BigEndian.PutUint16(frag[10:], ^fold(sum(0, frag[:20])))
	r.a.Inject(frag)
	if got := reassemble("a fragment", 800, true, 3); !bytes.Equal(got, frag[20:]) {
		t.Error("the fragment's pieces differ from it")
	}
	// IP options: the first fragment keeps them all, the others only
	// those marked to be copied (router alert, not record route).
	options := []byte{0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0}
	hl := 20 + len(options)
	opts := make([]byte, hl+len(pkt)-20)
	copy(opts, pkt[:20])
	opts[0] = 0x40 | byte(hl/4)
	copy(opts[20:], options)
	copy(opts[hl:], pkt[20:])
	binary.BigEndian.PutUint16(opts[2:], uint16(len(opts)))
	binary.BigEndian.PutUint16(opts[10:], 0)
	binary.BigEndian.PutUint16(opts[10:], ^fold(sum(0, opts[:hl])))
	r.a.Inject(opts)
	var whole []byte
	for i := 0; len(whole) < len(opts)-hl; i++ {
		got, _ := recv(t, r.peer2)
		f := got[vxlan.EncapLen:]
		fhl := int(f[0]&0x0f) * 4
		wantHL, wantOpts := hl, options
		if i > 0 {
			wantHL, wantOpts = 24, options[:4]
		}
		if fhl != wantHL || !bytes.Equal(f[20:20+len(wantOpts)], wantOpts) || len(f) > 600 || int(binary.BigEndian.Uint16(f[2:])) != len(f) {
			t.Fatalf("options: fragment %d: header length %d, options % x, %d bytes; want %d, % x", i, fhl, f[20:fhl], len(f), wantHL, wantOpts)
		}
		if fold(sum(0, f[:fhl])) != 0xffff {
			t.Errorf("options: fragment %d: header checksum does not verify", i)
		}
		if off := int(binary.BigEndian.Uint16(f[6:])&0x1fff) * 8; off != len(whole) {
			t.Errorf("options: fragment %d at offset %d, want %d", i, off, len(whole))
		}
		whole = append(whole, f[fhl:]...)
	}
	if !bytes.Equal(whole, opts[hl:]) {
		t.Error("the fragments of the packet with options reassemble into other bytes")
	}
	// Options that do not parse: dropped.
	bad := append([]byte(nil), opts...)
	bad[21] = 40 // the first option's length runs past the header
	binary.BigEndian.PutUint16(bad[10:], 0)
	binary.BigEndian.PutUint16(bad[10:], ^fold(sum(0, bad[:hl])))
	r.a.Inject(bad)
	r.a.Inject(withDF(pkt))
	// The loops flush their counters in turn: wait for every one, then
	// check none went past.
	s := waitStats(t, r.sw, "two too_big drops and an ICMP answer", func(s Stats) bool {
		return s.Drops["too_big"] >= 2 && s.ICMPTooBig >= 1 && s.UnderlayTxPackets >= 9
	})
	if s.UnderlayTxPackets != 9 || s.ICMPTooBig != 1 || s.Drops["too_big"] != 2 {
		t.Errorf("%d datagrams, %d ICMP answers, %d too_big drops; want the 9 fragments, 1 answer (to DF) and 2 drops", s.UnderlayTxPackets, s.ICMPTooBig, s.Drops["too_big"])
	}
}

// sizeUnderlay records the largest datagram sent to each address.
type sizeUnderlay struct {
	nopUnderlay
	largest map[netip.AddrPort]int
}

func (u *sizeUnderlay) WriteBatch(bufs [][]byte, to []netip.AddrPort, h []uint32) (int, error) {
	for i, b := range bufs {
		u.largest[to[i]] = max(u.largest[to[i]], len(b))
	}
	return u.nopUnderlay.WriteBatch(bufs, to, h)
}
func (u *sizeUnderlay) NewWriter() udp.BatchWriter { return u }

// FuzzInsideNarrowPath feeds arbitrary packets from a port through a
// switch whose path to one VTEP is narrow: nothing panics, and no
// datagram to that VTEP is larger than its path carries.
func FuzzInsideNarrowPath(f *testing.F) {
	// Small seeds keep the fuzzer quick: paths from 576 bytes up.
	f.Add(ipv4UDP(ip1, ip2, 1, 2, make([]byte, 700)), uint16(24))
	f.Add(withDF(ipv4UDP(ip1, ip2, 1, 2, make([]byte, 700))), uint16(0))
	f.Add(ipv6UDP(ip6a, ip62, make([]byte, 700)), uint16(8))
	f.Add(ipv4UDP(ip1, netip.MustParseAddr("10.0.9.77"), 1, 2, make([]byte, 600)), uint16(0))
	h := newHotRig(f) // one switch for every input: its state carries over, as a real one's would
	u := &sizeUnderlay{largest: map[netip.AddrPort]int{}}
	h.inside.b.udp.w = u
	f.Fuzz(func(t *testing.T, pkt []byte, inner uint16) {
		if len(pkt) > 9000 {
			return
		}
		clear(u.largest)
		m := 576 + int(inner)%(h.sw.cfg.MTU-576+1)
		h.sw.pmtu.Store((&pathMTUs{vteps: []netip.Addr{vtep2}, inner: []int{m}}).seal())
		h.loadInside(pkt, 1)
		h.processInside(1)
		if got := u.largest[h.sw.vtepAddr(vtep2)]; got > m+vxlan.EncapLen {
			t.Errorf("a %d-byte datagram to a VTEP whose path carries %d-byte packets", got, m)
		}
	})
}

// FuzzCopiedOptions: any option bytes a container sends parse without a
// panic, and what later fragments carry is never more than there was.
func FuzzCopiedOptions(f *testing.F) {
	f.Add([]byte{0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0x82, 2})
	f.Add([]byte{0x83, 40})
	f.Fuzz(func(t *testing.T, opts []byte) {
		if len(opts) > ipv4MaxOptions {
			opts = opts[:ipv4MaxOptions]
		}
		var scratch [ipv4MaxOptions]byte
		out, _ := copiedOptions(opts, scratch[:0])
		if len(out) > len(opts) {
			t.Fatalf("%d option bytes copied from %d", len(out), len(opts))
		}
	})
}
