package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// keepUnderlay keeps a copy of every datagram written, and its hash.
type keepUnderlay struct {
	nopUnderlay
	sent   [][]byte
	hashes []uint32
}

func (u *keepUnderlay) WriteBatch(bufs [][]byte, to []netip.AddrPort, h []uint32) (int, error) {
	for _, b := range bufs {
		u.sent = append(u.sent, append([]byte(nil), b...))
	}
	u.hashes = append(u.hashes, h[:len(bufs)]...)
	return len(bufs), nil
}

// peerRig is a hot rig whose inside loop writes to a keepUnderlay, on a
// network of its port and ipPeer behind another vxnet switch (vtep3),
// clamping MSS to clampMSS (0: not at all).
func peerRig(t *testing.T, clampMSS int) (h *hotRig, under *keepUnderlay, ipPeer netip.Addr) {
	h = newHotRig(t)
	under = &keepUnderlay{}
	h.inside.b.udp = newUnderlayTx(under, 0)
	ipPeer = netip.MustParseAddr("10.0.9.30")
	tbl, err := NewTable([]NetworkSpec{{
		VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")}, ClampMSS: clampMSS,
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port},
			{MAC: mac3, Addrs: []netip.Addr{ipPeer}, VTEP: vtep3, Peer: true},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	return h, under, ipPeer
}

// partialTCP is tcpPacket from src to dst with its checksum left at the
// pseudo-header sum, as splitVirtio leaves a lazy segment.
func partialTCP(src, dst netip.Addr) []byte {
	p := tcpPacket(make([]byte, 200))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], 0)
	binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	info, _ := parseIP(p)
	binary.BigEndian.PutUint16(p[36:], fold(pseudoHeaderSum(p, &info, len(p)-20)))
	return p
}

// TestLazyChecksum_finishedUnlessForAPeer: a TCP segment whose checksum is
// left partial leaves that way only for another host's endpoint behind a
// vxnet VTEP; to a kernel VTEP, or to a local port, it leaves with its
// checksum finished.
func TestLazyChecksum_finishedUnlessForAPeer(t *testing.T) {
	h := newHotRig(t)
	under := &keepUnderlay{}
	h.sw.underlay = under
	h.inside.b.udp = newUnderlayTx(under, 0)
	ipPeer := netip.MustParseAddr("10.0.9.30")
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: h.portB},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},                // a kernel VTEP
			{MAC: mac3, Addrs: []netip.Addr{ipPeer}, VTEP: vtep3, Peer: true}, // vxnet
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	partial := []bool{true}
	send := func(dst netip.Addr) {
		h.loadInside(partialTCP(ip1, dst), 1)
		h.inside.process(h.inside.readBufs, h.inside.readSizes, partial, nil, 1)
	}
	send(ipPeer)
	send(ip2)
	if len(under.sent) != 2 {
		t.Fatalf("%d datagrams, want 2", len(under.sent))
	}
	if inner := under.sent[0][22:]; l4Valid(inner) {
		t.Error("to a vxnet peer: the checksum was finished (work the peer never needs)")
	}
	if inner := under.sent[1][22:]; !l4Valid(inner) {
		t.Error("to a kernel VTEP: the checksum was left partial")
	}
	// To a local port: finished (the buffer the port writes is checked).
	h.loadInside(partialTCP(ip1, ip1b), 1)
	h.inside.process(h.inside.readBufs, h.inside.readSizes, partial, nil, 1)
	if !l4Valid(h.inside.readBufs[0][Headroom : Headroom+h.inside.readSizes[0]]) {
		t.Error("to a local port: the checksum was left partial")
	}
}

// TestLazyChecksum_clampedSYN: a SYN whose checksum is partial, on a
// network that clamps MSS, has its checksum finished before the clamp
// mends it, so it leaves valid, even to a vxnet peer.
func TestLazyChecksum_clampedSYN(t *testing.T) {
	h, under, ipPeer := peerRig(t, 1300)
	syn := tcpSYN(ip1, ipPeer, 1460)
	info, _ := parseIP(syn)
	binary.BigEndian.PutUint16(syn[info.l4+tcpChecksumOffset:], fold(pseudoHeaderSum(syn, &info, info.length-info.l4)))
	h.loadInside(syn, 1)
	h.inside.process(h.inside.readBufs, h.inside.readSizes, []bool{true}, nil, 1)
	if len(under.sent) != 1 {
		t.Fatalf("%d datagrams, want 1", len(under.sent))
	}
	if inner := under.sent[0][22:]; mssOf(inner) != 1300 || !tcpChecksumOK(inner) {
		t.Errorf("MSS %d, checksum valid %v; want 1300 and valid", mssOf(inner), tcpChecksumOK(inner))
	}
}
