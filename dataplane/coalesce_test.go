package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// superCapture stands in for a TUN device's super-packet writes.
type superCapture struct{ writes [][]byte }

func (c *superCapture) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

// tcpDatagram builds a VXLAN datagram from vtep2's mac2 to mac1 carrying
// a TCP segment (IPv4 ip2→ip1 or IPv6 ip62→ip6a) with a valid checksum.
func tcpDatagram(v6 bool, seq uint32, flags byte, payload []byte) []byte {
	ipLen := ipv4HeaderLen
	etherType := uint16(vxlan.EtherTypeIPv4)
	if v6 {
		ipLen, etherType = ipv6HeaderLen, vxlan.EtherTypeIPv6
	}
	const tl = tcpHeaderLen + 12
	d := make([]byte, vxlan.EncapLen+ipLen+tl+len(payload))
	vxlan.Encap(d, testVNI, mac1, mac2, etherType)
	p := d[vxlan.EncapLen:]
	if v6 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], uint16(len(p)-ipv6HeaderLen))
		p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = protoTCP, 64
		copy(p[ipv6SrcOffset:], ip62.AsSlice())
		copy(p[ipv6DstOffset:], ip6a.AsSlice())
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[ipv4TotalLenOffset:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[4:], uint16(seq)) // IDs differ per segment
		p[6], p[8], p[ipv4ProtocolOffset] = 0x40, 64, protoTCP
		copy(p[ipv4SrcOffset:], ip2.AsSlice())
		copy(p[ipv4DstOffset:], ip1.AsSlice())
		binary.BigEndian.PutUint16(p[ipv4ChecksumOffset:], ^fold(sum(0, p[:ipLen])))
	}
	t := p[ipLen:]
	binary.BigEndian.PutUint16(t[0:], 5201)
	binary.BigEndian.PutUint16(t[2:], 40000)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 99)
	t[12] = tl / 4 << 4
	t[tcpFlagsOffset] = flags
	binary.BigEndian.PutUint16(t[14:], 512)
	t[20], t[21], t[22], t[23] = 1, 1, 8, 10 // NOP NOP timestamp
	copy(t[tl:], payload)
	info, _ := parseIP(p)
	binary.BigEndian.PutUint16(t[tcpChecksumOffset:], ^fold(sum(pseudoHeaderSum(p, &info, len(t)), t)))
	return d
}

// train lays datagrams out seg bytes apart, as UDP GRO hands them over.
func train(seg int, ds ...[]byte) []byte {
	var out []byte
	for i, d := range ds {
		if len(d) > seg || i < len(ds)-1 && len(d) != seg {
			panic("train: datagrams must be seg bytes, the last at most")
		}
		out = append(out, d...)
	}
	return out
}

func coalesceRig(t *testing.T) (*rig, *outsideLoop, *superCapture) {
	r := newRig(t)
	c := &superCapture{}
	r.portA.newSuperOut = func() superWriter { return c }
	r.portA.uso = true
	return r, r.sw.newOutsideLoop(r.sw.underlay), c
}

func TestCoalesce_mergesOneFlow(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		_, l, c := coalesceRig(t)
		pay := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
		ds := [][]byte{
			tcpDatagram(v6, 1000, 0x10, pay(0, 1000)),
			tcpDatagram(v6, 2000, 0x10, pay(1, 1000)),
			tcpDatagram(v6, 3000, 0x10, pay(2, 1000)),
			tcpDatagram(v6, 4000, 0x18, pay(3, 400)), // ACK PSH, short: the end
		}
		seg := len(ds[0])
		if n := l.coalesce(l.sw.table.Load(), train(seg, ds...), 0, seg, netip.AddrPortFrom(vtep2, 4789)); n != 4 {
			t.Fatalf("v6=%v: coalesced %d datagrams, want 4", v6, n)
		}
		wantType := uint8(virtioGSOTCPv4)
		if v6 {
			wantType = virtioGSOTCPv6
		}
		want := append(append(append(pay(0, 1000), pay(1, 1000)...), pay(2, 1000)...), pay(3, 400)...)
		tp := checkMerged(t, v6, l, c, wantType, 1000, 32, tcpChecksumOffset, want)
		if tp == nil {
			continue
		}
		if seq := binary.BigEndian.Uint32(tp[4:]); seq != 1000 {
			t.Errorf("v6=%v: seq %d, want the first segment's 1000", v6, seq)
		}
		if tp[tcpFlagsOffset] != 0x18 {
			t.Errorf("v6=%v: flags %#x, want ACK PSH (PSH of the last)", v6, tp[tcpFlagsOffset])
		}
	}
}

// checkMerged checks the one write a run of four made: its virtio-net
// header (gso type and size, transport header length l4Len and checksum
// offset), the IP header, the checksum field holding the partial
// pseudo-header sum, the payloads in order and the tally. It returns the
// transport header and payload, or nil after a fatal finding.
func checkMerged(t *testing.T, v6 bool, l *outsideLoop, c *superCapture, gsoType uint8, gsoSize, l4Len, csumOff int, payload []byte) []byte {
	t.Helper()
	if len(c.writes) != 1 {
		t.Errorf("v6=%v: %d writes, want 1", v6, len(c.writes))
		return nil
	}
	w := c.writes[0]
	h := decodeVirtioHdr(w)
	pkt := w[virtioHdrLen:]
	info, ok := parseIP(pkt)
	if !ok || info.length != len(pkt) {
		t.Errorf("v6=%v: merged packet's IP header invalid or length %d != %d", v6, info.length, len(pkt))
		return nil
	}
	if h.flags != virtioFlagNeedsCsum || h.gsoType != gsoType || int(h.gsoSize) != gsoSize ||
		int(h.csumStart) != info.l4 || int(h.csumOffset) != csumOff || int(h.hdrLen) != info.l4+l4Len {
		t.Errorf("v6=%v: virtio header %+v", v6, h)
	}
	if !v6 && fold(sum(0, pkt[:ipv4HeaderLen])) != 0xffff {
		t.Errorf("IPv4 header checksum invalid")
	}
	l4 := pkt[info.l4:]
	if got, want := binary.BigEndian.Uint16(l4[csumOff:]), fold(pseudoHeaderSum(pkt, &info, len(l4))); got != want {
		t.Errorf("v6=%v: checksum field %#x, want the partial pseudo-header sum %#x", v6, got, want)
	}
	if !bytes.Equal(l4[l4Len:], payload) {
		t.Errorf("v6=%v: payload is not the packets' payloads in order", v6)
	}
	if l.tally.coalesced != 4 || l.tally.portTx != 4 {
		t.Errorf("v6=%v: tally coalesced %d portTx %d, want 4 and 4", v6, l.tally.coalesced, l.tally.portTx)
	}
	return l4
}

func TestCoalesce_stopsWhereTheRunBreaks(t *testing.T) {
	p := bytes.Repeat([]byte{7}, 1000)
	from := netip.AddrPortFrom(vtep2, 4789)
	corrupt := tcpDatagram(false, 2000, 0x10, p)
	corrupt[len(corrupt)-1] ^= 0xff
	otherPort := tcpDatagram(false, 2000, 0x10, p)
	binary.BigEndian.PutUint16(otherPort[vxlan.EncapLen+ipv4HeaderLen:], 5202)
	fixL4Checksum(otherPort)
	otherWindow := tcpDatagram(false, 2000, 0x10, p)
	binary.BigEndian.PutUint16(otherWindow[vxlan.EncapLen+ipv4HeaderLen+14:], 1024)
	fixL4Checksum(otherWindow)
	cases := []runCase{
		{"gap in sequence", [][]byte{tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 2001, 0x10, p)}, 0},
		{"PSH first", [][]byte{tcpDatagram(false, 1000, 0x18, p), tcpDatagram(false, 2000, 0x10, p)}, 0},
		{"FIN", [][]byte{tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 2000, 0x11, p)}, 0},
		{"SYN first", [][]byte{tcpDatagram(false, 1000, 0x12, p), tcpDatagram(false, 2000, 0x10, p)}, 0},
		{"corrupt second", [][]byte{tcpDatagram(false, 1000, 0x10, p), corrupt}, 0},
		{"corrupt first", [][]byte{corruptCopy(tcpDatagram(false, 1000, 0x10, p)), tcpDatagram(false, 2000, 0x10, p)}, 0},
		{"other flow", [][]byte{tcpDatagram(false, 1000, 0x10, p), otherPort}, 0},
		{"other window", [][]byte{tcpDatagram(false, 1000, 0x10, p), otherWindow}, 0},
		{"third breaks", [][]byte{tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 2000, 0x10, p), tcpDatagram(false, 5000, 0x10, p)}, 2},
		{"PSH in the middle ends it", [][]byte{tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 2000, 0x18, p), tcpDatagram(false, 3000, 0x10, p)}, 2},
	}
	runCases(t, from, cases)
}

// runCase is a train and how many of its datagrams a run takes.
type runCase struct {
	name  string
	ds    [][]byte
	taken int
}

// runCases coalesces each case's train from the start: it must take
// exactly taken datagrams, and taking none must leave the train as it was
// and write nothing.
func runCases(t *testing.T, from netip.AddrPort, cases []runCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, l, capt := coalesceRig(t)
			tr := train(len(c.ds[0]), c.ds...)
			before := append([]byte(nil), tr...)
			n := l.coalesce(l.sw.table.Load(), tr, 0, len(c.ds[0]), from)
			if n != c.taken {
				t.Fatalf("took %d datagrams, want %d", n, c.taken)
			}
			if n == 0 && (!bytes.Equal(tr, before) || len(capt.writes) != 0) {
				t.Error("nothing merged, yet the train changed or a write happened")
			}
		})
	}
}

func TestCoalesce_respectsTheLengthLimit(t *testing.T) {
	_, l, c := coalesceRig(t)
	p := bytes.Repeat([]byte{1}, 1400)
	var ds [][]byte
	for i := 0; i < 60; i++ { // 84 000 bytes of payload: more than one IP packet holds
		ds = append(ds, tcpDatagram(false, uint32(1000+i*1400), 0x10, p))
	}
	seg := len(ds[0])
	tr := train(seg, ds...)
	from := netip.AddrPortFrom(vtep2, 4789)
	n := l.coalesce(l.sw.table.Load(), tr, 0, seg, from)
	if n < 2 || n >= 60 {
		t.Fatalf("took %d of 60 datagrams, want a run that fits 64 KB", n)
	}
	if got := len(c.writes[0]) - virtioHdrLen; got > maxCoalesced {
		t.Fatalf("super-packet of %d bytes", got)
	}
	if m := l.coalesce(l.sw.table.Load(), tr, n*seg, seg, from); n+m != 60 {
		t.Fatalf("the rest took %d, want %d", m, 60-n)
	}
}

func TestCoalesce_leavesUnknownSendersAlone(t *testing.T) {
	_, l, c := coalesceRig(t)
	p := bytes.Repeat([]byte{7}, 1000)
	tr := train(len(tcpDatagram(false, 0, 0x10, p)), tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 2000, 0x10, p))
	if n := l.coalesce(l.sw.table.Load(), tr, 0, len(tr)/2, netip.AddrPortFrom(vtepX, 4789)); n != 0 || len(c.writes) != 0 {
		t.Fatalf("a VTEP outside the network got %d datagrams merged", n)
	}
}

func TestCoalesce_noAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	r, l, _ := coalesceRig(t)
	r.portA.newSuperOut = func() superWriter { return discard{} }
	p := bytes.Repeat([]byte{7}, 1400)
	var ds [][]byte
	for i := 0; i < 40; i++ {
		ds = append(ds, tcpDatagram(false, uint32(1000+i*1400), 0x10, p))
	}
	seg := len(ds[0])
	orig := train(seg, ds...)
	tr := make([]byte, len(orig))
	tbl := l.sw.table.Load()
	from := netip.AddrPortFrom(vtep2, 4789)
	allocs := testing.AllocsPerRun(50, func() {
		copy(tr, orig)
		if n := l.coalesce(tbl, tr, 0, seg, from); n != 40 {
			t.Fatalf("took %d", n)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// udpDatagram builds a VXLAN datagram from vtep2's mac2 to mac1 carrying a
// UDP datagram (IPv4 ip2→ip1 or IPv6 ip62→ip6a) with a valid checksum.
func udpDatagram(v6 bool, id uint16, payload []byte) []byte {
	ipLen := ipv4HeaderLen
	etherType := uint16(vxlan.EtherTypeIPv4)
	if v6 {
		ipLen, etherType = ipv6HeaderLen, vxlan.EtherTypeIPv6
	}
	d := make([]byte, vxlan.EncapLen+ipLen+udpHeaderLen+len(payload))
	vxlan.Encap(d, testVNI, mac1, mac2, etherType)
	p := d[vxlan.EncapLen:]
	if v6 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], uint16(len(p)-ipv6HeaderLen))
		p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = protoUDP, 64
		copy(p[ipv6SrcOffset:], ip62.AsSlice())
		copy(p[ipv6DstOffset:], ip6a.AsSlice())
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[ipv4TotalLenOffset:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[4:], id)
		p[6], p[8], p[ipv4ProtocolOffset] = 0x40, 64, protoUDP
		copy(p[ipv4SrcOffset:], ip2.AsSlice())
		copy(p[ipv4DstOffset:], ip1.AsSlice())
		binary.BigEndian.PutUint16(p[ipv4ChecksumOffset:], ^fold(sum(0, p[:ipLen])))
	}
	u := p[ipLen:]
	binary.BigEndian.PutUint16(u[0:], 5201)
	binary.BigEndian.PutUint16(u[2:], 40000)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[udpHeaderLen:], payload)
	fixL4Checksum(d)
	return d
}

// fixL4Checksum recomputes the TCP or UDP checksum of datagram d's packet.
func fixL4Checksum(d []byte) {
	p := d[vxlan.EncapLen:]
	info, _ := parseIP(p)
	at := tcpChecksumOffset
	if info.proto == protoUDP {
		at = udpChecksumOffset
	}
	l4 := p[info.l4:info.length]
	binary.BigEndian.PutUint16(l4[at:], 0)
	c := ^fold(sum(pseudoHeaderSum(p, &info, len(l4)), l4))
	if c == 0 && info.proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[at:], c)
}

// TestCoalesce_mergesUDPDatagrams: a train of one UDP flow's equal-sized
// datagrams (the last shorter) goes to the port as one USO super-packet:
// the virtio-net header asks the kernel to cut it at the datagrams' size
// and checksum each, and the payloads follow each other in order.
func TestCoalesce_mergesUDPDatagrams(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		_, l, c := coalesceRig(t)
		pay := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
		ds := [][]byte{udpDatagram(v6, 1, pay(0, 64)), udpDatagram(v6, 2, pay(1, 64)), udpDatagram(v6, 3, pay(2, 64)), udpDatagram(v6, 4, pay(3, 10))}
		seg := len(ds[0])
		if n := l.coalesce(l.sw.table.Load(), train(seg, ds...), 0, seg, netip.AddrPortFrom(vtep2, 4789)); n != 4 {
			t.Fatalf("v6=%v: coalesced %d datagrams, want 4", v6, n)
		}
		want := append(append(append(pay(0, 64), pay(1, 64)...), pay(2, 64)...), pay(3, 10)...)
		u := checkMerged(t, v6, l, c, virtioGSOUDPL4, 64, udpHeaderLen, udpChecksumOffset, want)
		if u != nil && int(binary.BigEndian.Uint16(u[4:])) != len(u) {
			t.Errorf("v6=%v: UDP length %d, want the super-packet's %d", v6, binary.BigEndian.Uint16(u[4:]), len(u))
		}
	}
}

// TestCoalesce_UDPRunBreaks: only datagrams the kernel would give back
// unchanged join a UDP run. A corrupt one must not: the kernel checksums
// every datagram it cuts from a super-packet afresh.
func TestCoalesce_UDPRunBreaks(t *testing.T) {
	p := bytes.Repeat([]byte{7}, 100)
	from := netip.AddrPortFrom(vtep2, 4789)
	corrupt := udpDatagram(false, 2, p)
	corrupt[len(corrupt)-1] ^= 0xff
	otherPort := udpDatagram(false, 2, p)
	binary.BigEndian.PutUint16(otherPort[vxlan.EncapLen+ipv4HeaderLen+2:], 40001)
	fixL4Checksum(otherPort)
	otherTTL := udpDatagram(false, 2, p)
	otherTTL[vxlan.EncapLen+8] = 63
	binary.BigEndian.PutUint16(otherTTL[vxlan.EncapLen+ipv4ChecksumOffset:], 0)
	binary.BigEndian.PutUint16(otherTTL[vxlan.EncapLen+ipv4ChecksumOffset:], ^fold(sum(0, otherTTL[vxlan.EncapLen:vxlan.EncapLen+ipv4HeaderLen])))
	badLen := udpDatagram(false, 2, p)
	binary.BigEndian.PutUint16(badLen[vxlan.EncapLen+ipv4HeaderLen+4:], 50)
	fixL4Checksum(badLen)
	noSum := udpDatagram(false, 2, p) // IPv4 without a UDP checksum joins
	binary.BigEndian.PutUint16(noSum[vxlan.EncapLen+ipv4HeaderLen+udpChecksumOffset:], 0)
	noSum6 := udpDatagram(true, 2, p) // IPv6 without one does not
	binary.BigEndian.PutUint16(noSum6[vxlan.EncapLen+ipv6HeaderLen+udpChecksumOffset:], 0)
	noDF := func(id uint16) []byte { // IDs matter without DF: no run
		d := udpDatagram(false, id, p)
		ip := d[vxlan.EncapLen : vxlan.EncapLen+ipv4HeaderLen]
		ip[ipv4FlagsFragOffset] = 0
		binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], 0)
		binary.BigEndian.PutUint16(ip[ipv4ChecksumOffset:], ^fold(sum(0, ip)))
		return d
	}
	cases := []runCase{
		{"corrupt second", [][]byte{udpDatagram(false, 1, p), corrupt}, 0},
		{"corrupt first", [][]byte{corruptCopy(udpDatagram(false, 1, p)), udpDatagram(false, 2, p)}, 0},
		{"other port", [][]byte{udpDatagram(false, 1, p), otherPort}, 0},
		{"other TTL", [][]byte{udpDatagram(false, 1, p), otherTTL}, 0},
		{"UDP length not the packet's", [][]byte{udpDatagram(false, 1, p), badLen}, 0},
		{"no checksum joins", [][]byte{udpDatagram(false, 1, p), noSum}, 2},
		{"no checksum over IPv6", [][]byte{udpDatagram(true, 1, p), noSum6}, 0},
		{"no DF", [][]byte{noDF(1), noDF(2)}, 0},
		{"third corrupt", [][]byte{udpDatagram(false, 1, p), udpDatagram(false, 2, p), corrupt}, 2},
	}
	runCases(t, from, cases)
	// A device without USO (Linux before 6.2) gets no UDP super-packet.
	{
		r, l, capt := coalesceRig(t)
		r.portA.uso = false
		tr := train(len(udpDatagram(false, 1, p)), udpDatagram(false, 1, p), udpDatagram(false, 2, p))
		if n := l.coalesce(l.sw.table.Load(), tr, 0, len(tr)/2, from); n != 0 || len(capt.writes) != 0 {
			t.Fatalf("a port without USO got %d datagrams merged", n)
		}
	}
	// A run stops at its limit: maxSmallUDPRun datagrams for small ones,
	// maxUDPRun for full-sized ones; the rest make runs of their own.
	for _, tc := range []struct {
		v6             bool
		payload, limit int
	}{
		{false, len(p), maxSmallUDPRun},
		{false, smallUDP - 28, maxUDPRun}, {false, smallUDP - 29, maxSmallUDPRun},
		{true, smallUDP - 48, maxUDPRun}, {true, smallUDP - 49, maxSmallUDPRun},
	} {
		_, l, capt := coalesceRig(t)
		var ds [][]byte
		for i := range tc.limit + 5 {
			ds = append(ds, udpDatagram(tc.v6, uint16(i), bytes.Repeat([]byte{7}, tc.payload)))
		}
		seg := len(ds[0])
		tr := train(seg, ds...)
		if n := l.coalesce(l.sw.table.Load(), tr, 0, seg, from); n != tc.limit {
			t.Fatalf("%d-byte payloads (IPv6 %v): took %d of %d datagrams, want %d", tc.payload, tc.v6, n, len(ds), tc.limit)
		}
		if n := l.coalesce(l.sw.table.Load(), tr, tc.limit*seg, seg, from); n != 5 || len(capt.writes) != 2 {
			t.Fatalf("%d-byte payloads: the rest took %d in %d writes, want 5 in the second", tc.payload, n, len(capt.writes))
		}
	}
}

// FuzzCoalesce feeds arbitrary trains (datagrams seg bytes apart) to the
// coalescer from a known VTEP: it must never panic; when it takes fewer
// than two datagrams it changes nothing and writes nothing; when it takes
// a run, it writes one super-packet whose IP length is its own, whose
// virtio-net header says TSO or USO with a segment size its payload fits,
// and whose datagram count matches what it took.
func FuzzCoalesce(f *testing.F) {
	p := bytes.Repeat([]byte{5}, 100)
	tcp := [][]byte{tcpDatagram(false, 1000, 0x10, p), tcpDatagram(false, 1100, 0x10, p), tcpDatagram(false, 1200, 0x18, p[:40])}
	udp := [][]byte{udpDatagram(true, 1, p), udpDatagram(true, 2, p), udpDatagram(true, 3, p[:7])}
	f.Add(uint16(len(tcp[0])), train(len(tcp[0]), tcp...))
	f.Add(uint16(len(udp[0])), train(len(udp[0]), udp...))
	f.Add(uint16(8), []byte{8, 0, 0, 0, 0, 0x10, 0x01, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, seg uint16, tr []byte) {
		if seg == 0 || int(seg) > len(tr) || len(tr) > 65535 {
			return
		}
		_, l, c := coalesceRig(t)
		before := append([]byte(nil), tr...)
		n := l.coalesce(l.sw.table.Load(), tr, 0, int(seg), netip.AddrPortFrom(vtep2, 4789))
		count := (len(tr) + int(seg) - 1) / int(seg)
		switch {
		case n < 0 || n == 1 || n > count:
			t.Fatalf("took %d of %d datagrams", n, count)
		case n == 0:
			if !bytes.Equal(tr, before) || len(c.writes) != 0 {
				t.Fatal("nothing taken, yet the train changed or a write happened")
			}
			return
		}
		if len(c.writes) != 1 {
			t.Fatalf("%d writes for one run", len(c.writes))
		}
		w := c.writes[0]
		h := decodeVirtioHdr(w)
		pkt := w[virtioHdrLen:]
		info, ok := parseIP(pkt)
		if !ok || info.length != len(pkt) || info.l4 == 0 {
			t.Fatalf("super-packet's IP header: ok %v, length %d of %d", ok, info.length, len(pkt))
		}
		payload := len(pkt) - int(h.hdrLen)
		segs := (payload + int(h.gsoSize) - 1) / max(1, int(h.gsoSize))
		if h.flags != virtioFlagNeedsCsum || h.gsoSize == 0 || segs != n || int(h.csumStart) != info.l4 {
			t.Fatalf("virtio header %+v for %d datagrams (payload %d)", h, n, payload)
		}
		if (h.gsoType == virtioGSOUDPL4) != (info.proto == protoUDP) {
			t.Fatalf("gso type %d for protocol %d", h.gsoType, info.proto)
		}
	})
}

// corruptCopy is d with its last byte flipped: its checksum no longer holds.
func corruptCopy(d []byte) []byte {
	d = append([]byte(nil), d...)
	d[len(d)-1] ^= 0xff
	return d
}
