package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestSubnetPool_defaultsCarveAndNeverOverlap(t *testing.T) {
	s := DefaultSubnetPool()
	a, _ := s.Allocate("a")
	b, _ := s.Allocate("b")
	if a.String() != "10.0.0.0/24" || b.String() != "10.0.1.0/24" {
		t.Errorf("first subnets %v %v", a, b)
	}
	// A user subnet overlapping b is refused, naming b.
	err := s.Reserve("c", netip.MustParsePrefix("10.0.1.128/25"))
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "network b") || !strings.Contains(err.Error(), `network "c"`) {
		t.Errorf("overlap: %v", err)
	}
	// A user subnet inside the base is skipped by later allocations.
	if err := s.Reserve("d", netip.MustParsePrefix("10.0.2.0/23")); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Allocate("e"); e.String() != "10.0.4.0/24" {
		t.Errorf("after a user /23 at 10.0.2.0: %v", e)
	}
	if err := s.Release("b", b); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("b", b); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("double release: %v", err)
	}
}

func TestSubnetPool_exhaustionAndSizes(t *testing.T) {
	s, err := NewSubnetPool("192.168.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := s.Allocate("n"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Allocate("full"); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), `network "full"`) {
		t.Errorf("exhaustion: %v", err)
	}
	for _, bad := range []struct {
		base string
		size int
		want string
	}{{"10.0.0.0/8", 4, "size"}, {"10.0.0.0/8", 31, "size"}, {"10.0.0.1/8", 24, "base"}, {"nope", 24, "base"}} {
		if _, err := NewSubnetPool(bad.base, bad.size); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("NewSubnetPool(%q, %d): %v", bad.base, bad.size, err)
		}
	}
	v6, err := NewSubnetPool("fd00::/48", 64)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := v6.Allocate("a")
	p2, _ := v6.Allocate("b")
	if p1.String() != "fd00::/64" || p2.String() != "fd00:0:0:1::/64" {
		t.Errorf("IPv6 subnets %v %v", p1, p2)
	}
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.9.0/24", "fd00::/64", "10.0.9.1/24", "::ffff:10.0.0.0/104", "fe80::%eth0/64", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix("n", "subnet", s)
		if err != nil {
			if !strings.Contains(err.Error(), `network "n": subnet`) {
				t.Fatalf("error %q does not name the network and field", err)
			}
			return
		}
		if p.Masked() != p || !p.IsValid() {
			t.Fatalf("accepted %q as %v", s, p)
		}
	})
}
