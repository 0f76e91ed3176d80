package ipam

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// Default address pools, as Docker's: 10.0.0.0/8 carved into /24 subnets.
const (
	DefaultBase = "10.0.0.0/8"
	DefaultSize = 24
)

// SubnetPool hands out network subnets from a base prefix and keeps every
// network's subnets, handed out or given by the user, from overlapping.
// Not safe for concurrent use.
type SubnetPool struct {
	base   netip.Prefix
	size   int
	used   []owned
	cursor uint64 // next-fit over the base's candidate subnets
}

type owned struct {
	network string
	prefix  netip.Prefix
}

// NewSubnetPool carves base into subnets of size bits. Errors name the
// field ("base", "size") and the value.
func NewSubnetPool(base string, size int) (*SubnetPool, error) {
	b, err := ParsePrefix("default-address-pool", "base", base)
	if err != nil {
		return nil, err
	}
	if size < b.Bits() || size > b.Addr().BitLen()-2 || size-b.Bits() > 32 {
		return nil, &Error{Network: "default-address-pool", Field: "size", Value: fmt.Sprint(size), Err: ErrInvalid,
			Detail: fmt.Sprintf("want %d-%d for base %v", b.Bits(), min(b.Addr().BitLen()-2, b.Bits()+32), b)}
	}
	return &SubnetPool{base: b, size: size}, nil
}

// DefaultSubnetPool returns 10.0.0.0/8 in /24s.
func DefaultSubnetPool() *SubnetPool {
	p, _ := NewSubnetPool(DefaultBase, DefaultSize)
	return p
}

// overlapping returns the network owning a subnet that overlaps p.
func (s *SubnetPool) overlapping(p netip.Prefix) (string, bool) {
	for _, o := range s.used {
		if o.prefix.Overlaps(p) {
			return o.network, true
		}
	}
	return "", false
}

// Reserve records a subnet the user chose for network (--subnet).
func (s *SubnetPool) Reserve(network string, p netip.Prefix) error {
	if other, ok := s.overlapping(p); ok {
		return &Error{Network: network, Field: "subnet", Value: p.String(), Err: ErrOverlap, Detail: "network " + other}
	}
	s.used = append(s.used, owned{network, p})
	return nil
}

// Allocate gives network the next free subnet of the base.
func (s *SubnetPool) Allocate(network string) (netip.Prefix, error) {
	n := uint64(1) << (s.size - s.base.Bits())
	for i := uint64(0); i < n; i++ {
		k := (s.cursor + i) % n
		p := s.candidate(k)
		if _, taken := s.overlapping(p); taken {
			continue
		}
		s.used = append(s.used, owned{network, p})
		s.cursor = (k + 1) % n
		return p, nil
	}
	return netip.Prefix{}, &Error{Network: network, Field: "subnet", Value: s.base.String(), Err: ErrExhausted,
		Detail: fmt.Sprintf("every /%d of the default address pool is in use", s.size)}
}

// candidate is the k-th subnet of the base.
func (s *SubnetPool) candidate(k uint64) netip.Prefix {
	return netip.PrefixFrom(addShifted(s.base.Addr(), k, uint(s.base.Addr().BitLen()-s.size)), s.size)
}

// Release frees a subnet of network.
func (s *SubnetPool) Release(network string, p netip.Prefix) error {
	for i, o := range s.used {
		if o.network == network && o.prefix == p {
			s.used = append(s.used[:i], s.used[i+1:]...)
			return nil
		}
	}
	return &Error{Network: network, Field: "subnet", Value: p.String(), Err: ErrNotAllocated}
}

// addShifted returns base + k<<shift in 128-bit arithmetic, keeping base's
// family.
func addShifted(base netip.Addr, k uint64, shift uint) netip.Addr {
	b := base.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var addHi, addLo uint64
	switch {
	case shift >= 128:
	case shift >= 64:
		addHi = k << (shift - 64)
	case shift == 0:
		addLo = k
	default:
		addHi, addLo = k>>(64-shift), k<<shift
	}
	lo, carry := bits.Add64(lo, addLo, 0)
	hi, _ = bits.Add64(hi, addHi, carry)
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if base.Is4() {
		a = a.Unmap()
	}
	return a
}
