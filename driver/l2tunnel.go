package driver

import (
	"fmt"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/hns"
)

// l2tunnel sends every packet of an endpoint, same host included, over
// VXLAN to a designated policy host (-o policy-host=VTEP), which applies
// the network's policy and sends it on to the destination's host, or, for
// a destination outside the network, out through its gateway (masqueraded),
// unless the network is internal. Options:
//
//	policy-host=ADDR       the policy host's underlay address (required)
//	policy-allow=RULES     destinations let through, ahead of the deny rules
//	policy-deny=RULES      destinations dropped
//	policy-default=allow   or deny: what matches no rule
//	uplink=IFNAME          Windows only: the host NIC of the HNS L2Tunnel
//	                       network (Linux hair-pins over VXLAN and ignores it)
//
// RULES is a comma-separated list of ADDRESS or CIDR, each with an
// optional :PORT and /tcp or /udp (10.0.9.3:5201/tcp,10.0.8.0/24); an
// IPv6 one with a port in brackets ([fd00:9::/64]:22/tcp).
type l2tunnel struct{ base }

func (l2tunnel) Name() string { return "l2tunnel" }

func (l2tunnel) Help() string {
	return "every packet, same host included, goes over VXLAN to a policy\n" +
		"host (-o policy-host=ADDR, its underlay address), which applies\n" +
		"-o policy-allow=RULES, -o policy-deny=RULES (allow first) and\n" +
		"-o policy-default=allow|deny, then sends it on. RULES: ADDRESS or\n" +
		"CIDR, each with optional :PORT and /tcp or /udp, comma-separated\n" +
		"(IPv6 with a port in brackets: [fd00:9::/64]:22/tcp)."
}

func (l2tunnel) OptionKeys() []string {
	return []string{"policy-host", "policy-allow", "policy-deny", "policy-default", "uplink"}
}
func (l2tunnel) CheckOptions(opts map[string]string) error {
	_, _, err := L2TunnelPolicy(opts)
	return err
}

// Forwarding: the policy host applies the policy; every other host sends
// its endpoints' packets to it.
func (l2tunnel) Forwarding(n Network, h Here) (dataplane.NetworkSpec, error) {
	s, _ := base{}.Forwarding(n, h)
	host, policy, err := L2TunnelPolicy(n.Options)
	if err != nil {
		return s, err
	}
	if host == h.VTEP {
		s.Policy = policy
	} else {
		s.PolicyVTEP = host
		if !n.Internal && n.Gateway.IsValid() {
			s.GatewayAddrs = []netip.Addr{n.Gateway} // the policy host's gateway
		}
	}
	return s, nil
}

// ContainerRoutes: a default route, unless the network is internal: out
// through the policy host, which decides as for every other packet.
func (l2tunnel) ContainerRoutes(n Network) []netip.Prefix { return defaultRoute(n) }

// HostGateway: on the policy host, unless the network is internal.
func (l2tunnel) HostGateway(n Network, h GatewayHere) (bool, Gateway) {
	host, _, err := L2TunnelPolicy(n.Options)
	return err == nil && host == h.VTEP && !n.Internal, Gateway{Masquerade: true}
}

func (l2tunnel) Egress(n Network) bool { return !n.Internal }

func (l2tunnel) HNSNetwork(n Network, h Here) hns.NetworkSpec { return hnsNetwork(n, h, hns.L2Tunnel) }

// HNSEndpoint: this host's endpoints, with the policy as their ACL (HNS
// applies it where the endpoint is), the default last.
func (l2tunnel) HNSEndpoint(n Network, e hns.EndpointSpec) (hns.EndpointSpec, bool) {
	if e.Remote {
		return e, false
	}
	_, pol, err := L2TunnelPolicy(n.Options)
	if err != nil {
		return e, true
	}
	for _, r := range pol.Rules {
		e.ACL = append(e.ACL, hns.ACLRule{Allow: r.Allow, Remote: r.Dst, Port: r.Port, Proto: r.Proto})
	}
	all := netip.MustParsePrefix("0.0.0.0/0")
	if e.Addr.Addr().Is6() {
		all = netip.MustParsePrefix("::/0")
	}
	e.ACL = append(e.ACL, hns.ACLRule{Allow: pol.Default, Remote: all})
	return e, true
}

// L2TunnelPolicy reads an l2tunnel network's options: the policy host and
// the policy it applies. Errors name the option and the value.
func L2TunnelPolicy(opts map[string]string) (netip.Addr, *dataplane.Policy, error) {
	hs, ok := opts["policy-host"]
	if !ok {
		return netip.Addr{}, nil, fmt.Errorf("option policy-host is required for l2tunnel: the underlay address of the host that applies the policy (-o policy-host=ADDR)")
	}
	host, err := netip.ParseAddr(hs)
	if err != nil || host.IsUnspecified() || host.IsMulticast() {
		return netip.Addr{}, nil, fmt.Errorf("option policy-host=%q: want a host's underlay address", hs)
	}
	p := &dataplane.Policy{Default: true}
	switch d := opts["policy-default"]; d {
	case "", "allow":
	case "deny":
		p.Default = false
	default:
		return netip.Addr{}, nil, fmt.Errorf("option policy-default=%q: want allow or deny", d)
	}
	for _, k := range []string{"policy-allow", "policy-deny"} {
		rules, err := dataplane.ParsePolicyRules(opts[k], k == "policy-allow")
		if err != nil {
			return netip.Addr{}, nil, fmt.Errorf("option %s: %w", k, err)
		}
		p.Rules = append(p.Rules, rules...)
	}
	return host.Unmap(), p, nil
}
