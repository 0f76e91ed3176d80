package driver

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vxnet/vxnet/hns"
)

// nat puts a host's endpoints on an internal switch with a gateway port on
// the host (a TUN device holding the network's gateway address). Packets to
// addresses outside the network leave through the gateway, and the host
// routes them: to another NAT network's gateway, or out with its source
// masqueraded (netfilter). Published ports are DNAT rules on the host.
type nat struct{ base }

func (nat) Name() string { return "nat" }

func (nat) Help() string {
	return "containers on this host only; they reach the outside through a\n" +
		"gateway device on the host (the subnet's gateway address) and the\n" +
		"host's masquerade, and publish ports with 'endpoint create -p'.\n" +
		"Several nat networks on one host route to each other."
}

func (nat) Scope() Scope           { return ScopeLocal }
func (nat) Publishes(Network) bool { return true }

func (nat) HNSNetwork(n Network, h Here) hns.NetworkSpec { return hnsNetwork(n, h, hns.NAT) }

// ContainerRoutes: a default route through the gateway, unless the
// network is internal.
func (nat) ContainerRoutes(n Network) []netip.Prefix { return defaultRoute(n) }

// defaultRoute is a default route of the subnet's family, unless the
// network is internal.
func defaultRoute(n Network) []netip.Prefix {
	if n.Internal {
		return nil
	}
	if n.Subnet.Addr().Is6() {
		return []netip.Prefix{netip.MustParsePrefix("::/0")}
	}
	if n.Subnet6.IsValid() { // dual stack: both families out
		return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
}

// HostGateway: every nat network has one on its host, internal ones too
// (the host reaches its containers through it; nothing is masqueraded for
// them); the host routes between nat networks.
func (nat) HostGateway(n Network, h GatewayHere) (bool, Gateway) {
	return h.Creator, Gateway{Masquerade: !n.Internal, Routed: true}
}

func (nat) Egress(n Network) bool { return !n.Internal }

// Publish is one published port: HOSTPORT on the host's addresses to
// CONTAINERPORT of an endpoint.
type Publish struct {
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	Proto         string `json:"proto"` // "tcp" or "udp"
}

// String is the -p form, HOSTPORT:CONTAINERPORT/PROTO.
func (p Publish) String() string {
	return fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
}

// ParsePublish parses -p HOSTPORT:CONTAINERPORT[/tcp|udp], or CONTAINERPORT
// alone for the same port on the host.
func ParsePublish(s string) (Publish, error) {
	p := Publish{Proto: "tcp"}
	spec := s
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		p.Proto = strings.ToLower(spec[i+1:])
		spec = spec[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return p, fmt.Errorf("publish %q: protocol %q: want tcp or udp", s, p.Proto)
		}
	}
	hostPart, ctrPart, two := strings.Cut(spec, ":")
	if !two {
		ctrPart = hostPart
	}
	port := func(what, v string) (uint16, error) {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("publish %q: %s port %q: want 1-65535 (HOSTPORT:CONTAINERPORT[/tcp|udp])", s, what, v)
		}
		return uint16(n), nil
	}
	var err error
	if p.HostPort, err = port("host", hostPart); err != nil {
		return p, err
	}
	if p.ContainerPort, err = port("container", ctrPart); err != nil {
		return p, err
	}
	return p, nil
}
