package dataplane

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

func TestNewTable_rejectsBadSpecs(t *testing.T) {
	p := &Port{name: "p0", index: 0}
	a := []netip.Addr{ip1}
	for name, tc := range map[string]struct {
		specs []NetworkSpec
		want  string
	}{
		"vni zero":       {[]NetworkSpec{{VNI: 0}}, "vni 0"},
		"vni too big":    {[]NetworkSpec{{VNI: 1 << 24}}, "16777216"},
		"vni twice":      {[]NetworkSpec{{VNI: 5}, {VNI: 5}}, "VNI 5: listed twice"},
		"zero MAC":       {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{Addrs: a, VTEP: vtep2}}}}, "not a unicast"},
		"multicast MAC":  {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: vxlan.Broadcast, Addrs: a, VTEP: vtep2}}}}, "not a unicast"},
		"port and VTEP":  {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: a, Port: p, VTEP: vtep2}}}}, "exactly one"},
		"neither":        {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: a}}}}, "exactly one"},
		"no addresses":   {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, VTEP: vtep2}}}}, "Addrs: none"},
		"duplicate addr": {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: a, VTEP: vtep2}, {MAC: mac2, Addrs: a, VTEP: vtep3}}}}, "10.0.9.2 already belongs"},
		"port twice":     {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: a, Port: p}}}, {VNI: 6, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: a, Port: p}}}}, "p0: already attached to network 5"},
		"multicast VTEP": {[]NetworkSpec{{VNI: 5, FloodVTEPs: []netip.Addr{netip.MustParseAddr("239.1.1.1")}}}, "239.1.1.1"},
		"multicast addr": {[]NetworkSpec{{VNI: 5, Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{netip.MustParseAddr("224.0.0.1")}, VTEP: vtep2}}}}, "224.0.0.1"},
		"invalid subnet": {[]NetworkSpec{{VNI: 5, Subnets: []netip.Prefix{{}}}}, "invalid prefix"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewTable(tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAddrTable_matchesMap is a differential test of the FDB's hash table
// against a Go map on random addresses of both families.
func TestAddrTable_matchesMap(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 100, 5000} {
		ref := make(map[netip.Addr]int)
		seed := uint64(n) * 0x9e3779b97f4a7c15
		next := func() uint64 { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed }
		randAddr := func() netip.Addr {
			v := next()
			if v&1 == 0 {
				return netip.AddrFrom4([4]byte{10, byte(v >> 8), byte(v >> 16), byte(v >> 24)})
			}
			var b [16]byte
			b[0], b[1] = 0xfd, 0
			for i := 2; i < 16; i++ {
				b[i] = byte(next() % 4) // few distinct values: many collisions
			}
			return netip.AddrFrom16(b)
		}
		for len(ref) < n {
			ref[randAddr()] = len(ref) + 1
		}
		tbl := newAddrTable[int](len(ref))
		for a, v := range ref {
			tbl.put(keyOf(a), v)
		}
		for a, v := range ref {
			if got := tbl.get(keyOf(a)); got != v {
				t.Fatalf("n=%d: get(%v) = %d, want %d", n, a, got, v)
			}
		}
		for i := 0; i < 2000; i++ {
			a := randAddr()
			if got, want := tbl.get(keyOf(a)), ref[a]; got != want {
				t.Fatalf("n=%d: get(%v) = %d, want %d", n, a, got, want)
			}
		}
	}
}

func TestKeys_fromPacketMatchAddr(t *testing.T) {
	v4 := netip.MustParseAddr("10.1.2.3")
	b4 := v4.As4()
	v6 := netip.MustParseAddr("fd00::1:2")
	b6 := v6.As16()
	if keyV4(b4[:]) != keyOf(v4) || keyV6(b6[:]) != keyOf(v6) || keyOf(netip.MustParseAddr("::ffff:10.1.2.3")) != keyOf(v4) {
		t.Error("packet keys and address keys disagree")
	}
}
