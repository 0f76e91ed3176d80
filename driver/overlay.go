package driver

import (
	"net/netip"

	"github.com/vxnet/vxnet/hns"
)

// overlay is VXLAN between hosts: the switch does it all. Unless the
// network is internal, its containers reach the outside through the host
// they run on, as on Docker's overlay: every host with endpoints of the
// network has a gateway port holding the network's gateway address,
// which the switch answers locally (never over VXLAN), and the host
// forwards with masquerade; ports are published on the container's host,
// as nat does. On Windows HNS holds, besides this host's containers, a
// remote endpoint for every container on another host, behind that host's
// VTEP (as Docker's Windows overlay does).
type overlay struct{ base }

// Publishes: on the container's host, through its gateway; an internal
// network has none.
func (overlay) Publishes(n Network) bool { return !n.Internal }

// ContainerRoutes: a default route through this host's gateway, unless the
// network is internal.
func (overlay) ContainerRoutes(n Network) []netip.Prefix { return defaultRoute(n) }

// HostGateway: on every host with endpoints of the network, unless it is
// internal (closed: no way out, nothing published).
func (overlay) HostGateway(n Network, h GatewayHere) (bool, Gateway) {
	return h.Local && !n.Internal, Gateway{Masquerade: true}
}

func (overlay) Egress(n Network) bool { return !n.Internal }

func (overlay) Name() string { return "overlay" }

func (overlay) Help() string { return "containers on every host, on one VXLAN segment (the default)" }

func (overlay) HNSNetwork(n Network, h Here) hns.NetworkSpec { return hnsNetwork(n, h, hns.Overlay) }

// HNSEndpoint: every endpoint, other hosts' ones as remote endpoints. HNS
// overlay endpoints publish no ports (Windows publishes through a second
// endpoint on a NAT network).
func (overlay) HNSEndpoint(_ Network, e hns.EndpointSpec) (hns.EndpointSpec, bool) {
	e.Publish = nil
	return e, true
}
