// Package driver holds vxnet's network drivers behind one interface: what
// each driver lets a network and its endpoints be, and what it programs on
// the host besides the switch. The agent asks the driver of a network
// before it creates the network or attaches an endpoint, and hands the
// host-side work of local drivers (nat's gateway and netfilter rules) to
// the driver's Host.
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
	"sort"
	"strings"
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
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool // no way out of the network
}

// Driver is one network driver.
type Driver interface {
	// Name is what `network create -d` takes.
	Name() string
	// Scope of the driver's networks.
	Scope() Scope
	// OptionKeys are the -o options the driver reads; the others belong to
	// IPAM.
	OptionKeys() []string
	// CheckOptions validates the driver's own -o options. Errors name the
	// option and the value.
	CheckOptions(opts map[string]string) error
	// Publishes reports whether endpoints may publish ports on the host.
	Publishes() bool
	// ContainerRoutes are the routes an endpoint's device gets besides its
	// subnet's.
	ContainerRoutes(n Network) []netip.Prefix
	// HostGateway reports whether the driver's networks need a gateway
	// port on their host (see Host).
	HostGateway() bool
}

var available = map[string]Driver{"overlay": overlay{}, "nat": nat{}, "l2tunnel": l2tunnel{},
	"transparent": transparent{}, "l2bridge": l2bridge{}}

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

// SplitOptions separates the driver's own options from the rest (IPAM's).
func SplitOptions(d Driver, opts map[string]string) (own, rest map[string]string) {
	keys := map[string]bool{}
	for _, k := range d.OptionKeys() {
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
