package driver

import (
	"fmt"
	"net/netip"
)

// transparent and l2bridge (transparent.go, l2bridge.go) put endpoints on
// a physical segment through a host NIC named by -o uplink=IFNAME (the
// same name on every host that runs endpoints of the network). The
// segment's router is the network's --gateway; between two such networks
// on one host, the host routes. Addresses come from --subnet (use
// --ip-range to stay clear of the segment's other machines).

// uplinkDriver is what the two have in common.
type uplinkDriver interface {
	Driver
	// l2bridge reports whether endpoints use the host's MAC.
	l2bridge() bool
}

// uplinkCommon holds the methods both share.
type uplinkCommon struct{}

func (uplinkCommon) Scope() Scope      { return ScopeGlobal }
func (uplinkCommon) Publishes() bool   { return false }
func (uplinkCommon) HostGateway() bool { return false }

// ContainerRoutes: a default route, through the segment's router (or the
// host, see above), unless the network is internal.
func (uplinkCommon) ContainerRoutes(n Network) []netip.Prefix {
	if n.Internal || !n.Subnet.Addr().Is4() {
		return nil
	}
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
}

// UsesUplink reports whether a driver's networks sit on a host NIC.
func UsesUplink(d Driver) bool {
	_, ok := d.(uplinkDriver)
	return ok
}

// IsL2Bridge reports whether a driver rewrites endpoint MACs to the host's.
func IsL2Bridge(d Driver) bool {
	u, ok := d.(uplinkDriver)
	return ok && u.l2bridge()
}

// UsesDHCP reports whether a network's endpoints lease their addresses
// from the segment's DHCP server (transparent, -o dhcp=true).
func UsesDHCP(d Driver, opts map[string]string) bool {
	_, ok := d.(transparent)
	return ok && opts["dhcp"] == "true"
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
	return name, nil
}
