package driver

import (
	"fmt"
	"net/netip"
)

// transparent and l2bridge put endpoints on a physical segment through a
// host NIC named by -o uplink=IFNAME (the same name on every host that
// runs endpoints of the network). The segment's router is the network's
// --gateway. Addresses come from --subnet (use --ip-range to stay clear of
// the segment's other machines).
//
// transparent: each endpoint has its own MAC on the segment; with
// -o dhcp=true its address comes from the segment's DHCP server.
// l2bridge: endpoints share the host's MAC; the segment only ever learns
// the host's MAC.
type uplinkDriver struct {
	name     string
	l2bridge bool
}

func (d uplinkDriver) Name() string { return d.name }
func (uplinkDriver) Scope() Scope   { return ScopeGlobal }
func (d uplinkDriver) OptionKeys() []string {
	if d.l2bridge {
		return []string{"uplink"}
	}
	return []string{"uplink", "dhcp"}
}
func (uplinkDriver) Publishes() bool          { return false }
func (uplinkDriver) HostGateway(Network) bool { return false }

func (d uplinkDriver) CheckOptions(opts map[string]string) error {
	if _, err := UplinkName(d.name, opts); err != nil {
		return err
	}
	if v, ok := opts["dhcp"]; ok && v != "true" && v != "false" {
		return fmt.Errorf("option dhcp=%q: want true or false", v)
	}
	return nil
}

// UsesDHCP reports whether a network's endpoints lease their addresses
// from the segment's DHCP server (transparent, -o dhcp=true).
func UsesDHCP(d Driver, opts map[string]string) bool {
	u, ok := d.(uplinkDriver)
	return ok && !u.l2bridge && opts["dhcp"] == "true"
}

// ContainerRoutes: a default route, through the segment's router, unless
// the network is internal.
func (uplinkDriver) ContainerRoutes(n Network) []netip.Prefix {
	if n.Internal || !n.Subnet.Addr().Is4() {
		return nil
	}
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
}

// IsL2Bridge reports whether a driver rewrites endpoint MACs to the host's.
func IsL2Bridge(d Driver) bool {
	u, ok := d.(uplinkDriver)
	return ok && u.l2bridge
}

// UsesUplink reports whether a driver's networks sit on a host NIC.
func UsesUplink(d Driver) bool {
	_, ok := d.(uplinkDriver)
	return ok
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
