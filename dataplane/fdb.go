package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// The lookup structures of a Table. Go maps keyed by netip.Addr cost a
// string-like hash per packet (half of the outside path's time), so the
// forwarding database uses its own open-addressing tables: built once by
// NewTable, read-only afterwards, lookups without allocation or locks.

// addrKey is an IP address as two words; IPv4 addresses take their
// IPv4-mapped IPv6 form, so one table holds both families.
type addrKey struct{ hi, lo uint64 }

const v4MappedPrefix = 0xffff << 32

func keyOf(a netip.Addr) addrKey {
	b := a.Unmap().As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// keyV4 builds the key of an IPv4 address read straight from a packet.
func keyV4(b []byte) addrKey {
	return addrKey{0, v4MappedPrefix | uint64(binary.BigEndian.Uint32(b))}
}

// keyV6 builds the key of an IPv6 address read straight from a packet.
func keyV6(b []byte) addrKey {
	return addrKey{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

// prefixKey is a prefix in key form: an address is in it when its key,
// masked, is base.
type prefixKey struct{ base, mask addrKey }

func prefixKeyOf(p netip.Prefix) prefixKey {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96 // IPv4 keys are IPv4-mapped
	}
	m := addrKey{^uint64(0) << (64 - min(bits, 64)), ^uint64(0) << (128 - max(bits, 64))}
	b := keyOf(p.Addr())
	return prefixKey{addrKey{b.hi & m.hi, b.lo & m.lo}, m}
}

func (p prefixKey) contains(k addrKey) bool {
	return k.hi&p.mask.hi == p.base.hi && k.lo&p.mask.lo == p.base.lo
}

func (k addrKey) hash() uint64 {
	h := k.hi*0x9e3779b97f4a7c15 ^ k.lo
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// addrTable maps addresses to values of type V. The zero V means "absent".
type addrTable[V comparable] struct {
	mask  uint64
	slots []addrSlot[V]
	n     int
}

type addrSlot[V comparable] struct {
	key  addrKey
	val  V
	used bool
}

// newAddrTable sizes a table for n entries at most half full.
func newAddrTable[V comparable](n int) addrTable[V] {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return addrTable[V]{mask: uint64(size - 1), slots: make([]addrSlot[V], size)}
}

// put inserts or replaces; the caller sized the table.
func (t *addrTable[V]) put(k addrKey, v V) {
	for i := k.hash() & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			*s = addrSlot[V]{key: k, val: v, used: true}
			t.n++
			return
		}
		if s.key == k {
			s.val = v
			return
		}
	}
}

// get returns the value for k, or the zero V.
func (t *addrTable[V]) get(k addrKey) V {
	for i := k.hash() & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			var zero V
			return zero
		}
		if s.key == k {
			return s.val
		}
	}
}

// vniTable maps VNIs to networks, same scheme.
type vniTable struct {
	mask  uint32
	slots []vniSlot
}

type vniSlot struct {
	vni uint32 // 0 = empty (VNI 0 is never valid)
	net *network
}

func newVNITable(nets []*network) vniTable {
	size := 8
	for size < 2*len(nets) {
		size <<= 1
	}
	t := vniTable{mask: uint32(size - 1), slots: make([]vniSlot, size)}
	for _, n := range nets {
		for i := vniHash(n.vni) & t.mask; ; i = (i + 1) & t.mask {
			if t.slots[i].vni == 0 {
				t.slots[i] = vniSlot{n.vni, n}
				break
			}
		}
	}
	return t
}

func vniHash(v uint32) uint32 { return v * 0x9e3779b1 >> 8 }

func (t *vniTable) get(vni uint32) *network {
	if vni == 0 {
		return nil
	}
	for i := vniHash(vni) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.vni == vni {
			return s.net
		}
		if s.vni == 0 {
			return nil
		}
	}
}
