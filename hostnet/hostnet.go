// Package hostnet is the host side of vxnet's networks, besides the
// switch: the gateway ports of networks whose router is this host (nat),
// the nftables rules for their masquerade and published ports, and the
// uplinks (host NICs) of networks on a physical segment (transparent,
// l2bridge) with their DHCP clients. The drivers decide what a host needs
// (package driver); the agent hands it to a Host, which makes it so.
package hostnet

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// Gateway is a network whose gateway port lives on this host.
type Gateway struct {
	Name    string
	Subnet  netip.Prefix
	Gateway netip.Addr // the port's address: the containers' router
	// Subnet6 and Gateway6: a dual-stack network's IPv6 side (Subnet is
	// then IPv4); the port holds both addresses, and everything said of
	// Subnet holds for Subnet6 too. Invalid otherwise.
	Subnet6    netip.Prefix
	Gateway6   netip.Addr
	Masquerade bool // its packets to the outside leave with the host's address
	// Routed: the host routes between this network and the other routed
	// ones (nat networks reach each other). Otherwise nothing enters the
	// network through the host but replies and published ports.
	Routed bool
	// DNSFrom are containers of this host whose DNS queries leaving
	// through the gateway (to any server, on port 53) go to vxnet's
	// resolver at Gateway:53 instead (Gateway6:53 for their IPv6
	// addresses): containers a runtime configured with a resolver of its
	// own (Docker's), which forwards to the outside what it does not
	// know. Sorted.
	DNSFrom []netip.Addr
	// DNSOnly: a closed network's gateway, there for DNSFrom alone: the
	// host takes their DNS queries and refuses everything else from the
	// network (an internal network's Docker containers).
	DNSOnly bool
	// MeshFrom are this host's routing-mesh addresses on the network (one
	// per family) and MeshTo the VIPs of its services with published
	// ports: what the host sends out of the gateway to one of MeshTo (a
	// published port's connection, DNATed to the VIP) leaves from the
	// MeshFrom address of its family, so that the replies come back to
	// this host.
	MeshFrom, MeshTo []netip.Addr
}

// side is n's subnet and gateway of one family, if it has that family.
func (n Gateway) side(v6 bool) (subnet netip.Prefix, gateway netip.Addr, ok bool) {
	if n.Subnet.Addr().Is6() == v6 {
		return n.Subnet, n.Gateway, n.Subnet.IsValid()
	}
	if v6 && n.Subnet6.IsValid() {
		return n.Subnet6, n.Gateway6, true
	}
	return netip.Prefix{}, netip.Addr{}, false
}

// DNSGateways are the addresses vxnet's resolver listens on for n's
// DNSFrom: the gateway of each family some of them have.
func (n Gateway) DNSGateways() []netip.Addr {
	var out []netip.Addr
	for _, v6 := range []bool{false, true} {
		if _, gw, ok := n.side(v6); ok && len(n.dnsFrom(v6)) > 0 {
			out = append(out, gw)
		}
	}
	return out
}

// Guard are the host's own ports that containers may not reach through a
// gateway: the underlay's VXLAN port (a container would otherwise send
// VXLAN frames with its host's address into any network, and other
// hosts would take them) and the gossip port.
type Guard struct {
	VXLANPort, GossipPort uint16
	// SysctlDir is where the host's sysctls are written: /proc/sys, or
	// the host's seen from a container whose own is read-only (a managed
	// Docker plugin: /host/proc/sys). Empty: /proc/sys.
	SysctlDir string
}

// Published is a port of a local endpoint published on the host's
// addresses: HostPort on the host to ContainerPort of Addr.
type Published struct {
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp" or "udp"
	Network       string
	Endpoint      string
	Addr          netip.Addr
}

// GatewayPrefix starts the name of every gateway device, so one netfilter
// rule can tell traffic between NAT networks from traffic leaving the host.
const GatewayPrefix = "vxg-"

// GatewayDevice is the host-side device name of a network's gateway:
// GatewayPrefix and 8 hex digits of the name's hash (interface names are at
// most 15 characters; network names are longer).
func GatewayDevice(network string) string {
	h := sha256.Sum256([]byte(network))
	return GatewayPrefix + hex.EncodeToString(h[:4])
}
