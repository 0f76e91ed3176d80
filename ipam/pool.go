package ipam

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// PoolConfig is what a user gives for one subnet of a network, in the
// form Docker's flags take.
type PoolConfig struct {
	Subnet       string            // --subnet, e.g. 10.0.9.0/24
	IPRange      string            // --ip-range: allocate only from this sub-prefix
	Gateway      string            // --gateway: reserved, default the first address
	AuxAddresses map[string]string // --aux-address name=ip: reserved
	// OneHost: a global network only its creator's endpoints use (nat):
	// no other host takes a block of it (Global).
	OneHost bool
}

// Pool is a parsed subnet with its reservations and an allocator. It is
// not safe for concurrent use: the caller serialises (one network's pool is
// changed by one goroutine, or under the caller's lock).
type Pool struct {
	Network  string
	Subnet   netip.Prefix
	Range    netip.Prefix
	Gateway  netip.Addr
	Reserved map[string]netip.Addr // aux addresses by name

	alloc   *allocator
	outside map[netip.Addr]struct{} // static addresses outside the range
}

// MaxRangeBits is the largest range, in host bits, a pool allocates from
// (an IPv6 /64 range is clamped to its first 2^24 addresses).
const MaxRangeBits = 24

// RangeText describes the addresses the pool hands out: its range, or,
// when the range is larger than MaxRangeBits, the part of it that is used.
func (p *Pool) RangeText() string {
	a := p.alloc
	if a == nil || p.Range.Addr().BitLen()-p.Range.Bits() <= MaxRangeBits {
		return p.Range.String()
	}
	return fmt.Sprintf("%s, of which vxnet hands out the first 2^%d addresses, %s to %s", p.Range, MaxRangeBits, a.base, a.addr(a.size-1))
}

// ParsePrefix parses a CIDR as a subnet of network: it must be in
// canonical form (no host bits).
func ParsePrefix(network, field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return p, &Error{Network: network, Field: field, Value: s, Err: ErrInvalid, Detail: "want a CIDR such as 10.0.9.0/24"}
	}
	if p.Masked() != p {
		return p, &Error{Network: network, Field: field, Value: s, Err: ErrInvalid, Detail: "host bits set; did you mean " + p.Masked().String() + "?"}
	}
	if p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return p, &Error{Network: network, Field: field, Value: s, Err: ErrInvalid, Detail: "use a plain IPv4 or IPv6 prefix"}
	}
	return p, nil
}

// ParseAddr parses an address that must lie in subnet.
func ParseAddr(network, field, s string, subnet netip.Prefix) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return a, &Error{Network: network, Field: field, Value: s, Err: ErrInvalid, Detail: "want an IP address"}
	}
	if !subnet.Contains(a) {
		return a, &Error{Network: network, Field: field, Value: s, Err: ErrOutOfRange, Detail: "subnet " + subnet.String()}
	}
	return a, nil
}

// unusable are the ranges no network's subnet may touch: the stack or
// the wire gives their addresses another meaning, so containers on them
// could not be reached.
var unusable = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" addresses"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback addresses"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local addresses"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast addresses"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved addresses and the broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped addresses"},
	{netip.MustParsePrefix("fe80::/10"), "link-local addresses"},
	{netip.MustParsePrefix("ff00::/8"), "multicast addresses"},
}

// CheckSubnet refuses a subnet that overlaps a range containers cannot
// use (loopback, link-local, multicast, reserved, unspecified); field and
// value name it in the error.
func CheckSubnet(network, field, value string, subnet netip.Prefix) error {
	for _, u := range unusable {
		if subnet.Overlaps(u.prefix) {
			return &Error{Network: network, Field: field, Value: value, Err: ErrInvalid,
				Detail: "overlaps " + u.prefix.String() + ", " + u.what + ", which containers cannot use"}
		}
	}
	return nil
}

// NewPool parses c for the named network.
func NewPool(network string, c PoolConfig) (*Pool, error) {
	p, err := parsePool(network, c)
	if err != nil {
		return nil, err
	}
	p.alloc = newAllocator(p.Range, p.Subnet)
	if !p.alloc.excluded(p.Gateway) {
		p.alloc.reserve(p.Gateway)
	}
	for _, a := range p.Reserved {
		if !p.alloc.excluded(a) {
			p.alloc.reserve(a)
		}
	}
	return p, nil
}

// CheckPool makes every check NewPool makes, without its allocator (which
// takes memory in proportion to the range): for a configuration only to
// be checked.
func CheckPool(network string, c PoolConfig) error {
	_, err := parsePool(network, c)
	return err
}

// parsePool is NewPool without the allocator: every check, little memory
// (a refresh checks every network's claim this way).
func parsePool(network string, c PoolConfig) (*Pool, error) {
	subnet, err := ParsePrefix(network, "subnet", c.Subnet)
	if err != nil {
		return nil, err
	}
	if err := CheckSubnet(network, "subnet", c.Subnet, subnet); err != nil {
		return nil, err
	}
	hostBits := subnet.Addr().BitLen() - subnet.Bits()
	if hostBits < 2 {
		return nil, &Error{Network: network, Field: "subnet", Value: c.Subnet, Err: ErrInvalid, Detail: "too small: leaves no address for endpoints"}
	}
	p := &Pool{Network: network, Subnet: subnet, Range: subnet, Reserved: map[string]netip.Addr{}}
	if c.IPRange != "" {
		r, err := ParsePrefix(network, "ip-range", c.IPRange)
		if err != nil {
			return nil, err
		}
		if r.Addr().BitLen() == subnet.Addr().BitLen() && r.Bits() < subnet.Bits() && r.Contains(subnet.Addr()) {
			return nil, &Error{Network: network, Field: "ip-range", Value: c.IPRange, Err: ErrInvalid,
				Detail: "larger than the subnet " + subnet.String() + ": give a range inside it, or leave --ip-range out"}
		}
		if r.Addr().BitLen() != subnet.Addr().BitLen() || !subnet.Contains(r.Addr()) || r.Bits() < subnet.Bits() {
			return nil, &Error{Network: network, Field: "ip-range", Value: c.IPRange, Err: ErrOutOfRange, Detail: "subnet " + subnet.String()}
		}
		if r.Addr().BitLen()-r.Bits() < 2 {
			// Address blocks hold 4 addresses at the least.
			return nil, &Error{Network: network, Field: "ip-range", Value: c.IPRange, Err: ErrInvalid,
				Detail: fmt.Sprintf("too small: give it at least 4 addresses (/%d)", r.Addr().BitLen()-2)}
		}
		p.Range = r
	}
	if c.Gateway != "" {
		if p.Gateway, err = ParseAddr(network, "gateway", c.Gateway, subnet); err != nil {
			return nil, err
		}
		switch {
		case p.Gateway == subnet.Addr():
			return nil, &Error{Network: network, Field: "gateway", Value: c.Gateway, Err: ErrInvalid,
				Detail: "the network address of " + subnet.String() + "; a gateway needs a host address"}
		case subnet.Addr().Is4() && p.Gateway == broadcast4(subnet):
			return nil, &Error{Network: network, Field: "gateway", Value: c.Gateway, Err: ErrInvalid,
				Detail: "the broadcast address of " + subnet.String() + "; a gateway needs a host address"}
		}
	} else {
		p.Gateway = subnet.Addr().Next()
	}
	names := make([]string, 0, len(c.AuxAddresses))
	for name := range c.AuxAddresses {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := c.AuxAddresses[name]
		field := fmt.Sprintf("aux-address %s", name)
		if name == "" {
			return nil, &Error{Network: network, Field: "aux-address", Value: "=" + v, Err: ErrInvalid, Detail: "want name=ip"}
		}
		a, err := ParseAddr(network, field, v, subnet)
		if err != nil {
			return nil, err
		}
		if a == p.Gateway {
			return nil, &Error{Network: network, Field: field, Value: v, Err: ErrInUse, Detail: "it is the gateway"}
		}
		p.Reserved[name] = a
	}
	return p, nil
}

// Allocate hands out the next free address of the range.
func (p *Pool) Allocate() (netip.Addr, error) {
	a, ok := p.alloc.next()
	if !ok {
		return a, &Error{Network: p.Network, Field: "ip-range", Value: p.Range.String(), Err: ErrExhausted}
	}
	return a, nil
}

// AllocateStatic takes a requested address (--ip): it must be in the
// subnet and free; it may lie outside --ip-range, as with Docker.
func (p *Pool) AllocateStatic(a netip.Addr) error {
	if !p.Subnet.Contains(a) {
		return &Error{Network: p.Network, Field: "address", Value: a.String(), Err: ErrOutOfRange, Detail: "subnet " + p.Subnet.String()}
	}
	if why := p.reservedFor(a); why != "" {
		return &Error{Network: p.Network, Field: "address", Value: a.String(), Err: ErrInUse, Detail: why}
	}
	inUse := &Error{Network: p.Network, Field: "address", Value: a.String(), Err: ErrInUse}
	if _, inRange := p.alloc.offset(a); inRange {
		if !p.alloc.take(a) {
			return inUse
		}
		return nil
	}
	if _, taken := p.outside[a]; taken {
		return inUse
	}
	if p.outside == nil {
		p.outside = map[netip.Addr]struct{}{}
	}
	p.outside[a] = struct{}{}
	return nil
}

// Release gives an address back.
func (p *Pool) Release(a netip.Addr) error {
	if _, ok := p.outside[a]; ok {
		delete(p.outside, a)
		return nil
	}
	if a == p.Gateway || p.isAux(a) || !p.alloc.release(a) {
		return &Error{Network: p.Network, Field: "address", Value: a.String(), Err: ErrNotAllocated}
	}
	return nil
}

// InUse reports whether a is allocated (reservations excluded).
func (p *Pool) InUse(a netip.Addr) bool {
	if _, ok := p.outside[a]; ok {
		return true
	}
	return a != p.Gateway && !p.isAux(a) && p.alloc.used(a)
}

// reservedFor says what a is kept for, never handed to an endpoint: the
// subnet's own addresses, the gateway, an --aux-address; "" if nothing.
func (p *Pool) reservedFor(a netip.Addr) string {
	switch {
	case a == p.alloc.network && a.Is4():
		return "it is the subnet's network address"
	case a == p.alloc.network:
		return "it is the subnet-router anycast address (the subnet's first), which IPv6 keeps for routers"
	case a == p.alloc.broadcast:
		return "it is the subnet's broadcast address"
	case a == p.Gateway:
		return "it is the network's gateway"
	}
	for name, r := range p.Reserved {
		if r == a {
			return fmt.Sprintf("it is reserved by --aux-address %s=%s", name, r)
		}
	}
	return ""
}

func (p *Pool) isAux(a netip.Addr) bool {
	for _, r := range p.Reserved {
		if r == a {
			return true
		}
	}
	return false
}

// broadcast4 is the directed broadcast address of an IPv4 subnet.
func broadcast4(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}
