package tun

import (
	"net"
	"net/netip"
)

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := p.Addr().BitLen()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// BroadcastOf returns the directed broadcast address of an IPv4 prefix.
func BroadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	a[0] |= byte(host >> 24)
	a[1] |= byte(host >> 16)
	a[2] |= byte(host >> 8)
	a[3] |= byte(host)
	return netip.AddrFrom4(a)
}
