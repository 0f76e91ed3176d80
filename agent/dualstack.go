package agent

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
)

// Dual stack: a network with an IPv6 subnet beside its IPv4 one. IPAM
// keeps the IPv6 side as a network of its own, NAME+ipam.V6Suffix, created
// with the IPv4 side's creation time; every endpoint gets an address of
// each side, IPv4 first (its MAC and Addr() are its IPv4 address's).

// ipamName is the IPAM network that holds addr of network.
func (a *Agent) ipamName(network string, addr netip.Addr) string {
	if a.ipam != nil && addr.Is6() && !addr.Is4In6() && a.sidesMatch(network) {
		return network + ipam.V6Suffix
	}
	return network
}

// sidesMatch reports whether network has an IPv6 side of the same
// creation as its IPv4 side (a losing creation's IPv6 side, left over,
// is not the network's).
func (a *Agent) sidesMatch(network string) bool {
	c4, t4, ok4 := a.ipam.Creation(network)
	c6, t6, ok6 := a.ipam.Creation(network + ipam.V6Suffix)
	return ok4 && ok6 && c4 == c6 && t4.Equal(t6)
}

// ofIPAM is the network an IPAM network name is a side of.
func ofIPAM(name string) string { return strings.TrimSuffix(name, ipam.V6Suffix) }

// v4First orders an endpoint's addresses: IPv4 first, then IPv6.
func v4First(ps []netip.Prefix) []netip.Prefix {
	slices.SortStableFunc(ps, func(x, y netip.Prefix) int {
		switch {
		case x.Addr().Is4() == y.Addr().Is4():
			return 0
		case x.Addr().Is4():
			return -1
		default:
			return 1
		}
	})
	return ps
}

// checkDualStack checks the IPv6 side of a network request.
func checkDualStack(req *api.NetworkCreate, driverName string) error {
	if req.Subnet6 == "" {
		switch {
		case req.Gateway6 != "":
			return apiError(api.CodeBadRequest, "gateway6", "gateway6 %q without subnet6: give the network's IPv6 subnet", req.Gateway6)
		case req.IPRange6 != "":
			return apiError(api.CodeBadRequest, "ipRange6", "ipRange6 %q without subnet6: give the network's IPv6 subnet", req.IPRange6)
		}
		return nil
	}
	p, err := netip.ParsePrefix(req.Subnet6)
	switch {
	case err != nil || !p.Addr().Is6():
		return apiError(api.CodeBadRequest, "subnet6", "subnet6 %q is not an IPv6 network address with its prefix length, such as fd00:9::/64", req.Subnet6)
	case p.Addr().Is4In6():
		return apiError(api.CodeBadRequest, "subnet6", "subnet6 %q is IPv4-mapped: give an IPv6 subnet such as fd00:9::/64, and IPv4 as the other subnet", req.Subnet6)
	case p != p.Masked():
		return apiError(api.CodeBadRequest, "subnet6", "subnet6 %q has host bits set; did you mean %s?", req.Subnet6, p.Masked())
	}
	if s, err := netip.ParsePrefix(req.Subnet); err != nil || !s.Addr().Is4() {
		return apiError(api.CodeBadRequest, "subnet", "a dual-stack network needs its IPv4 subnet too (subnet %q)", req.Subnet)
	}
	if driverName != "overlay" {
		return apiError(api.CodeBadRequest, "subnet6", "subnet6: dual-stack networks are overlay networks for now (this one is %s)", driverName)
	}
	if req.AssignedBy != "" {
		return apiError(api.CodeBadRequest, "subnet6", "subnet6: a network whose addresses %s assigns carries IPv4 only for now", req.AssignedBy)
	}
	_, aux6 := splitAux(req.AuxAddresses)
	// A range of under 4 addresses (one block) is refused there too.
	if err := ipam.CheckPool(req.Name+ipam.V6Suffix, ipam.PoolConfig{Subnet: req.Subnet6, IPRange: req.IPRange6, Gateway: req.Gateway6, AuxAddresses: aux6}); err != nil {
		return fromIPAM(err)
	}
	return nil
}

// splitAux splits aux addresses by family.
func splitAux(aux map[string]string) (v4, v6 map[string]string) {
	for k, v := range aux {
		a, err := netip.ParseAddr(v)
		m := &v4
		if err == nil && a.Is6() && !a.Is4In6() {
			m = &v6
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	}
	return v4, v6
}
