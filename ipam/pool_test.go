package ipam

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestNewPool_errorsNameNetworkFieldValue(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  PoolConfig
		want []string
		err  error
	}{
		"bad cidr":       {PoolConfig{Subnet: "10.0.9.0/33"}, []string{`network "web"`, "subnet", "10.0.9.0/33"}, ErrInvalid},
		"host bits":      {PoolConfig{Subnet: "10.0.9.1/24"}, []string{"did you mean 10.0.9.0/24"}, ErrInvalid},
		"too small":      {PoolConfig{Subnet: "10.0.9.0/31"}, []string{"too small"}, ErrInvalid},
		"range outside":  {PoolConfig{Subnet: "10.0.9.0/24", IPRange: "10.0.8.0/25"}, []string{"ip-range", "10.0.8.0/25"}, ErrOutOfRange},
		"range bigger":   {PoolConfig{Subnet: "10.0.9.0/24", IPRange: "10.0.0.0/16"}, []string{"ip-range", "larger than the subnet 10.0.9.0/24"}, ErrInvalid},
		"range family":   {PoolConfig{Subnet: "10.0.9.0/24", IPRange: "fd00::/64"}, []string{"ip-range"}, ErrOutOfRange},
		"gateway out":    {PoolConfig{Subnet: "10.0.9.0/24", Gateway: "10.0.8.1"}, []string{"gateway", "10.0.8.1"}, ErrOutOfRange},
		"gateway bad":    {PoolConfig{Subnet: "10.0.9.0/24", Gateway: "ten"}, []string{"gateway", "ten"}, ErrInvalid},
		"aux out":        {PoolConfig{Subnet: "10.0.9.0/24", AuxAddresses: map[string]string{"db": "10.1.0.1"}}, []string{"aux-address db", "10.1.0.1"}, ErrOutOfRange},
		"aux is gateway": {PoolConfig{Subnet: "10.0.9.0/24", AuxAddresses: map[string]string{"x": "10.0.9.1"}}, []string{"gateway"}, ErrInUse},
		"aux no name":    {PoolConfig{Subnet: "10.0.9.0/24", AuxAddresses: map[string]string{"": "10.0.9.9"}}, []string{"name=ip"}, ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewPool("web", tc.cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestNewPool_refusesUnusableSubnets: a subnet touching loopback,
// link-local, multicast, reserved or unspecified addresses, or a gateway
// on the network or broadcast address, is an error naming the field and
// the value; subnets just beside them are fine.
func TestNewPool_refusesUnusableSubnets(t *testing.T) {
	for _, tc := range []struct{ subnet, gateway, field, detail string }{
		{"127.0.0.0/8", "", "subnet", "127.0.0.0/8, loopback"},
		{"127.1.2.0/24", "", "subnet", "loopback"},
		{"126.0.0.0/7", "", "subnet", "loopback"},
		{"224.0.0.0/4", "", "subnet", "multicast"},
		{"239.1.0.0/16", "", "subnet", "multicast"},
		{"169.254.0.0/16", "", "subnet", "link-local"},
		{"169.254.10.0/24", "", "subnet", "link-local"},
		{"0.0.0.0/8", "", "subnet", `"this network"`},
		{"0.0.0.0/0", "", "subnet", `"this network"`},
		{"240.0.0.0/4", "", "subnet", "reserved"},
		{"255.255.255.0/24", "", "subnet", "broadcast"},
		{"::/0", "", "subnet", "unspecified"},
		{"::/64", "", "subnet", "unspecified"},
		{"::/127", "", "subnet", "unspecified"},
		{"fe80::/10", "", "subnet", "link-local"},
		{"fe80::/64", "", "subnet", "link-local"},
		{"ff00::/8", "", "subnet", "multicast"},
		{"ff02::/16", "", "subnet", "multicast"},
		{"10.0.9.0/24", "10.0.9.0", "gateway", "network address"},
		{"10.0.9.0/24", "10.0.9.255", "gateway", "broadcast address"},
		{"10.0.8.0/22", "10.0.11.255", "gateway", "broadcast address"},
		{"fd00:9::/64", "fd00:9::", "gateway", "network address"},
	} {
		_, err := NewPool("web", PoolConfig{Subnet: tc.subnet, Gateway: tc.gateway})
		var e *Error
		value := tc.subnet
		if tc.field == "gateway" {
			value = tc.gateway
		}
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Network != "web" || e.Field != tc.field || e.Value != value || !strings.Contains(e.Detail, tc.detail) {
			t.Errorf("subnet %s gateway %q: error %v, want %s %q refused, saying %q", tc.subnet, tc.gateway, err, tc.field, value, tc.detail)
		}
	}
	for _, tc := range []struct{ subnet, gateway string }{
		{"126.0.0.0/8", ""}, {"128.0.0.0/8", ""}, {"169.253.0.0/16", ""}, {"169.255.0.0/16", ""}, {"1.0.0.0/8", ""},
		{"223.255.255.0/24", ""}, {"::4/126", ""}, {"fec0::/10", ""}, {"fe00::/9", ""}, {"fd00::/8", ""},
		{"10.0.9.0/24", "10.0.9.254"}, {"10.0.9.0/24", "10.0.9.1"}, {"fd00:9::/64", "fd00:9::ffff:ffff:ffff:ffff"},
	} {
		if _, err := NewPool("web", PoolConfig{Subnet: tc.subnet, Gateway: tc.gateway}); err != nil {
			t.Errorf("subnet %s gateway %q: %v", tc.subnet, tc.gateway, err)
		}
	}
}

func TestPool_neverHandsOutReservedAddresses(t *testing.T) {
	p, err := NewPool("web", PoolConfig{Subnet: "10.0.9.0/29", AuxAddresses: map[string]string{"db": "10.0.9.5"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		a, err := p.Allocate()
		if err != nil {
			if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), `network "web"`) {
				t.Fatalf("exhaustion error %v", err)
			}
			break
		}
		got = append(got, a.String())
	}
	// .0 network, .1 gateway, .5 aux, .7 broadcast: never.
	if strings.Join(got, " ") != "10.0.9.2 10.0.9.3 10.0.9.4 10.0.9.6" {
		t.Errorf("allocated %v", got)
	}
}

func TestPool_nextFitAndStatic(t *testing.T) {
	p, _ := NewPool("web", PoolConfig{Subnet: "10.0.9.0/24", IPRange: "10.0.9.128/25"})
	a1, _ := p.Allocate()
	a2, _ := p.Allocate()
	if a1 != netip.MustParseAddr("10.0.9.128") || a2 != netip.MustParseAddr("10.0.9.129") {
		t.Errorf("first from the range: %v %v", a1, a2)
	}
	p.Release(a1)
	if a3, _ := p.Allocate(); a3 == a1 {
		t.Error("a released address came straight back (want next-fit)")
	}
	out := netip.MustParseAddr("10.0.9.10") // in the subnet, outside the range
	if err := p.AllocateStatic(out); err != nil {
		t.Errorf("static outside --ip-range: %v", err)
	}
	if err := p.AllocateStatic(out); !errors.Is(err, ErrInUse) {
		t.Errorf("static twice: %v", err)
	}
	for _, bad := range []string{"10.0.9.0", "10.0.9.255", "10.0.9.1", "10.0.9.129"} {
		if err := p.AllocateStatic(netip.MustParseAddr(bad)); !errors.Is(err, ErrInUse) {
			t.Errorf("static %s: %v, want in use", bad, err)
		}
	}
	if err := p.AllocateStatic(netip.MustParseAddr("10.0.10.1")); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("static outside the subnet: %v", err)
	}
	if err := p.Release(netip.MustParseAddr("10.0.9.200")); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("release of a free address: %v", err)
	}
	if err := p.Release(p.Gateway); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("release of the gateway: %v", err)
	}
}

func TestPool_ipv6(t *testing.T) {
	p, err := NewPool("web", PoolConfig{Subnet: "fd00:9::/64"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Allocate()
	if p.Gateway.String() != "fd00:9::1" || a.String() != "fd00:9::2" {
		t.Errorf("gateway %v, first %v", p.Gateway, a)
	}
	if err := p.AllocateStatic(netip.MustParseAddr("fd00:9::")); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "subnet-router anycast") {
		t.Errorf("the subnet-router anycast address: %v", err)
	}
	// A /64 is handed out from its first 2^24 addresses, and says so.
	if got := p.RangeText(); !strings.Contains(got, "fd00:9::/64") || !strings.Contains(got, "fd00:9:: to fd00:9::ff:ffff") {
		t.Errorf("RangeText: %q", got)
	}
}

// TestPool_reservedAddressesSayWhy: a static address the pool keeps for
// something else is refused with what it is kept for.
func TestPool_reservedAddressesSayWhy(t *testing.T) {
	p, err := NewPool("web", PoolConfig{Subnet: "10.0.9.0/24", AuxAddresses: map[string]string{"router": "10.0.9.254"}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.0.9.0":   "network address",
		"10.0.9.255": "broadcast address",
		"10.0.9.1":   "gateway",
		"10.0.9.254": "--aux-address router=10.0.9.254",
	} {
		err := p.AllocateStatic(netip.MustParseAddr(addr))
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want in use naming %q", addr, err, want)
		}
	}
	if got := p.RangeText(); got != "10.0.9.0/24" {
		t.Errorf("RangeText of a /24: %q", got)
	}
}

// refPool is the slow reference: a map of taken addresses and a linear
// next-fit scan.
type refPool struct {
	addrs  []netip.Addr // the range, in order
	taken  map[netip.Addr]bool
	cursor int
}

func (r *refPool) allocate() (netip.Addr, bool) {
	for i := 0; i < len(r.addrs); i++ {
		j := (r.cursor + i) % len(r.addrs)
		if !r.taken[r.addrs[j]] {
			r.taken[r.addrs[j]] = true
			r.cursor = (j + 1) % len(r.addrs)
			return r.addrs[j], true
		}
	}
	return netip.Addr{}, false
}

// TestPool_matchesReference runs random operation sequences against the
// pool and the reference and requires the same answers.
func TestPool_matchesReference(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		bitsLen := 26 + rng.IntN(5) // /26 to /30
		p, err := NewPool("ref", PoolConfig{Subnet: netip.PrefixFrom(netip.MustParseAddr("10.1.2.0"), bitsLen).Masked().String()})
		if err != nil {
			t.Fatal(err)
		}
		ref := &refPool{taken: map[netip.Addr]bool{}}
		for a := p.Subnet.Addr(); p.Subnet.Contains(a); a = a.Next() {
			ref.addrs = append(ref.addrs, a)
		}
		for _, x := range []netip.Addr{ref.addrs[0], ref.addrs[1], ref.addrs[len(ref.addrs)-1]} {
			ref.taken[x] = true // network, gateway, broadcast
		}
		for op := 0; op < 2000; op++ {
			switch k := rng.IntN(10); {
			case k < 5:
				a, err := p.Allocate()
				ra, ok := ref.allocate()
				if (err == nil) != ok || a != ra {
					t.Fatalf("seed %d op %d: Allocate = %v %v, reference %v %v", seed, op, a, err, ra, ok)
				}
			case k < 8:
				x := ref.addrs[rng.IntN(len(ref.addrs))]
				err := p.Release(x)
				wantOK := ref.taken[x] && x != ref.addrs[0] && x != ref.addrs[1] && x != ref.addrs[len(ref.addrs)-1]
				if (err == nil) != wantOK {
					t.Fatalf("seed %d op %d: Release(%v) = %v, reference ok=%v", seed, op, x, err, wantOK)
				}
				if wantOK {
					delete(ref.taken, x)
				}
			default:
				x := ref.addrs[rng.IntN(len(ref.addrs))]
				err := p.AllocateStatic(x)
				if (err == nil) != !ref.taken[x] {
					t.Fatalf("seed %d op %d: AllocateStatic(%v) = %v, reference free=%v", seed, op, x, err, !ref.taken[x])
				}
				ref.taken[x] = true
			}
		}
	}
}

func FuzzNewPool(f *testing.F) {
	f.Add("10.0.9.0/24", "10.0.9.128/25", "10.0.9.1", "db", "10.0.9.5")
	f.Add("fd00::/64", "", "", "", "")
	f.Add("10.0.9.1/24", "x", "y", "", "z")
	f.Fuzz(func(t *testing.T, subnet, rng, gw, auxName, aux string) {
		cfg := PoolConfig{Subnet: subnet, IPRange: rng, Gateway: gw}
		if auxName != "" || aux != "" {
			cfg.AuxAddresses = map[string]string{auxName: aux}
		}
		p, err := NewPool("fuzz", cfg)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Network != "fuzz" {
				t.Fatalf("error %v does not name the network", err)
			}
			return
		}
		// A pool that parses hands out only addresses of its range that
		// are not reserved.
		for i := 0; i < 4; i++ {
			a, err := p.Allocate()
			if err != nil {
				return
			}
			if !p.Range.Contains(a) || a == p.Gateway || a == p.Subnet.Addr() || p.isAux(a) {
				t.Fatalf("allocated %v from %+v", a, p)
			}
		}
	})
}

func BenchmarkPool_allocateRelease(b *testing.B) {
	p, _ := NewPool("bench", PoolConfig{Subnet: "10.0.0.0/16"})
	held := make([]netip.Addr, 0, 1024)
	for i := 0; i < 1000; i++ {
		a, _ := p.Allocate()
		held = append(held, a)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := p.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Release(a); err != nil {
			b.Fatal(err)
		}
	}
}
