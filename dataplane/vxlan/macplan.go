package vxlan

import (
	"hash/fnv"
	"net/netip"
)

// The MAC plan: every MAC vxnet makes up is a locally administered
// unicast address (first byte 0x02), and its second byte says what it
// belongs to, so that two kinds never collide and a MAC seen in a capture
// tells where it came from:
//
//	02:42:a.b.c.d    an endpoint, from its IPv4 address a.b.c.d (as Docker
//	                 does), or from a hash of its IPv6 address: StableMAC
//	02:44:h.h.h.h    an endpoint whose address a DHCP server leases, from a
//	                 hash of network/name (it asks before it has an
//	                 address): DHCPMAC
//	02:76:67:v.v.v   a network's gateway port on the host (nat), from its
//	                 VNI: GatewayMAC
//
// Each is the same every time for the same input: an endpoint restored
// after a restart, or readdressed, or described in a static file, has the
// MAC every host expects.

// StableMAC is the MAC of an endpoint with address a.
func StableMAC(a netip.Addr) MAC {
	m := MAC{0x02, 0x42}
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		copy(m[2:], b[:])
		return m
	}
	h := fnv.New32a()
	b := a.As16()
	h.Write(b[:])
	s := h.Sum32()
	m[2], m[3], m[4], m[5] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	return m
}

// DHCPMAC is the MAC an endpoint of a DHCP network asks with and keeps:
// the same for the same network and name, so a server that remembers
// clients gives the same address back.
func DHCPMAC(network, name string) MAC {
	h := fnv.New64a()
	h.Write([]byte(network + "/" + name))
	s := h.Sum64()
	return MAC{0x02, 0x44, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// GatewayMAC is the source MAC of frames a network's gateway port sends.
func GatewayMAC(vni uint32) MAC {
	return MAC{0x02, 0x76, 0x67, byte(vni >> 16), byte(vni >> 8), byte(vni)}
}
