package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// tcpSYN builds a TCP SYN (IPv4 or IPv6) with options NOP, NOP, MSS mss,
// NOP, window scale 7, and a valid checksum.
func tcpSYN(src, dst netip.Addr, mss uint16) []byte {
	return tcpSYNOpts(src, dst, []byte{1, 1, 2, 4, byte(mss >> 8), byte(mss), 1, 3, 3, 7})
}

// tcpSYNOdd is tcpSYN with the MSS value at an odd offset: NOP, MSS, NOP,
// NOP, window scale.
func tcpSYNOdd(src, dst netip.Addr, mss uint16) []byte {
	return tcpSYNOpts(src, dst, []byte{1, 2, 4, byte(mss >> 8), byte(mss), 1, 1, 3, 3, 7})
}

func tcpSYNOpts(src, dst netip.Addr, opts []byte) []byte {
	tcpLen := tcpHeaderLen + 12 // options padded to 12
	ipLen := ipv4HeaderLen
	if dst.Is6() {
		ipLen = ipv6HeaderLen
	}
	p := make([]byte, ipLen+tcpLen)
	if dst.Is6() {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(tcpLen))
		p[6], p[7] = protoTCP, 64
		s, d := src.As16(), dst.As16()
		copy(p[8:], s[:])
		copy(p[24:], d[:])
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, protoTCP
		s, d := src.As4(), dst.As4()
		copy(p[12:], s[:])
		copy(p[16:], d[:])
		binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	}
	t := p[ipLen:]
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 80)
	t[12] = byte(tcpLen/4) << 4
	t[13] = tcpFlagSYN
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[20:], opts)
	setTCPChecksum(p, ipLen)
	return p
}

func setTCPChecksum(p []byte, ipLen int) {
	info, _ := parseIP(p)
	t := p[ipLen:]
	binary.BigEndian.PutUint16(t[16:], 0)
	binary.BigEndian.PutUint16(t[16:], ^fold(sum(pseudoHeaderSum(p, &info, len(t)), t)))
}

// tcpChecksumOK reports whether p's TCP checksum verifies.
func tcpChecksumOK(p []byte) bool {
	info, ok := parseIP(p)
	if !ok || info.l4 == 0 {
		return false
	}
	t := p[info.l4:info.length]
	return fold(sum(pseudoHeaderSum(p, &info, len(t)), t)) == 0xffff
}

func mssOf(p []byte) uint16 {
	info, _ := parseIP(p)
	o := p[info.l4+tcpHeaderLen:]
	if o[0] == 1 && o[1] == 2 { // tcpSYNOdd
		return binary.BigEndian.Uint16(o[3:])
	}
	return binary.BigEndian.Uint16(o[4:])
}

func TestClampMSS(t *testing.T) {
	for name, tc := range map[string]struct {
		pkt     []byte
		limit   int
		want    uint16
		changed bool
	}{
		"ipv4 lowered":      {tcpSYN(ip1, ip2, 1460), 1410, 1410, true},
		"ipv6 lowered":      {tcpSYN(ip6a, ip62, 1440), 1410, 1390, true},
		"odd offset":        {tcpSYNOdd(ip1, ip2, 1460), 1300, 1300, true},
		"odd offset ipv6":   {tcpSYNOdd(ip6a, ip62, 1460), 1300, 1280, true},
		"already below":     {tcpSYN(ip1, ip2, 1300), 1410, 1300, false},
		"ipv6 exactly fits": {tcpSYN(ip6a, ip62, 1390), 1410, 1390, false},
	} {
		t.Run(name, func(t *testing.T) {
			info, _ := parseIP(tc.pkt)
			if got := clampMSS(tc.pkt, &info, tc.limit); got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if m := mssOf(tc.pkt); m != tc.want {
				t.Errorf("MSS %d, want %d", m, tc.want)
			}
			if !tcpChecksumOK(tc.pkt) {
				t.Error("checksum no longer verifies")
			}
		})
	}
	// Not a SYN: left alone.
	p := tcpSYN(ip1, ip2, 1460)
	p[ipv4HeaderLen+tcpFlagsOffset] = 0x10
	setTCPChecksum(p, ipv4HeaderLen)
	info, _ := parseIP(p)
	if clampMSS(p, &info, 1000) || mssOf(p) != 1460 {
		t.Error("an ACK's bytes were changed")
	}
}

// FuzzClampMSS: any packet, any limit: no panic, and a packet whose TCP
// checksum verified still verifies.
func FuzzClampMSS(f *testing.F) {
	f.Add(tcpSYN(ip1, ip2, 1460), 1400)
	f.Add(tcpSYN(ip6a, ip62, 1460), 536)
	f.Add(tcpSYNOdd(ip1, ip2, 0xffff), 1300)
	bad := tcpSYN(ip1, ip2, 1460)
	bad[ipv4HeaderLen+tcpHeaderLen+3] = 0 // an option of length 0
	f.Add(bad, 1400)
	f.Fuzz(func(t *testing.T, pkt []byte, limit int) {
		info, ok := parseIP(pkt)
		if !ok {
			return
		}
		if info.proto == protoTCP && info.l4 != 0 && info.length >= info.l4+tcpHeaderLen {
			// Make the checksum valid, whatever the bytes: the property
			// is then checked on every input, not on the few valid ones.
			pkt = pkt[:info.length]
			setTCPChecksum(pkt, info.l4)
		}
		valid := tcpChecksumOK(pkt)
		clampMSS(pkt, &info, min(max(limit, 536), 65495))
		if valid && !tcpChecksumOK(pkt) {
			t.Error("a valid checksum broken")
		}
	})
}

// TestSwitch_clampMSS_bothWays: on a network with ClampMSS, a SYN a
// container sends leaves clamped, and one arriving from another host
// reaches the container clamped; checksums verify.
func TestSwitch_clampMSS_bothWays(t *testing.T) {
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:      testVNI,
		Subnets:  []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		ClampMSS: 1360,
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	r.a.Inject(tcpSYN(ip1, ip2, 1460))
	got, _ := recv(t, r.peer2)
	if inner := got[vxlan.EncapLen:]; mssOf(inner) != 1360 || !tcpChecksumOK(inner) {
		t.Errorf("sent: MSS %d, checksum ok %v; want 1360 and ok", mssOf(inner), tcpChecksumOK(inner))
	}
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, tcpSYN(ip2, ip1, 1460)))
	if p := out(t, r.a); mssOf(p) != 1360 || !tcpChecksumOK(p) {
		t.Errorf("delivered: MSS %d, checksum ok %v; want 1360 and ok", mssOf(p), tcpChecksumOK(p))
	}
	if _, err := NewTable([]NetworkSpec{{VNI: testVNI, ClampMSS: 100}}); err == nil {
		t.Error("ClampMSS 100 accepted")
	}
}

// TestNextOption: the option step IPv4's and TCP's walkers share.
func TestNextOption(t *testing.T) {
	for _, tc := range []struct {
		opts []byte
		i    int
		kind byte
		n    int
		ok   bool
	}{
		{[]byte{0, 9, 9}, 0, 0, 1, true},
		{[]byte{1, 2, 4, 5, 180}, 0, 1, 1, true},
		{[]byte{1, 2, 4, 5, 180}, 1, 2, 4, true},
		{[]byte{2, 4, 5}, 0, 2, 4, false},      // runs past the list
		{[]byte{8, 1, 0, 0}, 0, 8, 1, false},   // length below 2
		{[]byte{1, 130}, 1, 130, 0, false},     // no length byte
		{[]byte{0x83, 3, 4}, 0, 0x83, 3, true}, // IPv4 loose source route, copied
		{[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 2, 8, 10, true},
	} {
		kind, n, ok := nextOption(tc.opts, tc.i)
		if kind != tc.kind || ok != tc.ok || ok && n != tc.n {
			t.Errorf("nextOption(%v, %d) = %d, %d, %v; want %d, %d, %v", tc.opts, tc.i, kind, n, ok, tc.kind, tc.n, tc.ok)
		}
	}
}
