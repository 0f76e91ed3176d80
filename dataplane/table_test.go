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
			tbl, err := NewTable(tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if tbl == nil {
				t.Error("no table: the rows that pass must still make one")
			}
		})
	}
}

// TestNewTable_badRowsLeftOut: a bad network or endpoint is left out and
// reported, and leaves no trace in the table; the others are all there.
func TestNewTable_badRowsLeftOut(t *testing.T) {
	pa, pb, pg := &Port{name: "a", index: 0}, &Port{name: "b", index: 1}, &Port{name: "g", index: 2}
	tbl, err := NewTable([]NetworkSpec{
		{VNI: 0, Gateway: pg, Endpoints: []EndpointSpec{{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: pb}}}, // bad VNI
		{VNI: 5, Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: pa},
			{MAC: mac2, Addrs: []netip.Addr{ip2, netip.MustParseAddr("224.0.0.1")}, VTEP: vtep2}, // bad address
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3},
			{MAC: mac1b, Addrs: []netip.Addr{ip1}, Port: pb}, // ip1 is taken
		}},
		{VNI: 5}, // listed twice
		{VNI: 6, Gateway: pg, Endpoints: []EndpointSpec{{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: pb}}},
	})
	if tbl == nil || err == nil {
		t.Fatalf("table %v, error %v: want a table and the rows left out", tbl, err)
	}
	for _, want := range []string{"vni 0 out of range", "endpoint " + mac2.String(), "224.0.0.1", "endpoint " + mac1b.String(), "VNI 5: listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 4 {
		t.Errorf("%d rows reported, want 4: %v", n, err)
	}
	n5, n6 := tbl.vnis.get(5), tbl.vnis.get(6)
	if n5 == nil || n6 == nil || tbl.vnis.get(0) != nil {
		t.Fatalf("networks 5 %v, 6 %v, 0 %v: want 5 and 6 only", n5, n6, tbl.vnis.get(0))
	}
	if h := n5.hosts.get(keyOf(ip1)); h == nil || h.port != pa {
		t.Errorf("ip1 on 5: %+v, want port a (the first to claim it)", h)
	}
	if h := n5.hosts.get(keyOf(ip2)); h != nil {
		t.Errorf("ip2 of the endpoint left out is on 5: %+v", h)
	}
	if h := n5.hosts.get(keyOf(ip3)); h == nil || h.vtep != vtep3 {
		t.Errorf("ip3 on 5: %+v, want vtep3", h)
	}
	if n5.vtepSet.get(keyOf(vtep2)) {
		t.Error("the VTEP of the endpoint left out is in network 5's flood list")
	}
	if pi := tbl.port(pb); pi == nil || pi.net != n6 {
		t.Errorf("port b: %+v, want network 6 (its endpoint on 5 was left out, and the bad network's never counted)", pi)
	}
	if pi := tbl.port(pg); pi == nil || pi.net != n6 || n6.gateway != pg {
		t.Errorf("gateway port: %+v, want network 6's gateway", pi)
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

func TestPrefixKey(t *testing.T) {
	for _, tt := range []struct {
		prefix, addr string
		in           bool
	}{
		{"10.0.9.0/24", "10.0.9.77", true},
		{"10.0.9.0/24", "10.0.10.1", false},
		{"10.0.9.0/24", "::ffff:10.0.9.5", true},
		{"0.0.0.0/0", "8.8.8.8", true},
		{"0.0.0.0/0", "fd00::1", false},
		{"fd00:9::/64", "fd00:9::abcd", true},
		{"fd00:9::/64", "fd00:a::1", false},
		{"fd00:9::/48", "fd00:9:0:ff::1", true},
		{"fd00:9::5/128", "fd00:9::5", true},
		{"fd00:9::5/128", "fd00:9::6", false},
		{"10.0.9.5/32", "10.0.9.5", true},
	} {
		p := prefixKeyOf(netip.MustParsePrefix(tt.prefix).Masked())
		if got := p.contains(keyOf(netip.MustParseAddr(tt.addr))); got != tt.in {
			t.Errorf("%s contains %s: %v, want %v", tt.prefix, tt.addr, got, tt.in)
		}
	}
}
