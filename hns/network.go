package hns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// NamePrefix starts the name of every HNS object vxnet creates; Programmer
// touches no object without it.
const NamePrefix = "vxnet-"

// VNI bounds for HNS. An overlay's VNI is also the IsolationId of its
// RemoteSubnetRoute policies, which is 16 bits; vxnet's VNIs start at 4096.
const (
	MinVNI        = 4096
	MaxOverlayVNI = 65535
	MaxVNI        = vxlan.MaxVNI // l2tunnel: a VXLAN VNI (24 bits)
)

// types lists the network types vxnet programs, in the order of their
// names. Which driver takes which type is the driver's decision.
var types = []NetworkType{L2Bridge, L2Tunnel, NAT, Overlay, Transparent}

// NetworkSpec is what vxnet wants of one network on this host. Fields a
// driver does not use are ignored.
type NetworkSpec struct {
	Name    string       // vxnet's network name; the HNS network is NetworkName(Name)
	Type    NetworkType  // one of NAT, Transparent, L2Bridge, L2Tunnel, Overlay
	VNI     uint32       // overlay (4096-65535, required), l2tunnel (4096-16777215, optional)
	Subnet  netip.Prefix // the network's subnet; host bits are cleared
	Gateway netip.Addr   // the subnet's next hop, inside Subnet
	Adapter string       // host NIC (NetAdapterName): required for transparent, l2bridge, l2tunnel; optional for overlay
	VTEP    netip.Addr   // this host's underlay address: overlay's ProviderAddress (required)
	// Persistent keeps the network across HNS restarts; false sets
	// EnableNonPersistent, and HNS forgets the network when it restarts.
	Persistent bool
}

func typeNames() string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// NetworkName is the HNS name of vxnet's network name.
func NetworkName(name string) string { return NamePrefix + name }

// EndpointName is the HNS name of endpoint name on vxnet's network.
func EndpointName(network, name string) string { return NamePrefix + network + "-" + name }

// checked is a NetworkSpec that passed check, with its addresses
// normalised.
type checked struct {
	NetworkSpec
	typ NetworkType
}

// check validates s. Errors name the network, the field and the value.
func (s NetworkSpec) check() (checked, error) {
	c := checked{NetworkSpec: s}
	if s.Name == "" {
		return c, fmt.Errorf("hns: network name is empty")
	}
	if !slices.Contains(types, s.Type) {
		return c, fmt.Errorf("hns: network %q: unknown type %q: want %s", s.Name, s.Type, typeNames())
	}
	c.typ = s.Type
	if !s.Subnet.IsValid() || s.Subnet.Addr().Is4In6() {
		return c, fmt.Errorf("hns: network %q: invalid subnet %q", s.Name, s.Subnet.String())
	}
	c.Subnet = s.Subnet.Masked()
	if s.Subnet.Addr().Is4() {
		c.Gateway = s.Gateway.Unmap()
	}
	switch {
	case !c.Gateway.IsValid():
		return c, fmt.Errorf("hns: network %q: gateway is required (HNS needs a next hop for subnet %s)", s.Name, c.Subnet)
	case !c.Subnet.Contains(c.Gateway):
		return c, fmt.Errorf("hns: network %q: gateway %s outside subnet %s", s.Name, c.Gateway, c.Subnet)
	case c.Gateway == c.Subnet.Addr() && c.Subnet.Bits() < c.Gateway.BitLen()-1:
		return c, fmt.Errorf("hns: network %q: gateway %s is the address of subnet %s", s.Name, c.Gateway, c.Subnet)
	}
	switch c.typ {
	case Transparent, L2Bridge, L2Tunnel:
		if s.Adapter == "" {
			return c, fmt.Errorf("hns: network %q: adapter is required for type %s (the host NIC to bind)", s.Name, s.Type)
		}
	case NAT:
		c.Adapter = ""
	}
	return c, c.checkOverlay()
}

// checkOverlay validates the VXLAN fields of overlay and l2tunnel.
func (c *checked) checkOverlay() error {
	switch c.typ {
	case Overlay:
		if c.VNI < MinVNI || c.VNI > MaxOverlayVNI {
			return fmt.Errorf("hns: network %q: VNI %d out of range %d-%d (HNS isolation IDs are 16 bits)", c.Name, c.VNI, MinVNI, MaxOverlayVNI)
		}
		c.VTEP = c.VTEP.Unmap()
		if !c.VTEP.IsValid() || c.VTEP.IsUnspecified() || c.VTEP.IsMulticast() {
			return fmt.Errorf("hns: network %q: VTEP %q: want this host's underlay address", c.Name, c.VTEP.String())
		}
	case L2Tunnel:
		if c.VNI != 0 && (c.VNI < MinVNI || c.VNI > MaxVNI) {
			return fmt.Errorf("hns: network %q: VNI %d out of range %d-%d", c.Name, c.VNI, MinVNI, MaxVNI)
		}
	default:
		c.VNI = 0
	}
	return nil
}

// defaultRoute is the route to everything through gw.
func defaultRoute(gw netip.Addr) Route {
	dst := "0.0.0.0/0"
	if gw.Is6() {
		dst = "::/0"
	}
	return Route{NextHop: gw.String(), DestinationPrefix: dst}
}

// BuildNetwork returns the HNS network for s. Errors name the network, the
// field and the value: unknown driver, invalid subnet, gateway missing or
// outside the subnet, missing adapter, overlay VNI outside 4096-65535,
// missing VTEP.
func BuildNetwork(s NetworkSpec) (Network, error) {
	c, err := s.check()
	if err != nil {
		return Network{}, err
	}
	subnet := Subnet{IpAddressPrefix: c.Subnet.String(), Routes: []Route{defaultRoute(c.Gateway)}}
	n := Network{Name: NetworkName(c.Name), Type: c.typ, SchemaVersion: schemaV2}
	if !c.Persistent {
		n.Flags |= EnableNonPersistent
	}
	if c.Adapter != "" {
		n.Policies = append(n.Policies, networkPolicy(NetworkPolicyNetAdapterName, NetAdapterName{NetworkAdapterName: c.Adapter}))
	}
	if c.typ == Overlay {
		n.Policies = append(n.Policies,
			networkPolicy(NetworkPolicyProviderAddress, ProviderAddressNetwork{ProviderAddress: c.VTEP.String()}),
			networkPolicy(NetworkPolicyVxlanPort, VxlanPort{Port: vxlan.DefaultPort}))
	}
	if c.VNI != 0 {
		subnet.Policies = []SubnetPolicy{subnetPolicy(SubnetPolicyVSID, VSID{IsolationId: c.VNI})}
	}
	n.Ipams = []Ipam{{Type: "Static", Subnets: []Subnet{subnet}}}
	return n, nil
}
