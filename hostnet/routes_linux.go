package hostnet

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// RoutedNetworks lists the destinations of this host's routes, both
// families (/proc/net/route, /proc/net/ipv6_route): the networks it
// reaches, on a link or through a router (a VPN's, a static route's),
// which a network's subnet would shadow. Left out: default routes, routes
// over vxnet's own gateway devices (those networks are vxnet's) or
// loopback, the host's own addresses, and loopback, link-local and
// multicast destinations.
func RoutedNetworks() ([]netip.Prefix, error) {
	v4, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return nil, err
	}
	out := parseRoutes4(string(v4))
	if v6, err := os.ReadFile("/proc/net/ipv6_route"); err == nil { // absent without IPv6
		out = append(out, parseRoutes6(string(v6))...)
	}
	return out, nil
}

// parseRoutes4 reads /proc/net/route: a header line, then per route its
// device, destination, gateway, flags, ... and mask, the addresses as
// 8 hex digits of the kernel's 32-bit value in the machine's byte order.
// Lines it cannot read are skipped; what is kept is as routeKept says.
func parseRoutes4(text string) []netip.Prefix {
	var out []netip.Prefix
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 {
			continue // the header, or not a route
		}
		dst, ok1 := hex32(f[1])
		mask, ok2 := hex32(f[7])
		if !ok1 || !ok2 {
			continue
		}
		ones, bits := net.IPMask(mask[:]).Size() // 0, 0 when not a mask
		if bits == 0 {
			continue
		}
		p, err := netip.AddrFrom4(dst).Prefix(ones)
		if err == nil && routeKept(f[0], p, 0) {
			out = append(out, p)
		}
	}
	return out
}

// rtfLocal marks a route to one of the host's own addresses (RTF_LOCAL).
const rtfLocal = 0x80000000

// parseRoutes6 reads /proc/net/ipv6_route: per route its destination (32
// hex digits) and prefix length (2), source and its length, next hop,
// metric, reference count, use, flags (8 hex digits) and device. Lines it
// cannot read are skipped; what is kept is as routeKept says.
func parseRoutes6(text string) []netip.Prefix {
	var out []netip.Prefix
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 10 {
			continue
		}
		var a [16]byte
		if len(f[0]) != 32 {
			continue
		}
		if _, err := hex.Decode(a[:], []byte(f[0])); err != nil {
			continue
		}
		plen, err1 := strconv.ParseUint(f[1], 16, 8)
		flags, err2 := strconv.ParseUint(f[8], 16, 32)
		if err1 != nil || err2 != nil || plen > 128 {
			continue
		}
		p, err := netip.AddrFrom16(a).Prefix(int(plen))
		if err == nil && routeKept(f[9], p, uint32(flags)) {
			out = append(out, p)
		}
	}
	return out
}

// routeKept reports whether a route to p over device dev is one a
// network's subnet must keep apart from: not a default route, not over
// loopback or one of vxnet's gateway devices, not to one of the host's
// own addresses, and not to loopback, link-local or multicast addresses.
func routeKept(dev string, p netip.Prefix, flags uint32) bool {
	a := p.Addr()
	return p.Bits() > 0 && dev != "lo" && !strings.HasPrefix(dev, GatewayPrefix) && flags&rtfLocal == 0 &&
		!a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsMulticast() && !a.IsUnspecified()
}

// hex32 reads 8 hex digits as the kernel printed a 32-bit network-order
// value in the machine's byte order, and returns its bytes in network order.
func hex32(s string) ([4]byte, bool) {
	var b [4]byte
	if len(s) != 8 {
		return b, false
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return b, false
	}
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b, true
}
