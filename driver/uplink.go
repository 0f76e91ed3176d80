package driver

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vxnet/vxnet/dataplane"
)

// transparent and l2bridge (transparent.go, l2bridge.go) put endpoints on
// a physical segment through a host NIC named by -o uplink=IFNAME (the
// same name on every host that runs endpoints of the network). The
// segment's router is the network's --gateway; between two such networks
// on one host, the host routes. Addresses come from --subnet (use
// --ip-range to stay clear of the segment's other machines).

// uplinkCommon holds what both answer.
type uplinkCommon struct{ base }

func (uplinkCommon) NeedsSubnet() bool { return true }

// ReachesOverVXLAN: across the segment, through this host's uplink; a
// host without it reaches them through their hosts, over VXLAN.
func (uplinkCommon) ReachesOverVXLAN(h Here) bool { return h.Uplink == nil }

// Egress: through the segment's router, unless the network is internal.
func (uplinkCommon) Egress(n Network) bool { return !n.Internal }

// ContainerRoutes: a default route, through the segment's router (or the
// host, see above), unless the network is internal.
func (uplinkCommon) ContainerRoutes(n Network) []netip.Prefix {
	if n.Internal {
		return nil
	}
	if n.Subnet.Addr().Is6() {
		return []netip.Prefix{netip.MustParsePrefix("::/0")}
	}
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
}

// uplinkForwarding is the switch's entry of a network on a segment: its
// uplink when the host has it (the agent refuses endpoints on a host
// without the NIC; one whose NIC went away meanwhile reaches only the
// others here), and the segment's router for cross-subnet traffic: the
// one a DHCP lease named, else --gateway.
func uplinkForwarding(n Network, h Here, l2bridge bool) (dataplane.NetworkSpec, error) {
	s, _ := base{}.Forwarding(n, h)
	if h.Uplink == nil {
		return s, nil
	}
	s.Uplink, s.L2Bridge = h.Uplink, l2bridge
	if n.Gateway.IsValid() {
		s.Router = n.Gateway
	}
	if h.DHCPRouter.Is4() {
		s.Router = h.DHCPRouter
	}
	return s, nil
}

// UplinkName reads the uplink option of a transparent or l2bridge network.
func UplinkName(driver string, opts map[string]string) (string, error) {
	name, ok := opts["uplink"]
	if !ok || name == "" {
		return "", fmt.Errorf("option uplink is required for %s: the host NIC on the physical segment (-o uplink=eth0)", driver)
	}
	if len(name) > 15 {
		return "", fmt.Errorf("option uplink=%q: an interface name has at most 15 characters", name)
	}
	if runtime.GOOS == "linux" { // Windows names adapters more freely ("Ethernet 2")
		if i := strings.IndexFunc(name, func(r rune) bool { return r == '/' || r == ':' || r == '%' || r <= ' ' || r >= 0x7f }); i >= 0 {
			return "", fmt.Errorf("option uplink=%q: an interface name has no %q (want a NIC of this host, e.g. eth0)", name, name[i])
		}
	}
	return name, nil
}
