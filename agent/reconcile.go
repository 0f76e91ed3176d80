package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/kvs"
)

// routineReconcile follows the networks and endpoints tables and turns
// every change into a new data-plane table and new DNS records.
func (a *Agent) routineReconcile(ctx context.Context) {
	a.log.Debug("reconciler started")
	defer a.log.Debug("reconciler stopped")
	snapN, netEvents, cancelN := a.kv.Watch(tableNetworks)
	defer cancelN()
	snapE, epEvents, cancelE := a.kv.Watch(tableEndpoints)
	defer cancelE()
	a.mu.Lock()
	for _, e := range snapN {
		a.applyNetwork(e, false)
	}
	for _, e := range snapE {
		a.applyEndpoint(e, false)
	}
	a.mu.Unlock()
	a.reconcileNow()
	// Changes come in bursts (a host joining brings all its rows): one
	// rebuild covers a burst.
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-netEvents:
			if !ok {
				return
			}
			a.mu.Lock()
			a.applyNetwork(ev.Entry, ev.Type == kvs.EventDelete)
			a.mu.Unlock()
			gap.Reset(5 * time.Millisecond)
		case ev, ok := <-epEvents:
			if !ok {
				return
			}
			a.mu.Lock()
			a.applyEndpoint(ev.Entry, ev.Type == kvs.EventDelete)
			a.mu.Unlock()
			gap.Reset(5 * time.Millisecond)
		case <-a.kick:
			a.settleConflicts()
			a.reconcileNow()
		case <-gap.C:
			a.settleConflicts()
			a.reconcileNow()
		}
	}
}

func (a *Agent) applyNetwork(e kvs.Entry, gone bool) { a.applyNetworkLocked(e.Key, e.Value, gone) }

func (a *Agent) applyEndpoint(e kvs.Entry, gone bool) {
	if le, mine := a.local[e.Key]; mine {
		// This host's own endpoints are known from attach; another host's
		// row winning the key means that host claimed the name first.
		if !gone && e.Owner != a.cfg.Name && !le.removing {
			a.kickReconcile() // settleConflicts takes it down
		}
		return
	}
	if gone {
		delete(a.endpoints, e.Key)
		return
	}
	var ep api.Endpoint
	if err := json.Unmarshal(e.Value, &ep); err != nil || ep.Network+"/"+ep.Name != e.Key || ep.Host != e.Owner {
		a.log.Warn("ignoring a malformed endpoint row", "key", e.Key, "node", e.Owner)
		return
	}
	a.endpoints[e.Key] = ep
}

// kickReconcile asks for a rebuild without waiting for it.
func (a *Agent) kickReconcile() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// reconcileNow rebuilds the data-plane table and the DNS records from the
// networks and endpoints in sight.
func (a *Agent) reconcileNow() {
	// One rebuild at a time, build and publish together: an older snapshot
	// must never be published after a newer one (detach relies on it before
	// it removes a port).
	a.recMu.Lock()
	defer a.recMu.Unlock()
	// Gateways first (nat): the table below points at their ports.
	gws, pubs := a.gatewayNetworks()
	if err := a.host.Sync(gws, pubs); err != nil {
		a.log.Error("programming nat networks", "error", err)
	}
	defer func() {
		// After the table without them is published.
		if a.host.Prune(gws) {
			a.kickReconcile()
		}
	}()
	uplinks := map[string]bool{}
	defer func() { a.host.PruneUplinks(uplinks) }()
	a.mu.Lock()
	specs := map[string]*dataplane.NetworkSpec{}
	var dnsNets []dns.Network
	nets := a.networksInSight()
	for _, n := range nets {
		s := &dataplane.NetworkSpec{VNI: n.VNI}
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			s.Subnets = []netip.Prefix{p}
		}
		s.Gateway = a.host.Port(n.Name)
		if d, err := driver.Get(n.Driver); err == nil && driver.UsesUplink(d) {
			name, err := driver.UplinkName(n.Driver, n.Options)
			if err != nil {
				a.log.Warn("ignoring a network with bad options", "network", n.Name, "error", err)
				continue
			}
			u, err := a.host.Uplink(name)
			if err != nil {
				a.log.Warn("network's uplink unavailable on this host; its endpoints here reach only each other", "network", n.Name, "error", err)
			} else {
				s.Uplink, s.L2Bridge = u, driver.IsL2Bridge(d)
				uplinks[name] = true
				if gw, err := netip.ParseAddr(n.Gateway); err == nil && gw.Is4() {
					s.Router = gw
				}
				if driver.UsesDHCP(d, n.Options) {
					// The router the segment's DHCP server names wins.
					for _, le := range a.local {
						if le.rec.Network == n.Name && le.rec.DHCP != nil {
							if r, err := netip.ParseAddr(le.rec.DHCP.Router); err == nil && r.Is4() {
								s.Router = r
								break
							}
						}
					}
				}
			}
		}
		if n.Driver == "l2tunnel" {
			host, policy, err := driver.L2TunnelPolicy(n.Options)
			if err != nil {
				a.log.Warn("ignoring an l2tunnel network with bad options", "network", n.Name, "error", err)
				continue
			}
			if host == a.vtep {
				s.Policy = policy
			} else {
				s.PolicyVTEP = host
			}
		}
		specs[n.Name] = s
		scope := dns.ScopeGlobal
		if n.Scope == "local" {
			scope = dns.ScopeLocal
		}
		dnsNets = append(dnsNets, dns.Network{Name: n.Name, Scope: scope, Internal: n.Internal})
	}
	var dnsEps []dns.Endpoint
	keys := a.endpointsInSight(func(network string) bool { return specs[network] != nil })
	for _, k := range keys {
		ep := a.endpoints[k]
		s := specs[ep.Network]
		mac, err := vxlan.ParseMAC(ep.MAC)
		if err != nil {
			continue
		}
		spec := dataplane.EndpointSpec{MAC: mac}
		for _, as := range ep.Addresses {
			if p, err := netip.ParsePrefix(as); err == nil {
				spec.Addrs = append(spec.Addrs, p.Addr())
			}
		}
		if le, ok := a.local[k]; ok && le.port == nil {
			// An HNS endpoint: HNS forwards for it, the switch does not.
			dnsEps = append(dnsEps, dns.Endpoint{Name: ep.Name, Aliases: ep.Aliases, Service: ep.Service, Network: ep.Network,
				Addrs: spec.Addrs, Local: true, Ports: dnsPorts(ep.SRVPorts)})
			continue
		} else if ok {
			spec.Port = le.port
		} else if s.Uplink != nil {
			// Reached across the physical segment, not over VXLAN.
			dnsEps = append(dnsEps, dns.Endpoint{Name: ep.Name, Aliases: ep.Aliases, Service: ep.Service, Network: ep.Network,
				Addrs: spec.Addrs, Local: ep.Host == a.cfg.Name, Ports: dnsPorts(ep.SRVPorts)})
			continue
		} else if v, err := netip.ParseAddr(ep.VTEP); err == nil {
			if v == a.vtep {
				continue // a stale row of ours from before a restart
			}
			spec.VTEP = v
		} else {
			continue
		}
		s.Endpoints = append(s.Endpoints, spec)
		dnsEps = append(dnsEps, dns.Endpoint{Name: ep.Name, Aliases: ep.Aliases, Service: ep.Service, Network: ep.Network,
			Addrs: spec.Addrs, Local: ep.Host == a.cfg.Name, Ports: dnsPorts(ep.SRVPorts)})
	}
	hnsNets, hnsEps := a.hnsSpecs(nets, keys)
	a.mu.Unlock()

	list := make([]dataplane.NetworkSpec, 0, len(specs))
	for _, s := range specs {
		list = append(list, *s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].VNI < list[j].VNI })
	// Bad rows are left out of each table and reported (skipped.go).
	fwd, err := dataplane.NewTable(list)
	a.sw.SetTable(fwd)
	a.reportSkipped(tableForwarding, err)
	records, err := dns.NewTable(dnsNets, dnsEps, 0)
	a.dns.SetRecords(records)
	a.reportSkipped(tableDNS, err)
	a.syncHNS(hnsNets, hnsEps)
}

// networksInSight lists, by name, the networks this host serves: those
// with a VNI, but another host's own (nat) networks, and of two networks
// sharing a VNI the first by name. The switch and HNS take the same ones.
// Called with a.mu held.
func (a *Agent) networksInSight() []api.Network {
	var out []api.Network
	vnis := map[uint32]string{}
	for _, name := range sortedMapKeys(a.networks) {
		n := a.current(a.networks[name])
		if n.VNI == 0 {
			continue
		}
		if n.Scope == string(driver.ScopeLocal) && n.Creator != a.cfg.Name {
			continue // another host's own network (nat)
		}
		if other, dup := vnis[n.VNI]; dup {
			// Two networks created at once on hosts that could not see
			// each other: the first by name keeps the VNI.
			a.log.Warn("two networks share a VNI; ignoring the second", "vni", n.VNI, "network", n.Name, "winner", other)
			continue
		}
		vnis[n.VNI] = n.Name
		out = append(out, n)
	}
	return out
}

// endpointsInSight lists the keys of the endpoints of the networks in, by
// key, leaving out one that claims an address an earlier one of its network
// has (a row from a lost lease, a bad peer), rather than the whole table
// failing. Every host that sees the same rows keeps the same one, its own
// or not; the loser's host readdresses it when IPAM reports the lease lost.
// Called with a.mu held.
func (a *Agent) endpointsInSight(in func(network string) bool) []string {
	keys := sortedMapKeys(a.endpoints)
	out := keys[:0]
	taken := map[string]map[netip.Addr]string{}
	for _, k := range keys {
		ep := a.endpoints[k]
		if !in(ep.Network) {
			continue
		}
		if taken[ep.Network] == nil {
			taken[ep.Network] = map[netip.Addr]string{}
		}
		clash := ""
		for _, as := range ep.Addresses {
			if p, err := netip.ParsePrefix(as); err == nil {
				if other, dup := taken[ep.Network][p.Addr()]; dup {
					clash = other
				}
			}
		}
		if clash != "" {
			a.log.Warn("two endpoints claim one address; ignoring the second", "network", ep.Network, "endpoint", ep.Name, "winner", clash)
			continue
		}
		for _, as := range ep.Addresses {
			if p, err := netip.ParsePrefix(as); err == nil {
				taken[ep.Network][p.Addr()] = ep.Name + "@" + ep.Host
			}
		}
		out = append(out, k)
	}
	return out
}

// gatewayNetworks lists this host's networks whose driver wants a gateway
// port, and the ports their endpoints publish.
func (a *Agent) gatewayNetworks() ([]hostnet.Gateway, []hostnet.Published) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gws []hostnet.Gateway
	for _, name := range sortedMapKeys(a.networks) {
		n := a.current(a.networks[name])
		if n.Creator != a.cfg.Name {
			continue
		}
		d, err := driver.Get(n.Driver)
		if err != nil {
			continue
		}
		dn := driverNetwork(n)
		if !d.HostGateway() || !dn.Subnet.IsValid() || !dn.Gateway.IsValid() {
			continue
		}
		gws = append(gws, hostnet.Gateway{Name: dn.Name, Subnet: dn.Subnet, Gateway: dn.Gateway, Masquerade: !n.Internal})
	}
	var pubs []hostnet.Published
	for _, key := range sortedMapKeys(a.local) {
		le := a.local[key]
		addr := netip.Addr{}
		if len(le.rec.Addresses) > 0 {
			if p, err := netip.ParsePrefix(le.rec.Addresses[0]); err == nil {
				addr = p.Addr()
			}
		}
		for _, s := range le.rec.Publish {
			if p, err := driver.ParsePublish(s); err == nil && addr.IsValid() {
				pubs = append(pubs, hostnet.Published{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto, Network: le.rec.Network, Endpoint: le.rec.Name, Addr: addr})
			}
		}
	}
	return gws, pubs
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
