// Package driver holds vxnet's network drivers behind one interface, one
// file each: what a driver lets a network and its endpoints be, and what
// it decides for a network on a host — its entry in the switch's table,
// the host NIC it needs, how other hosts' endpoints are reached, what HNS
// holds. The agent asks the driver before it creates a network or
// attaches an endpoint; package plan asks it what a host should run; the
// host side it asks for (nat's gateways and rules, uplinks) is hostnet's
// work. Nothing outside this package compares driver names.
//
// Drivers, as the Windows container networking documentation defines them:
//
//	overlay      VXLAN between hosts; addresses from cluster-managed subnets;
//	             discovery local and global.
//	nat          endpoints on an internal switch of one host; out through a
//	             gateway port on the host and the host's masquerade; ports
//	             published from the host; several NAT networks route
//	             between each other; discovery local.
//	l2tunnel     every packet hair-pinned over VXLAN to a policy host, which
//	             applies an allow/deny policy and sends it on; addresses as
//	             overlay; discovery local and global.
//	transparent  endpoints on a physical segment through a host NIC, each
//	             with its own MAC; cross-subnet through the segment's router.
//	l2bridge     the same, but the segment only sees the host's MAC: frames
//	             are rewritten both ways and ARP for endpoints is answered
//	             with the host's MAC.
package driver

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/hns"
)

// Scope says where a network is known and usable.
type Scope string

const (
	// ScopeGlobal networks span the cluster: endpoints on any host.
	ScopeGlobal Scope = "global"
	// ScopeLocal networks belong to the host that created them: endpoints
	// attach there only.
	ScopeLocal Scope = "local"
)

// Network is what a driver needs to know of a network.
type Network struct {
	Name     string
	VNI      uint32
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Subnet6  netip.Prefix      // a dual-stack network's IPv6 subnet
	Gateway6 netip.Addr        // and its gateway
	Internal bool              // no way out of the network
	Options  map[string]string // -o options (the driver reads its own)
}

// Here is what a driver knows of this host when it plans one of its
// networks.
type Here struct {
	VTEP netip.Addr // this host's underlay address
	// Gateway is the network's gateway port on this host (drivers with
	// HostGateway), nil when it has none yet.
	Gateway *dataplane.Port
	// Uplink is the network's host NIC, opened (drivers whose Uplink
	// names one); nil when it is unavailable on this host.
	Uplink *dataplane.Uplink
	// DHCPRouter is the router a local endpoint's DHCP lease named, if
	// any: it wins over the network's --gateway.
	DHCPRouter netip.Addr
}

// Driver is one network driver: what its networks and endpoints may be,
// and what a host does for them. A sixth driver is one new file.
type Driver interface {
	// Name is what `network create -d` takes.
	Name() string
	// Help describes the driver for `network create --help`, in lines of
	// at most 70 characters.
	Help() string
	// Scope of the driver's networks.
	Scope() Scope
	// OptionKeys are the -o options the driver reads; the others belong to
	// IPAM.
	OptionKeys() []string
	// CheckOptions validates the driver's own -o options. Errors name the
	// option and the value.
	CheckOptions(opts map[string]string) error
	// NeedsSubnet reports whether a network must be given its subnet (a
	// physical segment's) rather than be handed one from the pools.
	NeedsSubnet() bool
	// Publishes reports whether endpoints of n may publish ports on their
	// host.
	Publishes(n Network) bool
	// LeasesByDHCP reports whether the network's endpoints lease their
	// addresses from the segment's DHCP server instead of IPAM.
	LeasesByDHCP(n Network) bool
	// ContainerRoutes are the routes an endpoint's device gets besides its
	// subnet's.
	ContainerRoutes(n Network) []netip.Prefix
	// HostGateway says whether this host gives the network a gateway port
	// (package hostnet): the containers' way out through the host, and
	// the host's way in to its own containers; and how.
	HostGateway(n Network, h GatewayHere) (bool, Gateway)
	// Egress reports whether the network's containers reach beyond it
	// (network inspect shows it).
	Egress(n Network) bool
	// Uplink names the host NIC the network's endpoints reach their
	// segment through; "" for none. Errors name the option.
	Uplink(n Network) (string, error)
	// Forwarding is the switch's table entry for the network on this host,
	// its endpoints aside. An error leaves the network out of the table.
	Forwarding(n Network, h Here) (dataplane.NetworkSpec, error)
	// ReachesOverVXLAN reports whether, from this host, other hosts'
	// endpoints are reached through their host's VTEP (else across the
	// physical segment, and the switch leaves them alone).
	ReachesOverVXLAN(h Here) bool
	// HNSNetwork is the network as the Host Networking Service should hold
	// it on this host (Windows).
	HNSNetwork(n Network, h Here) hns.NetworkSpec
	// HNSEndpoint completes an endpoint's HNS spec (e.Remote: another
	// host's endpoint); false leaves it out of HNS.
	HNSEndpoint(n Network, e hns.EndpointSpec) (hns.EndpointSpec, bool)
}

// GatewayHere is what a driver knows of this host when it decides on a
// gateway.
type GatewayHere struct {
	VTEP    netip.Addr // this host's underlay address
	Creator bool       // this host created the network
	Local   bool       // this host has endpoints of the network
}

// Gateway is how a network's gateway on a host works.
type Gateway struct {
	Masquerade bool // what leaves through it takes the host's address
	Routed     bool // the host routes between it and the other routed networks
}

// Default is the driver of a network created without one.
const Default = "overlay"

// base holds what most drivers answer; each driver overrides the rest.
type base struct{}

func (base) Scope() Scope                                     { return ScopeGlobal }
func (base) OptionKeys() []string                             { return nil }
func (base) CheckOptions(map[string]string) error             { return nil }
func (base) NeedsSubnet() bool                                { return false }
func (base) Publishes(Network) bool                           { return false }
func (base) LeasesByDHCP(Network) bool                        { return false }
func (base) ContainerRoutes(Network) []netip.Prefix           { return nil }
func (base) HostGateway(Network, GatewayHere) (bool, Gateway) { return false, Gateway{} }
func (base) Egress(Network) bool                              { return false }
func (base) Uplink(Network) (string, error)                   { return "", nil }
func (base) ReachesOverVXLAN(Here) bool                       { return true }

// Forwarding: the network's VNI and subnet, and its gateway port if any.
func (base) Forwarding(n Network, h Here) (dataplane.NetworkSpec, error) {
	s := dataplane.NetworkSpec{VNI: n.VNI, Gateway: h.Gateway}
	if h.Gateway != nil && n.Gateway.IsValid() {
		s.GatewayAddrs = []netip.Addr{n.Gateway}
		// A dual-stack network's gateway holds its IPv6 address too,
		// unless it is there for DNS alone (an internal network's).
		if n.Gateway6.IsValid() && !n.Internal {
			s.GatewayAddrs = append(s.GatewayAddrs, n.Gateway6)
		}
	}
	if n.Subnet.IsValid() {
		s.Subnets = []netip.Prefix{n.Subnet}
	}
	if n.Subnet6.IsValid() {
		s.Subnets = append(s.Subnets, n.Subnet6)
	}
	return s, nil
}

// hnsNetwork is the HNS spec of n for a driver whose networks are of HNS
// type t.
func hnsNetwork(n Network, h Here, t hns.NetworkType) hns.NetworkSpec {
	return hns.NetworkSpec{Name: n.Name, Type: t, VNI: n.VNI, VTEP: h.VTEP, Adapter: n.Options["uplink"],
		Subnet: n.Subnet, Gateway: n.Gateway}
}

// HNSEndpoint: this host's endpoints only; the network itself reaches
// other hosts' containers.
func (base) HNSEndpoint(_ Network, e hns.EndpointSpec) (hns.EndpointSpec, bool) {
	return e, !e.Remote
}

// all are the drivers, in the order help lists them.
var all = []Driver{overlay{}, nat{}, l2tunnel{}, transparent{}, l2bridge{}}

var available = func() map[string]Driver {
	m := map[string]Driver{}
	for _, d := range all {
		m[d.Name()] = d
	}
	return m
}()

// All lists the drivers, the default first.
func All() []Driver { return all }

// Get returns the driver called name, or an error that says which exist.
func Get(name string) (Driver, error) {
	if d, ok := available[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("unknown driver %q: want %s", name, strings.Join(Names(), ", "))
}

// Names lists the available drivers.
func Names() []string {
	out := make([]string, 0, len(available))
	for n := range available {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// OptionKeys lists, sorted, the -o options d takes besides IPAM's: its own
// and the common ones it can honour (encrypted only where its networks
// can be).
func OptionKeys(d Driver) []string {
	keys := append(slices.Clone(d.OptionKeys()), commonKeys...)
	if !slices.Contains(encryptingDrivers, d.Name()) {
		keys = slices.DeleteFunc(keys, func(k string) bool { return k == OptEncrypted })
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// SplitOptions separates the driver's own options, and those every
// driver takes (options.go), from the rest (IPAM's).
func SplitOptions(d Driver, opts map[string]string) (own, rest map[string]string) {
	keys := map[string]bool{}
	for _, k := range append(d.OptionKeys(), commonKeys...) {
		keys[k] = true
	}
	for k, v := range opts {
		if keys[k] {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		} else {
			if rest == nil {
				rest = map[string]string{}
			}
			rest[k] = v
		}
	}
	return own, rest
}
