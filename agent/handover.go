package agent

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// Reservations: Docker's IPAM plugin asks for a container's address before
// the network plugin is asked for its endpoint, and gives it back after the
// endpoint is gone. An address reserved here is a lease of this host; the
// endpoint created with it (EndpointCreate.Reserved) takes it over without
// releasing it at removal, and only ReleaseAddress ends the reservation, so
// that an address Docker still counts as its own is never handed to
// another container meanwhile. Reservations are in the state file.

// reservation is one reserved address: the endpoint that took it over
// (its key, or ""), whether the runtime released it while the endpoint
// still held it (it goes when the endpoint does), and since when it is
// reserved (zero: from before a restart).
type reservation struct {
	holder   string
	released bool
	since    time.Time
}

// ReserveAddress reserves ip on network, or the next free address when ip
// is the zero Addr, and returns it with the subnet's prefix length.
func (a *Agent) ReserveAddress(ctx context.Context, network string, ip netip.Addr) (netip.Prefix, error) {
	n, d, err := a.endpointNetwork(network)
	if err != nil {
		return netip.Prefix{}, err
	}
	if d.LeasesByDHCP(plan.DriverNetwork(n)) {
		return netip.Prefix{}, apiError(api.CodeBadRequest, "network", "network %q leases addresses from the segment's DHCP server, not from vxnet", network)
	}
	if ip.IsValid() {
		if err := a.ipam.AllocateStatic(network, ip); err != nil {
			return netip.Prefix{}, fromIPAM(err)
		}
	} else {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if ip, err = a.ipam.Allocate(actx, network); err != nil {
			return netip.Prefix{}, fromIPAM(err)
		}
	}
	a.mu.Lock()
	if a.reserved[network] == nil {
		a.reserved[network] = map[netip.Addr]*reservation{}
	}
	a.reserved[network][ip] = &reservation{since: time.Now()}
	a.mu.Unlock()
	a.saveReserved()
	a.persist()
	return netip.PrefixFrom(ip, n.Subnet.Bits()), nil
}

// ReleaseAddress ends the reservation of ip on network: the address goes
// back to IPAM, or, if an endpoint still holds it, when that endpoint
// goes. An address not reserved is left alone.
func (a *Agent) ReleaseAddress(network string, ip netip.Addr) error {
	a.mu.Lock()
	r, ok := a.reserved[network][ip]
	free := ok && r.holder == ""
	switch {
	case free:
		delete(a.reserved[network], ip)
	case ok:
		r.released = true
	}
	a.mu.Unlock()
	if !ok {
		return nil
	}
	a.saveReserved()
	if !free {
		return nil // released with its endpoint
	}
	if err := a.ipam.Release(network, ip); err != nil {
		return fromIPAM(err)
	}
	a.persist()
	return nil
}

// Reservations lists the reserved addresses.
func (a *Agent) Reservations() []api.Reservation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []api.Reservation
	for _, network := range sortedMapKeys(a.reserved) {
		for ip, r := range a.reserved[network] {
			out = append(out, api.Reservation{Network: network, Address: ip.String(), Held: r.holder != "", Since: r.since})
		}
	}
	return out
}

// takeReservation gives reserved address ip of network to the endpoint
// key, if it is reserved and no other endpoint has it.
func (a *Agent) takeReservation(network string, ip netip.Addr, key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.reserved[network][ip]
	if !ok || r.released || (r.holder != "" && r.holder != key) {
		return false
	}
	r.holder = key
	return true
}

// untakeReservation gives a reservation back from endpoint key; one the
// runtime released meanwhile goes back to IPAM.
func (a *Agent) untakeReservation(network string, ip netip.Addr, key string) {
	a.mu.Lock()
	r, ok := a.reserved[network][ip]
	if !ok || r.holder != key {
		a.mu.Unlock()
		return
	}
	r.holder = ""
	release := r.released
	if release {
		delete(a.reserved[network], ip)
	}
	a.mu.Unlock()
	if release {
		a.saveReserved()
		if err := a.ipam.Release(network, ip); err != nil {
			a.log.Warn("releasing address", "endpoint", key, "error", err)
		}
	}
}

// dropReservation forgets the reservation of an address this host no
// longer holds (IPAM gave it to another host).
func (a *Agent) dropReservation(network string, ip netip.Addr) {
	a.mu.Lock()
	_, ok := a.reserved[network][ip]
	delete(a.reserved[network], ip)
	a.mu.Unlock()
	if ok {
		a.saveReserved()
	}
}

// saveReserved writes the reservations into the state file. The list is
// taken under a.mu and written after (IPAM writes the store while holding
// its lock, and a.mu is taken before IPAM's: never a.mu inside the
// store's), one save at a time.
func (a *Agent) saveReserved() {
	a.resSave.Lock()
	defer a.resSave.Unlock()
	reserved, released := map[string][]netip.Addr{}, map[string][]netip.Addr{}
	a.mu.Lock()
	for network, addrs := range a.reserved {
		for ip, r := range addrs {
			reserved[network] = append(reserved[network], ip)
			if r.released {
				released[network] = append(released[network], ip)
			}
		}
	}
	a.mu.Unlock()
	for _, m := range []map[string][]netip.Addr{reserved, released} {
		for _, addrs := range m {
			slices.SortFunc(addrs, netip.Addr.Compare)
		}
	}
	err := a.store.Update(func(st *hoststate.State) { st.Reserved, st.Released = reserved, released })
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// loadReserved reads the reservations from the state file, with the
// endpoints that hold them.
func (a *Agent) loadReserved() {
	st := a.store.Snapshot()
	a.mu.Lock()
	defer a.mu.Unlock()
	for network, addrs := range st.Reserved {
		a.reserved[network] = map[netip.Addr]*reservation{}
		for _, ip := range addrs {
			a.reserved[network][ip] = &reservation{}
		}
	}
	for network, addrs := range st.Released {
		for _, ip := range addrs {
			if r, ok := a.reserved[network][ip]; ok {
				r.released = true
			}
		}
	}
	for _, ep := range st.Endpoints {
		if r, ok := a.reserved[ep.Network][ep.Addr()]; ok && ep.Reserved {
			r.holder = ep.Key()
		}
	}
}

// Handover devices (EndpointCreate.Handover) are made on this host and
// moved into the container by its runtime. followHandover waits for the
// move, then records the device's name there.
func (a *Agent) followHandover(key string, le *localEndpoint, dev tun.Device) {
	a.mu.Lock()
	path, src := netnsPath(le.rec.Netns), le.rec.Ifname
	a.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	var insideSince time.Time
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		inside, name, err := tun.Where(dev, path)
		if err != nil {
			a.log.Warn("following a handed-over device", "endpoint", key, "error", err)
			return
		}
		// Runtimes rename the device once moved (Docker: eth0, eth1...);
		// one that keeps the name is taken at its word after a second.
		if inside && insideSince.IsZero() {
			insideSince = time.Now()
		}
		if inside && (name != src || time.Since(insideSince) > time.Second) {
			a.handedOver(key, le, path, name)
			return
		}
		if time.Now().After(deadline) {
			a.log.Warn("the runtime did not move the device into the container", "endpoint", key, "netns", path)
			return
		}
		select {
		case <-a.runCtx.Done():
			return
		case <-time.After(wait):
		}
		a.mu.Lock()
		gone := a.local[key] != le
		a.mu.Unlock()
		if gone {
			return
		}
	}
}

// handedOver finishes a handed-over endpoint in the container, once: its
// name there in the record, written under own, so that a removal never
// meets a record or row written after it; an endpoint being removed or
// readdressed keeps its name.
func (a *Agent) handedOver(key string, le *localEndpoint, path, name string) {
	le.handOnce.Do(func() {
		if !a.own(key, le) {
			return
		}
		defer a.disown(le)
		a.mu.Lock()
		changed := le.rec.Ifname != name
		le.rec.Ifname = name
		rec := le.rec
		a.mu.Unlock()
		if changed {
			a.saveEndpoint(rec)
			if err := a.put(tables.Endpoints, key, rec.Encode()); err != nil {
				a.log.Warn("writing endpoint row", "endpoint", key, "error", err)
			}
		}
		// No resolver of vxnet's in the container: the runtime's answers
		// there, and what it forwards reaches vxnet at the gateway
		// (hostnet.Gateway's DNSFrom).
		a.log.Info("endpoint's device is in its container", "endpoint", key, "ifname", name)
	})
}

// own lets the caller change local endpoint le's record and row (a
// runtime's change: its name in the container, aliases, ports), if it is
// still key's and no owner (a removal, a readdress) has it: one change at
// a time, and none after an owner took over. disown ends it.
func (a *Agent) own(key string, le *localEndpoint) bool {
	le.writeMu.Lock()
	a.mu.Lock()
	ok := a.local[key] == le && !le.removing
	a.mu.Unlock()
	if !ok {
		le.writeMu.Unlock()
	}
	return ok
}

// disown ends own.
func (a *Agent) disown(le *localEndpoint) { le.writeMu.Unlock() }

// attachHandover attaches a handed-over endpoint: a new device on this
// host for the runtime to move (dev nil), or the one adopted again in the
// container after a restart.
func (a *Agent) attachHandover(ep tables.Endpoint, path string, dev tun.Device) error {
	key := ep.Key()
	adopted := dev != nil
	if !adopted {
		var err error
		if dev, err = tun.CreateHandover(ep.Ifname, a.mtu(ep)); err != nil {
			return err
		}
	}
	port, err := a.sw.AddPort(key, dev)
	if err != nil {
		if !adopted {
			tun.Remove(dev)
		}
		dev.Close()
		return err
	}
	le := &localEndpoint{rec: ep, port: port, dev: dev, ns: path, busy: true}
	a.mu.Lock()
	a.local[key] = le
	a.mu.Unlock()
	if adopted {
		a.handedOver(key, le, path, ep.Ifname)
	} else {
		a.bg.Go(func() { a.followHandover(key, le, dev) })
	}
	a.kickReconcile()
	return nil
}

// restoreHandover brings back a handed-over endpoint after a restart: its
// device stayed in the container, configured by the runtime; the endpoint
// goes if the container did.
func (a *Agent) restoreHandover(ep tables.Endpoint) {
	key := ep.Key()
	path := netnsPath(ep.Netns)
	dev, name, err := tun.Adopt(path, ep.Addr(), a.mtu(ep))
	if err != nil {
		a.log.Warn("endpoint's container or device is gone; removing it", "endpoint", key, "netns", ep.Netns, "error", err)
		a.removeGone(ep)
		return
	}
	ep, ok := a.checkLeases(ep)
	if !ok {
		tun.Remove(dev)
		dev.Close()
		return
	}
	ep.Ifname = name
	if err := a.attachHandover(ep, path, dev); err != nil {
		a.log.Error("restoring endpoint", "endpoint", key, "error", err)
		return
	}
	if err := a.put(tables.Endpoints, key, ep.Encode()); err != nil {
		a.log.Error("restoring endpoint row", "endpoint", key, "error", err)
	}
	a.settled(key)
	a.log.Info("endpoint restored", "endpoint", key, "address", fmtPrefixes(ep.Addrs), "ifname", name)
}

// SetAliases replaces the aliases of endpoint name of this host on
// network (a runtime learns a container's aliases after its endpoint is
// made). An endpoint busy being removed or readdressed is a conflict: try
// again.
func (a *Agent) SetAliases(network, name string, aliases []string) error {
	if field, err := names.CheckEndpoint(name, aliases, "", ""); err != nil {
		return apiError(api.CodeBadRequest, field, "%v", err)
	}
	key := tables.EndpointKey(network, name)
	a.mu.Lock()
	le := a.local[key]
	a.mu.Unlock()
	if le == nil {
		return apiError(api.CodeNotFound, "name", "no endpoint %q on network %q on this host", name, network)
	}
	if !a.own(key, le) {
		return apiError(api.CodeBusy, "name", "endpoint %q on network %q is being removed or readdressed; try again", name, network)
	}
	defer a.disown(le)
	a.mu.Lock()
	le.rec.Aliases = append([]string(nil), aliases...)
	rec := le.rec
	a.mu.Unlock()
	a.saveEndpoint(rec)
	if err := a.put(tables.Endpoints, key, rec.Encode()); err != nil {
		return err
	}
	a.reconcileNow()
	return nil
}

// mtu is the MTU of ep's device.
func (a *Agent) mtu(ep tables.Endpoint) int {
	if ep.MTU > 0 && ep.MTU < a.cfg.MTU {
		return ep.MTU
	}
	return a.cfg.MTU
}

// Host is this host's name in the cluster.
func (a *Agent) Host() string { return a.cfg.Name }

// gatewayDNS is vxnet's resolver on the gateway address of a network
// whose handed-over containers' queries the host sends there.
type gatewayDNS struct {
	network string
	l       *dns.Listener
}

// syncGatewayDNS serves DNS on the gateways that take containers'
// queries (Gateway.DNSFrom), each answering for its network. Called by
// reconcileNow (recMu held); a gateway whose address cannot be bound yet
// is tried again at the next reconcile.
func (a *Agent) syncGatewayDNS(gws []hostnet.Gateway) {
	want := map[netip.AddrPort]string{}
	for _, g := range gws {
		if len(g.DNSFrom) > 0 {
			want[netip.AddrPortFrom(g.Gateway, 53)] = g.Name
		}
	}
	for ap, g := range a.gwDNS {
		if want[ap] != g.network {
			g.l.Close()
			delete(a.gwDNS, ap)
		}
	}
	failed := false
	for ap, network := range want {
		if _, ok := a.gwDNS[ap]; ok {
			continue
		}
		conns, err := dns.Listen(ap)
		if err != nil {
			if a.retryWait.Load() == 0 { // once per streak of failures
				a.log.Warn("no DNS on the network's gateway yet: its Docker containers resolve only Docker's names; trying again", "network", network, "address", ap.String(), "error", err)
			}
			failed = true
			continue
		}
		l, err := a.dns.Serve(conns, dns.View{Networks: []string{network}})
		if err != nil {
			conns.Close()
			a.log.Warn("no DNS on the network's gateway", "network", network, "error", err)
			continue
		}
		a.gwDNS[ap] = gatewayDNS{network: network, l: l}
		a.log.Info("DNS serving on the network's gateway", "network", network, "address", ap.String())
	}
	if failed {
		a.retryReconcile()
	} else {
		a.resetRetry()
	}
}

// retryReconcile reconciles again later, once, for what could not be
// done now: in a second, then twice as long each time it is asked again
// without a success (resetRetry) in between, up to a minute.
func (a *Agent) retryReconcile() {
	if !a.retrying.CompareAndSwap(false, true) {
		return
	}
	wait := time.Duration(a.retryWait.Load())
	if wait == 0 {
		wait = time.Second
	}
	a.retryWait.Store(int64(min(2*wait, time.Minute)))
	time.AfterFunc(wait, func() {
		a.retrying.Store(false)
		if a.runCtx.Err() == nil {
			a.kickReconcile()
		}
	})
}

// resetRetry: what retryReconcile waited for is done.
func (a *Agent) resetRetry() { a.retryWait.Store(0) }

// closeGatewayDNS closes the gateways' resolvers.
func (a *Agent) closeGatewayDNS() {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	for ap, g := range a.gwDNS {
		g.l.Close()
		delete(a.gwDNS, ap)
	}
}

// SetPublish replaces the ports that endpoint name of this host on
// network publishes (Docker publishes a container's ports once its
// gateway is set up, and withdraws them first when it leaves). Errors
// name the field publish.
func (a *Agent) SetPublish(network, name string, publish []string) error {
	key := tables.EndpointKey(network, name)
	a.mu.Lock()
	le := a.local[key]
	a.mu.Unlock()
	if le == nil {
		return apiError(api.CodeNotFound, "name", "no endpoint %q on network %q on this host", name, network)
	}
	n, d, err := a.endpointNetwork(network)
	if err != nil {
		return err
	}
	var ports []driver.Publish
	var canonical []string
	for _, s := range publish {
		p, err := driver.ParsePublish(s)
		if err != nil {
			return apiError(api.CodeBadRequest, "publish", "%v", err)
		}
		if !d.Publishes(plan.DriverNetwork(n)) {
			return apiError(api.CodeBadRequest, "publish", "publish %q: network %q publishes no ports (nat networks do, and overlay networks that are not internal)", s, n.Name)
		}
		ports, canonical = append(ports, p), append(canonical, p.String())
	}
	if !a.own(key, le) {
		return apiError(api.CodeBusy, "name", "endpoint %q on network %q is being removed or readdressed; try again", name, network)
	}
	defer a.disown(le)
	a.mu.Lock()
	for _, p := range ports {
		if other := a.publishedByLocked(p); other != "" && other != key {
			a.mu.Unlock()
			return apiError(api.CodeConflict, "publish", "publish %q: host port %d/%s is taken by endpoint %s", p.String(), p.HostPort, p.Proto, other)
		}
	}
	le.rec.Publish = canonical
	rec := le.rec
	a.mu.Unlock()
	a.saveEndpoint(rec)
	if err := a.put(tables.Endpoints, key, rec.Encode()); err != nil {
		return err
	}
	a.reconcileNow()
	return nil
}
