package hns

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// MaxACLRules bounds EndpointSpec.ACL (each rule takes one or two HNS
// priorities above ACLBasePriority).
const MaxACLRules = 1000

// ACLBasePriority is the HNS priority of the first ACL rule; the rules
// after it get the next ones, so that the first match decides.
const ACLBasePriority = 100

// EndpointSpec is what vxnet wants of one endpoint of a network on this
// host. Fields a driver does not use are ignored.
type EndpointSpec struct {
	Name    string       // the HNS endpoint is EndpointName(network, Name)
	Addr    netip.Prefix // the endpoint's address and prefix length, inside the network's subnet
	MAC     string       // "02-42-0a-00-09-02" or "02:42:0a:00:09:02"; written in HNS's form, 02-42-0A-00-09-02; required when Remote
	Remote  bool         // overlay: a container on another host
	VTEP    netip.Addr   // Remote: its host's underlay address (ProviderAddress endpoint policy)
	Publish []PortMap    // nat: ports published on the host (PortMapping policies)
	ACL     []ACLRule    // l2tunnel: allow/deny by remote address and port (ACL policies), first match decides
	// Namespace is the HNS namespace (a container's: what a CNI runtime
	// passes as CNI_NETNS) the endpoint is attached to; empty for one the
	// runtime attaches itself.
	Namespace string
}

// PortMap is one published port: the host's HostPort to the endpoint's
// ContainerPort.
type PortMap struct {
	HostPort      uint16
	ContainerPort uint16
	Proto         string // "tcp" or "udp"
}

// ACLRule allows or denies the endpoint's traffic to Remote, and when Port
// is set, to that TCP or UDP port (Proto "tcp" or "udp"; empty for both).
// A rule without a port matches every protocol unless Proto is set.
type ACLRule struct {
	Allow  bool
	Remote netip.Prefix
	Port   uint16
	Proto  string // "", "tcp" or "udp"
}

// BuildEndpoint returns the HNS endpoint for e on network n, whose HNS ID
// is networkID. Policies per driver: nat gets OutBoundNAT (the subnet
// excepted) and a PortMapping per published port; a local overlay endpoint
// gets OutBoundNAT; a remote one gets the remote flag and a ProviderAddress
// policy (its host's VTEP); an l2tunnel endpoint gets its ACL. Local
// endpoints route everything through the gateway. Errors name the network,
// the endpoint, the field and the value.
func BuildEndpoint(n NetworkSpec, networkID string, e EndpointSpec) (Endpoint, error) {
	c, err := n.check()
	if err != nil {
		return Endpoint{}, err
	}
	if e.Name == "" {
		return Endpoint{}, fmt.Errorf("hns: network %q: endpoint name is empty", c.Name)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("hns: endpoint %q on network %q: %s", e.Name, c.Name, fmt.Sprintf(format, args...))
	}
	ep := Endpoint{Name: EndpointName(c.Name, e.Name), HostComputeNetwork: networkID, SchemaVersion: schemaV2}
	addr := e.Addr.Addr()
	switch {
	case !e.Addr.IsValid() || addr.Is4In6():
		return Endpoint{}, fail("invalid address %q", e.Addr.String())
	case !c.Subnet.Contains(addr):
		return Endpoint{}, fail("address %s outside subnet %s", e.Addr, c.Subnet)
	case addr == c.Gateway:
		return Endpoint{}, fail("address %s is the gateway", e.Addr)
	}
	ep.IpConfigurations = []IpConfig{{IpAddress: addr.String(), PrefixLength: uint8(e.Addr.Bits())}}
	if ep.MacAddress, err = normalizeMAC(e.MAC); err != nil {
		return Endpoint{}, fail("%v", err)
	}
	if e.Remote {
		if err := remote(c, e, &ep); err != nil {
			return Endpoint{}, fail("%v", err)
		}
		return ep, nil
	}
	ep.Routes = []Route{defaultRoute(c.Gateway)}
	if c.typ == NAT || c.typ == Overlay {
		ep.Policies = append(ep.Policies, endpointPolicy(EndpointPolicyOutBoundNAT, OutboundNat{Exceptions: []string{c.Subnet.String()}}))
	}
	pm, err := portMappings(c, e.Publish)
	if err != nil {
		return Endpoint{}, fail("%v", err)
	}
	acl, err := acls(c, e.ACL)
	if err != nil {
		return Endpoint{}, fail("%v", err)
	}
	ep.Policies = append(append(ep.Policies, pm...), acl...)
	return ep, nil
}

// remote makes ep a remote endpoint behind e.VTEP.
func remote(c checked, e EndpointSpec, ep *Endpoint) error {
	switch {
	case c.typ != Overlay:
		return fmt.Errorf("remote endpoints need type Overlay, not %s", c.typ)
	case ep.MacAddress == "":
		return fmt.Errorf("MAC is required for a remote endpoint")
	case !e.VTEP.IsValid() || e.VTEP.IsUnspecified() || e.VTEP.IsMulticast():
		return fmt.Errorf("VTEP %q: want the underlay address of the endpoint's host", e.VTEP.String())
	case len(e.Publish) > 0 || len(e.ACL) > 0:
		return fmt.Errorf("a remote endpoint takes no published ports or ACL rules")
	}
	ep.Flags |= EndpointFlagsRemoteEndpoint
	ep.Policies = []EndpointPolicy{endpointPolicy(EndpointPolicyProviderAddress, ProviderAddressEndpoint{ProviderAddress: e.VTEP.Unmap().String()})}
	return nil
}

// normalizeMAC returns mac in HNS's form (upper-case, dash-separated), ""
// for "".
func normalizeMAC(mac string) (string, error) {
	if mac == "" {
		return "", nil
	}
	hw, err := net.ParseMAC(mac)
	switch {
	case err != nil || len(hw) != 6 || strings.Contains(mac, "."):
		return "", fmt.Errorf("MAC %q: want six bytes, 02-42-0a-00-09-02 or 02:42:0a:00:09:02", mac)
	case hw[0]&1 != 0:
		return "", fmt.Errorf("MAC %q is a multicast address", mac)
	case [6]byte(hw) == [6]byte{}:
		return "", fmt.Errorf("MAC %q is all zeros", mac)
	}
	return strings.ToUpper(strings.ReplaceAll(hw.String(), ":", "-")), nil
}

// portMappings returns the PortMapping policies of published ports.
func portMappings(c checked, ps []PortMap) ([]EndpointPolicy, error) {
	if len(ps) > 0 && c.typ != NAT {
		return nil, fmt.Errorf("publish: type %s publishes no ports (NAT does)", c.typ)
	}
	out := make([]EndpointPolicy, 0, len(ps))
	for _, p := range ps {
		proto := protocolNumber(p.Proto)
		switch {
		case proto == 0:
			return nil, fmt.Errorf("publish %d:%d: protocol %q: want tcp or udp", p.HostPort, p.ContainerPort, p.Proto)
		case p.HostPort == 0 || p.ContainerPort == 0:
			return nil, fmt.Errorf("publish %d:%d/%s: ports must be 1-65535", p.HostPort, p.ContainerPort, p.Proto)
		}
		out = append(out, endpointPolicy(EndpointPolicyPortMapping, PortMapping{Protocol: proto, InternalPort: p.ContainerPort, ExternalPort: p.HostPort}))
	}
	return out, nil
}

// acls returns the ACL policies of rules: Out-direction switch rules with
// rising priority numbers, so that the first rule that matches decides. A
// rule with a port and no protocol becomes two, TCP and UDP, at one
// priority.
func acls(c checked, rules []ACLRule) ([]EndpointPolicy, error) {
	switch {
	case len(rules) > 0 && c.typ != L2Tunnel:
		return nil, fmt.Errorf("acl: type %s takes no ACL rules (L2Tunnel does)", c.typ)
	case len(rules) > MaxACLRules:
		return nil, fmt.Errorf("acl: %d rules, more than %d", len(rules), MaxACLRules)
	}
	var out []EndpointPolicy
	for i, r := range rules {
		if !r.Remote.IsValid() {
			return nil, fmt.Errorf("acl rule %d: invalid remote %q", i, r.Remote.String())
		}
		protos := []string{r.Proto}
		switch {
		case r.Proto != "" && protocolNumber(r.Proto) == 0:
			return nil, fmt.Errorf("acl rule %d: protocol %q: want tcp, udp or none", i, r.Proto)
		case r.Proto == "" && r.Port != 0:
			protos = []string{"tcp", "udp"}
		}
		a := ACL{Action: ACLActionBlock, Direction: ACLDirectionOut, RemoteAddresses: prefixString(r.Remote),
			RuleType: ACLRuleTypeSwitch, Priority: uint16(ACLBasePriority + i)}
		if r.Allow {
			a.Action = ACLActionAllow
		}
		if r.Port != 0 {
			a.RemotePorts = strconv.Itoa(int(r.Port))
		}
		for _, p := range protos {
			if p != "" {
				a.Protocols = itoa(protocolNumber(p))
			}
			out = append(out, endpointPolicy(EndpointPolicyACL, a))
		}
	}
	return out, nil
}

// prefixString writes a one-address prefix as the address alone.
func prefixString(p netip.Prefix) string {
	p = p.Masked()
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
