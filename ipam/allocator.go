package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// allocator is a bitmap over a range's addresses, handing them out
// next-fit. A set bit is an address that is taken: allocated, reserved
// (gateway, aux) or never usable (network, broadcast, subnet-router
// anycast).
type allocator struct {
	base   netip.Addr // first address of the range
	size   uint64     // addresses in the range (at most 1<<MaxRangeBits)
	words  []uint64
	cursor uint64 // next-fit: where the next search starts
	free   uint64

	network, broadcast netip.Addr // never handed out (broadcast: IPv4 only)
}

func newAllocator(r, subnet netip.Prefix) *allocator {
	hostBits := r.Addr().BitLen() - r.Bits()
	if hostBits > MaxRangeBits {
		hostBits = MaxRangeBits
	}
	size := uint64(1) << hostBits
	a := &allocator{base: r.Addr(), size: size, words: make([]uint64, (size+63)/64), free: size}
	if size%64 != 0 { // bits past the end count as taken
		a.words[len(a.words)-1] = ^uint64(0) << (size % 64)
	}
	a.network = subnet.Addr() // IPv4 network address, IPv6 subnet-router anycast
	if subnet.Addr().Is4() {
		a.broadcast = lastOf(subnet)
	}
	for _, x := range []netip.Addr{a.network, a.broadcast} {
		if x.IsValid() {
			a.reserve(x)
		}
	}
	return a
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (^uint32(0) >> p.Bits())
	if p.Bits() == 0 {
		v = ^uint32(0)
	}
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// offset returns a's position in the range, ok false if outside.
func (a *allocator) offset(x netip.Addr) (uint64, bool) {
	if x.BitLen() != a.base.BitLen() {
		return 0, false
	}
	xb, bb := x.As16(), a.base.As16()
	if binary.BigEndian.Uint64(xb[:8]) != binary.BigEndian.Uint64(bb[:8]) {
		return 0, false
	}
	lo, blo := binary.BigEndian.Uint64(xb[8:]), binary.BigEndian.Uint64(bb[8:])
	if lo < blo || lo-blo >= a.size {
		return 0, false
	}
	return lo - blo, true
}

func (a *allocator) addr(off uint64) netip.Addr { return addShifted(a.base, off, 0) }

func (a *allocator) isSet(off uint64) bool { return a.words[off/64]&(1<<(off%64)) != 0 }

func (a *allocator) set(off uint64) {
	a.words[off/64] |= 1 << (off % 64)
	a.free--
}

func (a *allocator) clear(off uint64) {
	a.words[off/64] &^= 1 << (off % 64)
	a.free++
}

// excluded reports addresses that are never handed out.
func (a *allocator) excluded(x netip.Addr) bool {
	return x == a.network || (a.broadcast.IsValid() && x == a.broadcast)
}

// reserve marks an address in the range taken for good (no-op outside).
func (a *allocator) reserve(x netip.Addr) {
	if off, ok := a.offset(x); ok && !a.isSet(off) {
		a.set(off)
	}
}

// next takes the first free address at or after the cursor, wrapping.
func (a *allocator) next() (netip.Addr, bool) {
	if a.free == 0 {
		return netip.Addr{}, false
	}
	n := uint64(len(a.words))
	start := a.cursor / 64
	for i := uint64(0); i <= n; i++ {
		w := (start + i) % n
		free := ^a.words[w]
		if i == 0 { // the first word: only bits from the cursor on
			free &= ^uint64(0) << (a.cursor % 64)
		}
		if free == 0 {
			continue
		}
		off := w*64 + uint64(bits.TrailingZeros64(free))
		a.set(off)
		a.cursor = (off + 1) % a.size
		return a.addr(off), true
	}
	return netip.Addr{}, false // unreachable while free counts right
}

// take marks a specific free address of the range taken; false if it is
// taken or outside the range.
func (a *allocator) take(x netip.Addr) bool {
	off, ok := a.offset(x)
	if !ok {
		return false
	}
	if a.isSet(off) {
		return false
	}
	a.set(off)
	return true
}

func (a *allocator) release(x netip.Addr) bool {
	off, ok := a.offset(x)
	if !ok || !a.isSet(off) || a.excluded(x) {
		return false
	}
	a.clear(off)
	return true
}

func (a *allocator) used(x netip.Addr) bool {
	off, ok := a.offset(x)
	return ok && a.isSet(off) && !a.excluded(x)
}
