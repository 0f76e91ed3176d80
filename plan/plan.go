// Package plan says what one host should run, as a pure function of the
// tables (networks, endpoints) and of the host: the switch's forwarding
// table, the DNS records, the Host Networking Service's networks and
// endpoints (Windows), and the host side of its networks (gateway ports,
// published ports, uplinks). The agent watches the tables, plans, and
// applies the plan; nothing here touches a device, a socket or a lock, so
// every decision is tested with tables written by hand.
//
// A host plans in two steps, because the switch's table points at the
// host side: HostSide says what the host side needs (gateway ports,
// published ports, uplinks); the agent sets that up and puts what is there
// in Input.Gateways and Input.Uplinks; Make then says what the switch, DNS
// and HNS should hold.
//
// Each network's own decisions come from its driver (package driver); the
// plan decides what is in sight and what is left out: networks without a
// VNI, another host's local-scope networks, the second of two networks on
// one VNI, the second of two endpoints claiming one address. Every host
// that sees the same rows leaves out the same ones.
package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/tables"
)

// Input is what a host's plan is made from.
type Input struct {
	Self string     // this host's name
	VTEP netip.Addr // this host's underlay address
	HNS  bool       // the host programs the Host Networking Service
	// Networks are the winning creation of each name, with the subnet and
	// gateway IPAM holds for it now.
	Networks []tables.Network
	// Endpoints are every endpoint row in sight, this host's own records
	// among them (in place of the table's rows of the same key).
	Endpoints []tables.Endpoint
	// Local are this host's endpoints, by key.
	Local map[string]Local
	// Gateways are the gateway ports this host has, by network.
	Gateways map[string]*dataplane.Port
	// Uplinks are the host NICs opened for networks on a segment, by name;
	// a name asked for (Host.Uplinks) and missing is unavailable here.
	Uplinks map[string]*dataplane.Uplink
	// MTU is the containers' MTU (for options that derive from it).
	MTU int
	// Services are the service rows; ServiceCounters and TaskCounters
	// count their flows in the switch, by service key and by TaskKey
	// (the caller's, kept from one plan to the next; nil counts
	// nothing).
	Services        []tables.Service
	ServiceCounters map[string]*dataplane.ServiceCounters
	TaskCounters    map[string]*dataplane.TaskCounters
	// Held are the endpoints of hosts that are down, while the cluster
	// keeps their names for them (a restart, an upgrade). Their containers
	// keep their addresses, so DNS answers their names and aliases; nothing
	// is forwarded to them, and they count as no service's tasks.
	Held []tables.Endpoint
}

// meshAddrs are this host's routing-mesh addresses (its Mesh rows, up),
// by network.
func meshAddrs(in Input) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, ep := range in.Endpoints {
		if !ep.Mesh || ep.Host != in.Self || ep.State != "" {
			continue
		}
		for _, p := range ep.Addrs {
			out[ep.Network] = append(out[ep.Network], p.Addr())
		}
	}
	return out
}

// meshPublished are the published ports of network's vip services, each
// DNATed to the service's VIP of every family the mesh has an address
// of; g learns the VIPs its mesh addresses send to.
func meshPublished(in Input, network string, from []netip.Addr, g *hostnet.Gateway) []hostnet.Published {
	var out []hostnet.Published
	holder := endpointHolders(in.Endpoints)
	for _, s := range in.Services {
		if s.Network != network || s.Mode != tables.ModeVIP || len(s.Ports) == 0 {
			continue
		}
		if _, taken := vipHolder(s, holder); taken != "" {
			continue // left out (Make notes it): never DNAT to an unrelated endpoint
		}
		for _, vip := range s.VIPs {
			if !slices.ContainsFunc(from, func(a netip.Addr) bool { return a.Is6() == vip.Is6() }) {
				continue
			}
			g.MeshTo = append(g.MeshTo, vip)
			for _, p := range s.Ports {
				out = append(out, hostnet.Published{HostPort: p.Published, ContainerPort: p.Target, Proto: p.Proto,
					Network: network, Endpoint: "service " + s.Name, Addr: vip})
			}
		}
	}
	return out
}

// TaskKey names an endpoint of a service for Input.TaskCounters:
// service key, "|", NAME@HOST.
func TaskKey(serviceKey string, ep tables.Endpoint) string {
	return serviceKey + "|" + ep.Name + "@" + ep.Host
}

// Local is one of this host's endpoints.
type Local struct {
	// Port is its port on the switch; nil for an HNS endpoint, which HNS
	// forwards for (the switch does not).
	Port *dataplane.Port
}

// Note is something the plan left out, and why; the agent logs it.
type Note struct {
	Network  string // the network's name
	Endpoint string // NETWORK/NAME@HOST when an endpoint was left out
	Reason   string
}

func (n Note) String() string {
	if n.Endpoint != "" {
		return "endpoint " + n.Endpoint + ": " + n.Reason
	}
	return "network " + n.Network + ": " + n.Reason
}

// inSight is one network the host serves: its row and its driver.
type inSight struct {
	row  tables.Network
	d    driver.Driver
	dn   driver.Network
	here driver.Here // what the driver knows of this host (set by Make)
}

// DriverNetwork is what a driver sees of a network row.
func DriverNetwork(n tables.Network) driver.Network {
	return driver.Network{Name: n.Name, VNI: n.VNI, Subnet: n.Subnet, Gateway: n.Gateway, Subnet6: n.Subnet6, Gateway6: n.Gateway6, Internal: n.Internal, Options: n.Options}
}

// networks lists, by name, the networks this host serves: those with a VNI
// and a known driver, but another host's local-scope (nat) networks, and
// of two networks sharing a VNI the first by name.
func networks(in Input) ([]inSight, []Note) {
	rows := append([]tables.Network(nil), in.Networks...)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	var out []inSight
	var notes []Note
	vnis := map[uint32]string{}
	for _, n := range rows {
		d, err := driver.Get(n.Driver)
		switch {
		case n.VNI == 0:
			continue
		case err != nil:
			notes = append(notes, Note{Network: n.Name, Reason: err.Error()})
			continue
		case d.Scope() == driver.ScopeLocal && n.Creator != in.Self:
			continue // another host's own network
		}
		if other, dup := vnis[n.VNI]; dup {
			// Created at once on hosts that could not see each other.
			notes = append(notes, Note{Network: n.Name, Reason: fmt.Sprintf("shares VNI %d with network %s, first by name: left out", n.VNI, other)})
			continue
		}
		vnis[n.VNI] = n.Name
		out = append(out, inSight{row: n, d: d, dn: DriverNetwork(n)})
	}
	return out, notes
}

// endpoints lists, by key, the endpoints of the networks in, leaving out
// one that claims an address an earlier one of its network has (a row
// from a lost lease, a bad peer), rather than the whole table failing. The
// loser's host readdresses it when IPAM reports the lease lost.
func endpoints(in Input, nets map[string]inSight) ([]tables.Endpoint, []Note) {
	eps := append([]tables.Endpoint(nil), in.Endpoints...)
	sort.Slice(eps, func(i, j int) bool { return eps[i].Key() < eps[j].Key() })
	var out []tables.Endpoint
	var notes []Note
	taken := map[string]map[netip.Addr]string{}
	for _, ep := range eps {
		if _, ok := nets[ep.Network]; !ok || ep.State == tables.StateReaddressing {
			continue
		}
		if taken[ep.Network] == nil {
			taken[ep.Network] = map[netip.Addr]string{}
		}
		clash := ""
		for _, p := range ep.Addrs {
			if other, dup := taken[ep.Network][p.Addr()]; dup {
				clash = other
			}
		}
		if clash != "" {
			notes = append(notes, Note{Network: ep.Network, Endpoint: ep.Key() + "@" + ep.Host, Reason: "claims an address endpoint " + clash + " holds: left out"})
			continue
		}
		for _, p := range ep.Addrs {
			taken[ep.Network][p.Addr()] = ep.Name + "@" + ep.Host
		}
		out = append(out, ep)
	}
	return out, notes
}

// Host is the host side of a plan: what the agent sets up before the
// tables that point at it.
type Host struct {
	Gateways  []hostnet.Gateway   // this host's networks whose driver wants a gateway port
	Published []hostnet.Published // the ports this host's endpoints publish
	Uplinks   []string            // host NICs the networks in sight need, by name
}

// ClosedGateway reports whether internal network n gets, on a host with
// handed-over endpoints (Docker's containers), a gateway for their DNS
// alone (hostnet.Gateway's DNSOnly): if its driver gives its hosts a
// gateway when the network is not internal (overlay), and the gateway
// address is vxnet's own, not a segment's router.
func ClosedGateway(d driver.Driver, n tables.Network) bool {
	if !n.Internal || !n.Gateway.IsValid() || !noUplink(d, n) {
		return false
	}
	open := n
	open.Internal = false
	want, _ := d.HostGateway(DriverNetwork(open), driver.GatewayHere{Local: true})
	return want
}

// noUplink reports whether n's driver puts it on no physical segment.
func noUplink(d driver.Driver, n tables.Network) bool {
	name, err := d.Uplink(DriverNetwork(n))
	return err == nil && name == ""
}

// endpointFamilies is ep's first address of each family, its first
// address first.
func endpointFamilies(ep tables.Endpoint) []netip.Addr {
	out := []netip.Addr{ep.Addr()}
	for _, p := range ep.Addrs {
		if a := p.Addr(); a.Is6() != out[0].Is6() {
			return append(out, a)
		}
	}
	return out
}

// HostSide plans the host side.
func HostSide(in Input) Host {
	var h Host
	nets, _ := networks(in) // Make notes what is left out
	uplinks := map[string]bool{}
	local := map[string]bool{}
	// Endpoints handed over to their runtime keep its resolver (Docker's),
	// which forwards what it does not know through the gateway: to vxnet.
	handedOver := map[string][]netip.Addr{}
	mesh := meshAddrs(in)
	for network := range mesh {
		local[network] = true // the routing mesh needs the gateway here
	}
	for _, ep := range in.Endpoints {
		if _, ok := in.Local[ep.Key()]; ok {
			local[ep.Network] = true
			if ep.Handover && ep.State == "" {
				for _, p := range ep.Addrs { // both families: a dual-stack gateway takes each
					handedOver[ep.Network] = append(handedOver[ep.Network], p.Addr())
				}
			}
		}
	}
	for _, addrs := range handedOver {
		slices.SortFunc(addrs, netip.Addr.Compare)
	}
	for _, n := range in.Networks {
		// Every network whose driver wants one here, in sight or not: its
		// containers reach the host and beyond through it. Where HNS runs
		// (Windows), it does this part.
		d, err := driver.Get(n.Driver)
		if in.HNS || err != nil || !n.Subnet.IsValid() || !n.Gateway.IsValid() {
			continue
		}
		want, gw := d.HostGateway(DriverNetwork(n), driver.GatewayHere{VTEP: in.VTEP, Creator: n.Creator == in.Self, Local: local[n.Name]})
		switch {
		case want:
			g := hostnet.Gateway{Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, Masquerade: gw.Masquerade, Routed: gw.Routed,
				DNSFrom: handedOver[n.Name]}
			if n.Subnet6.IsValid() && n.Gateway6.IsValid() && !n.Internal {
				g.Subnet6, g.Gateway6 = n.Subnet6, n.Gateway6
			}
			if from := mesh[n.Name]; len(from) > 0 {
				g.MeshFrom = from
				h.Published = append(h.Published, meshPublished(in, n.Name, from, &g)...)
			}
			h.Gateways = append(h.Gateways, g)
		case len(handedOver[n.Name]) > 0 && ClosedGateway(d, n):
			h.Gateways = append(h.Gateways, hostnet.Gateway{Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, DNSFrom: handedOver[n.Name], DNSOnly: true})
		}
	}
	sort.Slice(h.Gateways, func(i, j int) bool { return h.Gateways[i].Name < h.Gateways[j].Name })
	for _, n := range nets {
		if name, err := n.d.Uplink(n.dn); err == nil && name != "" && !uplinks[name] {
			uplinks[name] = true
			h.Uplinks = append(h.Uplinks, name)
		}
	}
	sort.Strings(h.Uplinks)
	meshPubs := h.Published // the services' published ports, from the loop above
	h.Published = nil
	keys := make([]string, 0, len(in.Local))
	for k := range in.Local {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byKey := map[string]tables.Endpoint{}
	for _, ep := range in.Endpoints {
		byKey[ep.Key()] = ep
	}
	for _, k := range keys {
		ep, ok := byKey[k]
		if !ok || !ep.Addr().IsValid() {
			continue
		}
		for _, s := range ep.Publish {
			p, err := driver.ParsePublish(s)
			if err != nil {
				continue
			}
			// On the host's addresses of each family the endpoint has
			// (a dual-stack endpoint's IPv6 one too).
			for _, a := range endpointFamilies(ep) {
				h.Published = append(h.Published, hostnet.Published{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto,
					Network: ep.Network, Endpoint: ep.Name, Addr: a})
			}
		}
	}
	// A port an endpoint of this host publishes is the endpoint's here:
	// the service's would be a second rule for it.
	for _, mp := range meshPubs {
		if !slices.ContainsFunc(h.Published, func(p hostnet.Published) bool {
			return p.HostPort == mp.HostPort && p.Proto == mp.Proto && p.Addr.Is6() == mp.Addr.Is6()
		}) {
			h.Published = append(h.Published, mp)
		}
	}
	return h
}
