package agent

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// attach creates the endpoint's TUN device in its namespace, its port on
// the switch, and its DNS listener.
func (a *Agent) attach(ep tables.Endpoint) error {
	key := ep.Key()
	if ep.Netns == "" && a.hnsProg != nil {
		// An HNS endpoint (Windows): the reconciler creates it; the
		// container runtime attaches the container to it by name.
		a.mu.Lock()
		a.local[key] = &localEndpoint{rec: ep, busy: true}
		a.mu.Unlock()
		a.kickReconcile()
		return nil
	}
	path := netnsPath(ep.Netns)
	if ep.Handover {
		return a.attachHandover(ep, path, nil)
	}
	dev, err := tun.Create(tun.Config{Name: ep.Ifname, Netns: path, MTU: a.mtu(ep), Addresses: ep.Addrs, Routes: a.containerRoutes(ep.Network)})
	if err != nil {
		return err
	}
	port, err := a.sw.AddPort(key, dev)
	if err != nil {
		dev.Close()
		return err
	}
	a.mu.Lock()
	a.local[key] = &localEndpoint{rec: ep, port: port, ns: path, busy: true}
	a.mu.Unlock()
	a.joinResolver(ep, path)
	a.kickReconcile()
	return nil
}

// containerRoutes are the routes a network's driver gives its containers.
func (a *Agent) containerRoutes(network string) []netip.Prefix {
	n, ok := a.network(network)
	if !ok {
		return nil
	}
	d, err := driver.Get(n.Driver)
	if err != nil {
		return nil
	}
	return d.ContainerRoutes(plan.DriverNetwork(n))
}

// joinResolver serves DNS in the endpoint's namespace, and points the
// namespace's resolv.conf at it when the namespace has a name.
func (a *Agent) joinResolver(ep tables.Endpoint, path string) {
	if err := a.resolvers.Join(path, ep.Network); err != nil {
		a.log.Warn("no DNS in the container's namespace", "netns", ep.Netns, "error", err)
	}
	if namedNetns(ep.Netns) {
		if err := dns.WriteResolvConf(dns.NetnsResolvConfPath(ep.Netns), nil); err != nil {
			a.log.Warn("writing the container's resolv.conf", "netns", ep.Netns, "error", err)
		}
	}
}

// namedNetns: netns is a name from `ip netns` (a file of netnsDir, with
// its resolver's file in /etc/netns/NAME/), not a path. "." and ".." are
// neither: joined to those directories they would name the directories
// themselves, or /etc/resolv.conf.
func namedNetns(netns string) bool {
	return netns != "" && netns != "." && netns != ".." && !strings.ContainsRune(netns, '/')
}

// removeResolvConf removes what attach wrote for a named namespace.
func removeResolvConf(netns string) {
	if namedNetns(netns) {
		os.Remove(dns.NetnsResolvConfPath(netns))
		os.Remove("/etc/netns/" + netns) // only if empty
	}
}

// detach undoes attach: the table first, so no loop writes to the port.
func (a *Agent) detach(key string) {
	a.mu.Lock()
	le := a.local[key]
	delete(a.local, key)
	if a.rows[key].Host == a.cfg.Name {
		// Its row goes too (the caller deletes it): no longer planned as
		// an endpoint of this host's with no device (HNS, DNS).
		delete(a.rows, key)
	}
	a.mu.Unlock()
	if le != nil && le.ns != "" && a.resolvers.Leave(le.ns, le.rec.Network) {
		removeResolvConf(le.rec.Netns)
	}
	a.reconcileNow()
	if le != nil && le.port != nil {
		if le.dev != nil {
			// The device goes with the port's descriptor, wherever the
			// runtime put it.
			if err := tun.Remove(le.dev); err != nil {
				a.log.Warn("removing a handed-over device", "endpoint", key, "error", err)
			}
		}
		a.sw.RemovePort(le.port)
	}
}

// restoreEndpoints brings back this host's endpoints after a restart, in
// the same namespaces with the same addresses and MACs. An endpoint whose
// namespace is gone is removed and its address released.
func (a *Agent) restoreEndpoints() {
	if a.recovering.Load() {
		return // a recovery cut short: nothing of this host's is known yet
	}
	a.loadReserved()
	a.loadVIPs()
	a.loadMesh()
	a.releaseReleased()
	a.releaseOrphanLeases()
	a.syncView()
	for _, ep := range a.store.Snapshot().Endpoints {
		if ep.State == tables.StateDown {
			a.mu.Lock()
			a.down[ep.Key()] = ep
			a.mu.Unlock()
			continue
		}
		a.restoreEndpoint(ep)
	}
	// Rows of ours with no endpoint behind them go, those of endpoints
	// taken down while restored among them.
	stored := map[string]bool{}
	for _, ep := range a.store.Snapshot().Endpoints {
		if ep.State != tables.StateDown {
			stored[ep.Key()] = true
		}
	}
	a.mu.Lock()
	for network := range a.meshAddrs {
		stored[tables.EndpointKey(network, a.meshName())] = true // the routing mesh's (mesh.go)
	}
	a.mu.Unlock()
	for _, e := range a.kv.List(tables.Endpoints) {
		if e.Owner == a.cfg.Name && !stored[e.Key] {
			a.log.Warn("removing an endpoint row of this host with no endpoint behind it", "endpoint", e.Key)
			a.del(tables.Endpoints, e.Key)
		}
	}
	// Handover devices no endpoint holds: their endpoint went while the
	// agent was away (the runtime moved them back here), or the agent
	// stopped before it recorded them.
	if a.hnsProg == nil {
		removed, err := tun.Sweep(api.HandoverPrefix)
		if len(removed) > 0 {
			a.log.Info("removed devices made for containers that are gone", "count", len(removed), "device", strings.Join(removed, ","))
		}
		if err != nil {
			a.log.Warn("removing devices made for containers that are gone", "error", err)
		}
	}
}

// restoreEndpoint brings back one endpoint of the state file.
func (a *Agent) restoreEndpoint(ep tables.Endpoint) {
	key := ep.Key()
	if ep.Netns == "" && a.hnsProg == nil {
		a.log.Warn("an HNS endpoint, but no HNS on this host; removing it", "endpoint", key)
		a.removeGone(ep)
		return
	}
	if ep.Handover {
		a.restoreHandover(ep)
		return
	}
	if _, err := os.Stat(netnsPath(ep.Netns)); ep.Netns != "" && err != nil {
		a.log.Warn("endpoint's namespace is gone; removing it", "endpoint", key, "netns", ep.Netns)
		a.removeGone(ep)
		return
	}
	ep, ok := a.checkLeases(ep)
	if !ok {
		return
	}
	if err := a.attach(ep); err != nil {
		// No device: its row goes, so that no host forwards to it or
		// lists it up; it is listed down here, keeps its addresses and
		// record, and is tried again when the agent next starts.
		a.log.Error("restoring endpoint; it is down until the agent starts again (or endpoint rm)", "endpoint", key, "error", err)
		a.del(tables.Endpoints, key)
		down := ep
		down.State, down.Reason = tables.StateDown, "not restored at start-up: "+err.Error()+"; tried again when the agent next starts"
		a.mu.Lock()
		a.down[key] = down
		a.mu.Unlock()
		return
	}
	// The row again, in case a crash came between the state file and the
	// table (or it waited for its addresses), with its claim.
	if err := a.putClaimed(tables.Endpoints, key, ep.Encode(), a.claims[key]); err != nil {
		a.log.Error("restoring endpoint row", "endpoint", key, "error", err)
	}
	a.settled(key) // a name taken meanwhile takes it down
	a.log.Info("endpoint restored", "endpoint", key, "address", fmtPrefixes(ep.Addrs))
}

func (a *Agent) removeGone(ep tables.Endpoint) {
	key := ep.Key()
	a.mu.Lock()
	delete(a.local, key)
	a.mu.Unlock()
	a.del(tables.Endpoints, key)
	a.forgetEndpoint(key)
	removeResolvConf(ep.Netns)
	a.releaseAddresses(key, ep)
}

// releaseAddresses gives an endpoint's addresses back: to the segment's
// DHCP server when one leased them, else to IPAM (best effort, logged).
func (a *Agent) releaseAddresses(key string, ep tables.Endpoint) {
	if ep.Assigned {
		return // the network's own authority takes it back
	}
	if ep.Reserved {
		for _, p := range ep.Addrs {
			a.untakeReservation(ep.Network, p.Addr(), key) // released by the runtime
		}
		return
	}
	if ep.DHCP != nil {
		a.releaseDHCP(ep)
		return
	}
	for _, p := range ep.Addrs {
		if err := a.ipam.Release(a.ipamName(ep.Network, p.Addr()), p.Addr()); err != nil {
			a.log.Warn("releasing address", "endpoint", key, "error", err)
		}
	}
}

// saveEndpoint writes an endpoint's record into the state file, in place
// of the one of the same key.
func (a *Agent) saveEndpoint(rec tables.Endpoint) {
	err := a.store.Update(func(st *hoststate.State) {
		for i, e := range st.Endpoints {
			if e.Key() == rec.Key() {
				st.Endpoints[i] = rec
				return
			}
		}
		st.Endpoints = append(st.Endpoints, rec)
	})
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// forgetEndpoint drops an endpoint from the state file.
func (a *Agent) forgetEndpoint(key string) {
	err := a.store.Update(func(st *hoststate.State) {
		for i, e := range st.Endpoints {
			if e.Key() == key {
				st.Endpoints = append(st.Endpoints[:i], st.Endpoints[i+1:]...)
				break
			}
		}
	})
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

func fmtPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// routineGoneNamespaces removes, every few seconds, this host's endpoints
// whose namespace (one named by `ip netns`) was deleted under them: their
// names, addresses and DNS records would otherwise stay held until an
// `endpoint rm`. A runtime's namespaces (paths) and handover devices are
// the runtime's to remove: it detaches them itself.
func (a *Agent) routineGoneNamespaces(ctx context.Context) {
	every(ctx, 5*time.Second, a.removeGoneNamespaces)
}

func (a *Agent) removeGoneNamespaces() {
	a.mu.Lock()
	var named []tables.Endpoint
	for _, le := range a.local {
		if ep := le.rec; namedNetns(ep.Netns) && !ep.Handover && !le.removing {
			named = append(named, ep)
		}
	}
	a.mu.Unlock()
	for _, ep := range named {
		if _, err := os.Stat(netnsPath(ep.Netns)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// Still the endpoint found in that namespace: not one made since
		// under the same name, in another.
		a.mu.Lock()
		le, ok := a.local[ep.Key()]
		same := ok && le.rec.Netns == ep.Netns && !le.removing && !le.busy
		a.mu.Unlock()
		if !same {
			continue
		}
		a.log.Warn("endpoint's namespace is gone; removing it", "endpoint", ep.Key(), "netns", ep.Netns)
		if err := a.RemoveEndpoint(ep.Network, ep.Name); err != nil {
			a.log.Warn("removing an endpoint whose namespace is gone", "endpoint", ep.Key(), "error", err)
		}
	}
}
