package plan

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/tables"
)

// State is what the host's data plane, DNS and HNS should hold.
type State struct {
	Forwarding   []dataplane.NetworkSpec // by VNI
	DNSNetworks  []dns.Network
	DNSEndpoints []dns.Endpoint
	// HNSNetworks and HNSEndpoints (by network) are empty without HNS.
	HNSNetworks  []hns.NetworkSpec
	HNSEndpoints map[string][]hns.EndpointSpec
	Notes        []Note
}

// Make plans the host's state. The host side (HostSide) is set up first:
// in.Gateways and in.Uplinks say what of it is there.
func Make(in Input) State {
	var st State
	nets, notes := networks(in)
	st.Notes = notes
	specs := map[string]*dataplane.NetworkSpec{}
	byName := map[string]inSight{}
	routers := dhcpRouters(in)
	for _, n := range nets {
		here := driver.Here{VTEP: in.VTEP, Gateway: in.Gateways[n.row.Name], DHCPRouter: routers[n.row.Name]}
		name, err := n.d.Uplink(n.dn)
		if err != nil {
			st.Notes = append(st.Notes, Note{Network: n.row.Name, Reason: err.Error()})
			continue
		}
		if name != "" {
			here.Uplink = in.Uplinks[name] // nil: unavailable here (the agent says so)
		}
		s, err := n.d.Forwarding(n.dn, here)
		if err != nil {
			st.Notes = append(st.Notes, Note{Network: n.row.Name, Reason: err.Error()})
			continue
		}
		s.Encrypted = driver.Encrypted(n.row.Options)
		s.ClampMSS = driver.ClampMSS(n.row.Options, NetworkMTU(in.MTU, n.row.Options))
		n.here = here
		specs[n.row.Name], byName[n.row.Name] = &s, n
		st.DNSNetworks = append(st.DNSNetworks, dns.Network{Name: n.row.Name, Scope: dnsScope(n.d), Internal: n.row.Internal})
		if in.HNS {
			st.HNSNetworks = append(st.HNSNetworks, n.d.HNSNetwork(n.dn, here))
		}
	}
	eps, notes := endpoints(in, byName)
	st.Notes = append(st.Notes, notes...)
	kept := eps[:0]
	for _, ep := range eps {
		n := byName[ep.Network]
		if ep.Mesh && ep.Host == in.Self {
			// This host's routing-mesh address: its gateway's.
			if in.Gateways[ep.Network] != nil && ep.State == "" {
				for _, p := range ep.Addrs {
					specs[ep.Network].GatewayAddrs = append(specs[ep.Network].GatewayAddrs, p.Addr())
				}
			}
			continue
		}
		if spec, ok := forwardingEndpoint(in, n, ep); ok {
			specs[ep.Network].Endpoints = append(specs[ep.Network].Endpoints, spec)
		} else if !reachedElsewhere(in, n, ep) {
			continue // a stale row of this host's, or one with no way to it
		}
		if !ep.Mesh { // a host's mesh address has no name
			st.DNSEndpoints = append(st.DNSEndpoints, dnsEndpoint(in, ep))
		}
		kept = append(kept, ep)
	}
	st.DNSEndpoints = append(st.DNSEndpoints, heldNames(in, byName, kept)...)
	st.Notes = append(st.Notes, services(in, specs, st.DNSNetworks, kept)...)
	for _, s := range specs {
		st.Forwarding = append(st.Forwarding, *s)
	}
	sort.Slice(st.Forwarding, func(i, j int) bool { return st.Forwarding[i].VNI < st.Forwarding[j].VNI })
	if in.HNS {
		st.HNSEndpoints = hnsEndpoints(in, byName, kept)
	}
	return st
}

func dnsScope(d driver.Driver) dns.Scope {
	if d.Scope() == driver.ScopeLocal {
		return dns.ScopeLocal
	}
	return dns.ScopeGlobal
}

// dhcpRouters are, by network, the router the first local endpoint's DHCP
// lease named.
func dhcpRouters(in Input) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	eps := append([]tables.Endpoint(nil), in.Endpoints...)
	sort.Slice(eps, func(i, j int) bool { return eps[i].Key() < eps[j].Key() })
	for _, ep := range eps {
		if _, local := in.Local[ep.Key()]; !local || ep.DHCP == nil || out[ep.Network].IsValid() {
			continue
		}
		if r, err := netip.ParseAddr(ep.DHCP.Router); err == nil && r.Is4() {
			out[ep.Network] = r
		}
	}
	return out
}

// forwardingEndpoint is ep in the switch's table: at its port when local,
// behind its host's VTEP when the driver reaches other hosts over VXLAN.
func forwardingEndpoint(in Input, n inSight, ep tables.Endpoint) (dataplane.EndpointSpec, bool) {
	spec := dataplane.EndpointSpec{MAC: ep.MAC}
	for _, p := range ep.Addrs {
		spec.Addrs = append(spec.Addrs, p.Addr())
	}
	if l, local := in.Local[ep.Key()]; local {
		spec.Port = l.Port
		return spec, l.Port != nil
	}
	if !n.d.ReachesOverVXLAN(n.here) || !ep.VTEP.IsValid() || ep.VTEP == in.VTEP {
		return spec, false
	}
	spec.VTEP, spec.Peer = ep.VTEP, true // another agent's row: vxnet
	return spec, true
}

// reachedElsewhere reports whether an endpoint the switch leaves alone
// still answers in DNS: an HNS endpoint of this host (HNS forwards for
// it), or one reached across its network's physical segment.
func reachedElsewhere(in Input, n inSight, ep tables.Endpoint) bool {
	if _, local := in.Local[ep.Key()]; local {
		return true
	}
	return !n.d.ReachesOverVXLAN(n.here)
}

// heldNames are the DNS records of the held endpoints (Input.Held) of the
// networks in sight that nothing in sight has taken the name (in any
// letter case) or an address of since.
func heldNames(in Input, nets map[string]inSight, kept []tables.Endpoint) []dns.Endpoint {
	type netName struct{ network, name string }
	named := map[netName]bool{}
	addrs := map[netip.Addr]bool{}
	claim := func(ep tables.Endpoint) {
		for _, n := range append([]string{ep.Name}, ep.Aliases...) {
			named[netName{ep.Network, strings.ToLower(n)}] = true
		}
		for _, p := range ep.Addrs {
			addrs[p.Addr()] = true
		}
	}
	for _, ep := range kept {
		claim(ep)
	}
	held := append([]tables.Endpoint(nil), in.Held...)
	sort.Slice(held, func(i, j int) bool { return held[i].Key() < held[j].Key() })
	var out []dns.Endpoint
	for _, ep := range held {
		n, ok := nets[ep.Network]
		if !ok || ep.Mesh || ep.State != "" || ep.Host == in.Self || len(ep.Addrs) == 0 || named[netName{ep.Network, strings.ToLower(ep.Name)}] {
			continue
		}
		if n.d.ReachesOverVXLAN(n.here) && !ep.VTEP.IsValid() {
			continue // a row with no way to it, as forwardingEndpoint says
		}
		taken := false
		for _, p := range ep.Addrs {
			taken = taken || addrs[p.Addr()]
		}
		if taken {
			continue
		}
		var aliases []string
		for _, a := range ep.Aliases {
			if !named[netName{ep.Network, strings.ToLower(a)}] {
				aliases = append(aliases, a)
			}
		}
		ep.Aliases, ep.Service, ep.SRVPorts = aliases, "", nil
		claim(ep)
		out = append(out, dnsEndpoint(in, ep))
	}
	return out
}

func dnsEndpoint(in Input, ep tables.Endpoint) dns.Endpoint {
	addrs := make([]netip.Addr, len(ep.Addrs))
	for i, p := range ep.Addrs {
		addrs[i] = p.Addr()
	}
	return dns.Endpoint{Name: ep.Name, Aliases: ep.Aliases, Service: ep.Service, Network: ep.Network, Addrs: addrs,
		Local: ep.Host == in.Self, Ports: dns.ParsePorts(ep.SRVPorts)}
}

// hnsEndpoints are the endpoints HNS should hold, by network: this host's,
// and others' where the driver wants them (overlay's remote endpoints).
func hnsEndpoints(in Input, nets map[string]inSight, eps []tables.Endpoint) map[string][]hns.EndpointSpec {
	out := map[string][]hns.EndpointSpec{}
	for _, ep := range eps {
		n := nets[ep.Network]
		if len(ep.Addrs) == 0 {
			continue
		}
		e := hns.EndpointSpec{Name: ep.Name, Addr: ep.Addrs[0], MAC: ep.MAC.String(), Remote: ep.Host != in.Self}
		if e.Remote {
			e.VTEP = ep.VTEP
		} else {
			e.Namespace = ep.HNSNamespace
			for _, s := range ep.Publish {
				if p, err := driver.ParsePublish(s); err == nil {
					e.Publish = append(e.Publish, hns.PortMap{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
				}
			}
		}
		if e, ok := n.d.HNSEndpoint(n.dn, e); ok {
			out[ep.Network] = append(out[ep.Network], e)
		}
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	return out
}

// NetworkMTU is the MTU of the containers of a network with options opts
// on a host whose MTU is mtu: sealing takes its bytes on an encrypted
// network.
func NetworkMTU(mtu int, opts map[string]string) int {
	if driver.Encrypted(opts) {
		return mtu - seal.Overhead
	}
	return mtu
}

// services puts the vip-mode services of the networks in sight into
// their forwarding specs (the tasks: the endpoints kept that joined, up)
// and their VIPs into DNS.
func services(in Input, specs map[string]*dataplane.NetworkSpec, dnsNets []dns.Network, eps []tables.Endpoint) (notes []Note) {
	holder := endpointHolders(eps)
	for _, s := range in.Services {
		spec := specs[s.Network]
		if s.Mode != tables.ModeVIP || spec == nil || len(s.VIPs) == 0 {
			continue
		}
		if h, taken := vipHolder(s, holder); taken != "" {
			// Never a name that leads to an unrelated endpoint: the
			// service is out until the address is the VIP's alone.
			notes = append(notes, Note{Network: s.Network, Reason: fmt.Sprintf("service %s: VIP %v is endpoint %s's address: the service is left out", s.Name, h, taken)})
			continue
		}
		ss := dataplane.ServiceSpec{Name: s.Key(), VIPs: s.VIPs, Counters: in.ServiceCounters[s.Key()]}
		for _, ep := range eps {
			if ep.Network != s.Network || !strings.EqualFold(ep.Service, s.Name) || ep.State != "" || ep.Mesh {
				continue
			}
			ts := dataplane.TaskSpec{Counters: in.TaskCounters[TaskKey(s.Key(), ep)]}
			for _, p := range ep.Addrs {
				ts.Addrs = append(ts.Addrs, p.Addr())
			}
			ss.Tasks = append(ss.Tasks, ts)
		}
		spec.Services = append(spec.Services, ss)
		for i := range dnsNets {
			if dnsNets[i].Name == s.Network {
				if dnsNets[i].VIPs == nil {
					dnsNets[i].VIPs = map[string][]netip.Addr{}
				}
				dnsNets[i].VIPs[s.Name] = s.VIPs
			}
		}
	}
	return notes
}

// endpointHolders names the endpoint of each address, by network.
func endpointHolders(eps []tables.Endpoint) map[string]map[netip.Addr]string {
	holder := map[string]map[netip.Addr]string{}
	for _, ep := range eps {
		if holder[ep.Network] == nil {
			holder[ep.Network] = map[netip.Addr]string{}
		}
		for _, p := range ep.Addrs {
			holder[ep.Network][p.Addr()] = ep.Network + "/" + ep.Name + "@" + ep.Host
		}
	}
	return holder
}

// vipHolder names an endpoint of s's network that holds one of s's VIPs,
// if any.
func vipHolder(s tables.Service, holder map[string]map[netip.Addr]string) (netip.Addr, string) {
	for _, v := range s.VIPs {
		if h, ok := holder[s.Network][v]; ok {
			return v, h
		}
	}
	return netip.Addr{}, ""
}
