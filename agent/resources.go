package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
)

// apiError builds an API error naming the field.
func apiError(code, field, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// fromIPAM turns an ipam error into an API error naming its field.
func fromIPAM(err error) error {
	var ie *ipam.Error
	if !errors.As(err, &ie) {
		return err
	}
	code := api.CodeBadRequest
	if errors.Is(err, ipam.ErrOverlap) || errors.Is(err, ipam.ErrInUse) || errors.Is(err, ipam.ErrExhausted) {
		code = api.CodeConflict
	}
	field := ie.Field
	switch {
	case field == "address":
		field = "ip"
	case strings.HasPrefix(field, "aux-address"):
		field = "aux-address"
	case strings.HasPrefix(field, "option"):
		field = "options"
	}
	return &api.Error{Code: code, Field: field, Message: err.Error()}
}

// CreateNetwork creates a network: its subnet claimed cluster-wide, a VNI,
// and the row every host sees.
func (a *Agent) CreateNetwork(ctx context.Context, req api.NetworkCreate) (api.Network, error) {
	if req.Driver == "" {
		req.Driver = "overlay"
	}
	if err := names.Network(req.Name); err != nil {
		return api.Network{}, apiError(api.CodeBadRequest, "name", "%v", err)
	}
	d, err := driver.Get(req.Driver)
	if err != nil {
		return api.Network{}, apiError(api.CodeBadRequest, "driver", "%v", err)
	}
	if driver.UsesUplink(d) && req.Subnet == "" {
		return api.Network{}, apiError(api.CodeBadRequest, "subnet", "a %s network needs --subnet: the physical segment's subnet (and --gateway, its router; --ip-range keeps vxnet's addresses clear of the segment's other machines)", req.Driver)
	}
	own, rest := driver.SplitOptions(d, req.Options)
	if err := d.CheckOptions(own); err != nil {
		return api.Network{}, apiError(api.CodeBadRequest, "options", "%v", err)
	}
	opts, err := ipam.ParseOptions(req.Name, rest)
	if err != nil {
		return api.Network{}, fromIPAM(err)
	}
	unclaim, err := a.claimNetworkName(req.Name) // names.go: unique in any case
	if err != nil {
		return api.Network{}, err
	}
	defer unclaim()
	pc := ipam.PoolConfig{Subnet: req.Subnet, IPRange: req.IPRange, Gateway: req.Gateway, AuxAddresses: req.AuxAddresses}
	// Not cut short by a client that goes away: a claim left half made
	// would hold the name and the subnet.
	subnet, err := a.ipam.CreateNetwork(context.WithoutCancel(ctx), req.Name, pc, opts.BlockSize)
	if err != nil {
		return api.Network{}, fromIPAM(err)
	}
	gateway, _ := a.ipam.Gateway(req.Name)
	creator, created, ok := a.ipam.Creation(req.Name)
	if !ok || creator != a.cfg.Name {
		return api.Network{}, apiError(api.CodeConflict, "name", "network %q was created at the same time by host %s", req.Name, creator)
	}
	n := api.Network{Name: req.Name, Driver: req.Driver, Scope: string(d.Scope()), VNI: a.pickVNI(req.Name), Subnet: subnet.String(),
		Gateway: gateway.String(), IPRange: req.IPRange, Internal: req.Internal, Options: req.Options,
		Creator: a.cfg.Name, Created: created}
	if err := a.putRow(tableNetworks, networkKey(n.Name, n.Creator), n); err != nil {
		a.ipam.WithdrawOwn(req.Name)
		return api.Network{}, err
	}
	a.persist()
	a.log.Info("network created", "network", n.Name, "vni", n.VNI, "subnet", n.Subnet)
	return n, nil
}

// pickVNI hashes the name into 4096-65535, stepping past VNIs of networks
// in sight: HNS overlays take 4096 and up, and only 16 bits of it (its
// RemoteSubnetRoute's IsolationId), so Windows hosts can join any network.
func (a *Agent) pickVNI(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	const lo, span = 4096, 1<<16 - 4096
	v := lo + h.Sum32()%span
	a.mu.Lock()
	defer a.mu.Unlock()
	used := map[uint32]bool{}
	for _, n := range a.networks {
		used[n.VNI] = true
	}
	for used[v] {
		v = lo + (v-lo+1)%span
	}
	return v
}

// RemoveNetwork removes a network no endpoint uses, from any host: the
// network is the cluster's, and its creator may be gone.
func (a *Agent) RemoveNetwork(name string) error {
	if _, ok := a.network(name); !ok {
		if _, _, claimed := a.ipam.Creation(name); claimed {
			// A subnet claim with no network row (a crash between the two
			// steps of a create or a remove): rm clears it.
			if err := a.ipam.DeleteNetwork(name); err != nil {
				return fromIPAM(err)
			}
			a.log.Info("network removed (its subnet claim only)", "network", name)
			return nil
		}
		return apiError(api.CodeNotFound, "name", "no network %q", name)
	}
	var users []string
	a.mu.Lock()
	for _, e := range a.endpoints {
		if e.Network == name {
			users = append(users, e.Name+" on "+e.Host)
		}
	}
	a.mu.Unlock()
	// Endpoints of hosts that are down come back with them: they count.
	for _, e := range a.kv.Hidden(tableEndpoints) {
		var ep api.Endpoint
		if json.Unmarshal(e.Value, &ep) == nil && ep.Network == name {
			users = append(users, ep.Name+" on "+e.Owner+" (host down)")
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		return apiError(api.CodeConflict, "name", "network %q has endpoints: %s (remove them first; those of a host that is down go when it leaves or is reaped)", name, strings.Join(users, ", "))
	}
	// The claim first: a crash in between leaves rows that name no claim,
	// which the next rm clears, never a claim nobody can see.
	if err := a.ipam.DeleteNetwork(name); err != nil {
		a.log.Warn("ipam: deleting network", "network", name, "error", err)
	}
	// Every creation of the name, so that none takes the winner's place.
	for _, n := range a.networkRows() {
		if n.Name == name {
			if err := a.kv.Delete(tableNetworks, networkKey(n.Name, n.Creator)); err != nil && !errors.Is(err, kvs.ErrNotFound) {
				return err
			}
		}
	}
	a.log.Info("network removed", "network", name)
	return nil
}

// Endpoints lists every host's endpoints, and this host's endpoints that
// are down (api.StateDown, with the reason).
func (a *Agent) Endpoints() []api.Endpoint {
	out := listRows[api.Endpoint](a, tableEndpoints)
	a.mu.Lock()
	for _, key := range sortedMapKeys(a.down) {
		out = append(out, a.down[key])
	}
	a.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// listRows decodes the rows of a table; malformed rows are skipped (the
// reconciler logs them).
func listRows[T any](a *Agent, table string) []T {
	var out []T
	for _, e := range a.kv.List(table) {
		var v T
		if json.Unmarshal(e.Value, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// netnsPath turns a namespace name or path into a path.
func netnsPath(ns string) string {
	if strings.ContainsRune(ns, '/') {
		return ns
	}
	return "/var/run/netns/" + ns
}

// CreateEndpoint attaches a namespace of this host to a network.
func (a *Agent) CreateEndpoint(ctx context.Context, req api.EndpointCreate) (api.Endpoint, error) {
	n, ok := a.network(req.Network)
	if !ok {
		return api.Endpoint{}, apiError(api.CodeNotFound, "network", "no network %q", req.Network)
	}
	if err := checkEndpointCreate(&req); err != nil { // names.go
		return api.Endpoint{}, err
	}
	unclaim, err := a.claimEndpointName(req.Network, req.Name) // names.go: unique in any case
	if err != nil {
		return api.Endpoint{}, err
	}
	defer unclaim()
	d, err := driver.Get(n.Driver)
	if err != nil {
		return api.Endpoint{}, apiError(api.CodeConflict, "network", "network %q: %v", n.Name, err)
	}
	if d.Scope() == driver.ScopeLocal && n.Creator != a.cfg.Name {
		return api.Endpoint{}, apiError(api.CodeConflict, "network", "network %q is a %s network of host %s: endpoints attach there only", n.Name, n.Driver, n.Creator)
	}
	var publish []string // as the record keeps them
	var ports []driver.Publish
	for _, s := range req.Publish {
		p, err := driver.ParsePublish(s)
		if err != nil {
			return api.Endpoint{}, apiError(api.CodeBadRequest, "publish", "%v", err)
		}
		if !d.Publishes() {
			return api.Endpoint{}, apiError(api.CodeBadRequest, "publish", "publish %q: network %q uses driver %s, which publishes no ports (nat does)", s, n.Name, n.Driver)
		}
		publish, ports = append(publish, p.String()), append(ports, p)
	}
	hnsOnly := req.Netns == "" && a.hnsProg != nil // Windows: the runtime attaches the container to the HNS endpoint
	if req.Netns == "" && !hnsOnly {
		return api.Endpoint{}, apiError(api.CodeBadRequest, "netns", "netns is required: the container's network namespace (a name from `ip netns`, or a path such as /proc/PID/ns/net)")
	}
	if !hnsOnly {
		path := netnsPath(req.Netns)
		if _, err := os.Stat(path); err != nil {
			return api.Endpoint{}, apiError(api.CodeBadRequest, "netns", "netns %q: %v", req.Netns, err)
		}
		if req.Ifname == "" {
			req.Ifname = "eth0"
		}
	}
	if len(req.Ifname) > tun.MaxNameLen {
		return api.Endpoint{}, apiError(api.CodeBadRequest, "ifname", "ifname %q is longer than %d characters", req.Ifname, tun.MaxNameLen)
	}
	key := req.Network + "/" + req.Name
	a.mu.Lock()
	_, busy := a.pending[key]
	_, local := a.local[key]
	if d, down := a.down[key]; down {
		a.mu.Unlock()
		return api.Endpoint{}, apiError(api.CodeConflict, "name", "endpoint %q on network %q is down here (%s): remove it with endpoint rm first", req.Name, req.Network, d.Reason)
	}
	var portErr error
	if !busy && !local {
		// Published ports are reserved with the name, under one lock, so
		// two endpoints created at once cannot both take a host port.
		for _, p := range ports {
			if other := a.publishedByLocked(p); other != "" {
				portErr = apiError(api.CodeConflict, "publish", "publish %q: host port %d/%s is taken by endpoint %s", p.String(), p.HostPort, p.Proto, other)
				break
			}
		}
		if portErr == nil {
			a.pending[key] = struct{}{}
			for _, p := range ports {
				a.ports[portKey(p)] = key
			}
		}
	}
	a.mu.Unlock()
	if busy || local {
		return api.Endpoint{}, apiError(api.CodeConflict, "name", "endpoint %q exists on network %q", req.Name, req.Network)
	}
	if portErr != nil {
		return api.Endpoint{}, portErr
	}
	defer func() {
		a.mu.Lock()
		delete(a.pending, key)
		for _, p := range ports {
			if a.ports[portKey(p)] == key {
				delete(a.ports, portKey(p)) // the endpoint's own record holds them now, if it was made
			}
		}
		a.mu.Unlock()
	}()
	if _, exists := a.kv.Get(tableEndpoints, key); exists {
		return api.Endpoint{}, apiError(api.CodeConflict, "name", "endpoint %q exists on network %q", req.Name, req.Network)
	}
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return api.Endpoint{}, fmt.Errorf("network %q has a bad subnet %q", n.Name, n.Subnet)
	}
	var addr netip.Addr
	var lease *api.DHCP
	if driver.UsesDHCP(d, n.Options) {
		if req.IP != "" {
			return api.Endpoint{}, apiError(api.CodeBadRequest, "ip", "ip %q: network %q leases addresses from the segment's DHCP server", req.IP, n.Name)
		}
		l, rec, err := a.leaseDHCP(ctx, n, req.Name)
		if err != nil {
			return api.Endpoint{}, apiError(api.CodeConflict, "network", "network %q: %v", n.Name, err)
		}
		lease, addr, subnet = rec, l.Addr.Addr(), l.Addr
	} else if req.IP != "" {
		if addr, err = netip.ParseAddr(req.IP); err != nil {
			return api.Endpoint{}, apiError(api.CodeBadRequest, "ip", "ip %q is not an IP address", req.IP)
		}
		if err := a.ipam.AllocateStatic(n.Name, addr); err != nil {
			return api.Endpoint{}, fromIPAM(err)
		}
	} else {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		addr, err = a.ipam.Allocate(actx, n.Name)
		cancel()
		if err != nil {
			return api.Endpoint{}, fromIPAM(err)
		}
	}
	ep := api.Endpoint{Name: req.Name, Network: n.Name, Host: a.cfg.Name, VTEP: a.vtep.String(), MAC: StableMAC(addr).String(),
		Addresses: []string{netip.PrefixFrom(addr, subnet.Bits()).String()}, Aliases: req.Aliases, Service: req.Service,
		Netns: req.Netns, Ifname: req.Ifname, Publish: publish, SRVPorts: req.SRVPorts}
	if lease != nil {
		ep.MAC = dhcpMAC(n.Name, req.Name).String()
		ep.DHCP = lease
	}
	release := func() { a.releaseAddresses(key, ep) }
	if err := a.attach(ep); err != nil {
		release()
		return api.Endpoint{}, apiError(api.CodeBadRequest, "netns", "attaching to %q: %v", req.Netns, err)
	}
	if err := a.putRow(tableEndpoints, key, ep); err != nil {
		a.detach(key)
		release()
		return api.Endpoint{}, err
	}
	// The same name created at the same moment on another host: its row
	// reaches this host within milliseconds; wait that long, so that the
	// one whose claim is later is told now, as an error, rather than
	// taken down after it succeeded.
	if len(a.kv.Node().Members()) > 1 {
		t := time.NewTimer(a.nameSettle)
		<-t.C
	}
	if w, ok := a.kv.Get(tableEndpoints, key); ok && w.Owner != a.cfg.Name {
		// Another host's endpoint of this name claimed it first: ours
		// must not run.
		a.kv.Delete(tableEndpoints, key)
		a.detach(key)
		release()
		return api.Endpoint{}, apiError(api.CodeConflict, "name", "endpoint %q on network %q was created at the same time on host %s, which claimed the name first", req.Name, req.Network, w.Owner)
	}
	if err := a.store.update(func(st *localState) { st.Endpoints = append(st.Endpoints, ep) }); err != nil {
		a.log.Error("saving state", "error", err)
	}
	a.persist()
	a.settled(key)
	a.reconcileNow() // its name resolves here when the call returns
	a.log.Info("endpoint created", "network", n.Name, "endpoint", ep.Name, "address", ep.Addresses[0], "netns", ep.Netns)
	return ep, nil
}

// attach creates the endpoint's TUN device in its namespace, its port on
// the switch, and its DNS listener.
func (a *Agent) attach(ep api.Endpoint) error {
	key := ep.Network + "/" + ep.Name
	if ep.Netns == "" && a.hnsProg != nil {
		// An HNS endpoint (Windows): the reconciler creates it; the
		// container runtime attaches the container to it by name.
		a.mu.Lock()
		a.local[key] = &localEndpoint{rec: ep, busy: true}
		a.endpoints[key] = ep
		a.mu.Unlock()
		a.kickReconcile()
		return nil
	}
	var prefixes []netip.Prefix
	for _, s := range ep.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return err
		}
		prefixes = append(prefixes, p)
	}
	path := netnsPath(ep.Netns)
	var routes []netip.Prefix
	if n, ok := a.network(ep.Network); ok {
		if d, err := driver.Get(n.Driver); err == nil {
			routes = d.ContainerRoutes(driverNetwork(n))
		}
	}
	dev, err := tun.Create(tun.Config{Name: ep.Ifname, Netns: path, MTU: a.cfg.MTU, Addresses: prefixes, Routes: routes})
	if err != nil {
		return err
	}
	port, err := a.sw.AddPort(key, dev)
	if err != nil {
		dev.Close()
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.local[key] = &localEndpoint{rec: ep, port: port, ns: path, busy: true}
	a.endpoints[key] = ep
	r := a.netns[path]
	if r == nil {
		conns, err := a.listenDNS(path) // bind.go: an address in use is retried
		if err != nil {
			a.log.Warn("no DNS in the container's namespace", "netns", ep.Netns, "error", err)
		} else if l, err := a.dns.Serve(conns, dns.View{}); err != nil {
			a.log.Warn("no DNS in the container's namespace", "netns", ep.Netns, "error", err)
		} else {
			r = &nsResolver{l: l, networks: map[string]int{}}
			a.netns[path] = r
		}
	}
	if r != nil {
		r.networks[ep.Network]++
		r.l.SetView(dns.View{Networks: sortedNames(r.networks)})
	}
	if !strings.ContainsRune(ep.Netns, '/') {
		if err := dns.WriteResolvConf(dns.NetnsResolvConfPath(ep.Netns), nil); err != nil {
			a.log.Warn("writing the container's resolv.conf", "netns", ep.Netns, "error", err)
		}
	}
	a.kickReconcile()
	return nil
}

// detach undoes attach: the table first, so no loop writes to the port.
func (a *Agent) detach(key string) {
	a.mu.Lock()
	le := a.local[key]
	delete(a.local, key)
	delete(a.endpoints, key)
	// Another host's endpoint of this name (one that claimed it first)
	// shows here again: it was hidden behind ours, and no event will say so.
	if e, ok := a.kv.Get(tableEndpoints, key); ok && e.Owner != a.cfg.Name {
		a.applyEndpoint(e, false)
	}
	var closeDNS *dns.Listener // closed after unlocking: it may wait for queries
	defer func() {
		if closeDNS != nil {
			closeDNS.Close()
		}
	}()
	if le != nil {
		if r := a.netns[le.ns]; r != nil {
			if r.networks[le.rec.Network]--; r.networks[le.rec.Network] <= 0 {
				delete(r.networks, le.rec.Network)
			}
			if len(r.networks) == 0 {
				closeDNS = r.l
				delete(a.netns, le.ns)
				if ns := le.rec.Netns; !strings.ContainsRune(ns, '/') {
					os.Remove(dns.NetnsResolvConfPath(ns))
					os.Remove("/etc/netns/" + ns) // only if empty
				}
			} else {
				r.l.SetView(dns.View{Networks: sortedNames(r.networks)})
			}
		}
	}
	a.mu.Unlock()
	a.reconcileNow()
	if le != nil && le.port != nil {
		a.sw.RemovePort(le.port)
	}
}

// RemoveEndpoint detaches an endpoint of this host and releases its
// address.
func (a *Agent) RemoveEndpoint(network, name string) error {
	key := network + "/" + name
	a.mu.Lock()
	le, ok := a.local[key]
	_, down := a.down[key]
	delete(a.down, key)
	busy := ok && le.removing
	if ok && !busy {
		le.removing = true
	}
	a.mu.Unlock()
	if busy {
		return apiError(api.CodeConflict, "name", "endpoint %q on network %q is being removed or readdressed; try again", name, network)
	}
	if down {
		a.forgetEndpoint(network, name)
		a.persist()
		a.log.Info("endpoint removed", "network", network, "endpoint", name)
		return nil
	}
	if !ok {
		if e, exists := a.kv.Get(tableEndpoints, key); exists {
			if e.Owner == a.cfg.Name {
				// A row of ours with no endpoint behind it (a crash between
				// two steps): remove the row.
				a.kv.Delete(tableEndpoints, key)
				a.persist()
				return nil
			}
			return apiError(api.CodeConflict, "name", "endpoint %q on network %q lives on host %s: remove it there", name, network, e.Owner)
		}
		return apiError(api.CodeNotFound, "name", "no endpoint %q on network %q", name, network)
	}
	a.detach(key)
	if err := a.kv.Delete(tableEndpoints, key); err != nil {
		a.log.Warn("deleting endpoint row", "endpoint", key, "error", err)
	}
	// The endpoint leaves the state file before its address is released:
	// a crash in between leaks a lease rather than reusing one.
	a.forgetEndpoint(network, name)
	a.persist()
	a.releaseAddresses(key, le.rec)
	a.log.Info("endpoint removed", "network", network, "endpoint", name)
	return nil
}

// restoreEndpoints brings back this host's endpoints after a restart, in
// the same namespaces with the same addresses and MACs. An endpoint whose
// namespace is gone is removed and its address released.
func (a *Agent) restoreEndpoints() {
	if a.recovering.Load() {
		return // a recovery cut short: nothing of this host's is known yet
	}
	a.releaseOrphanLeases()
	for _, ep := range a.store.snapshot().Endpoints {
		key := ep.Network + "/" + ep.Name
		if ep.State == api.StateDown {
			a.mu.Lock()
			a.down[key] = ep
			a.mu.Unlock()
			continue
		}
		if ep.Netns == "" && a.hnsProg == nil {
			a.log.Warn("an HNS endpoint, but no HNS on this host; removing it", "endpoint", key)
			a.removeGone(key, ep)
			continue
		}
		if _, err := os.Stat(netnsPath(ep.Netns)); ep.Netns != "" && err != nil {
			a.log.Warn("endpoint's namespace is gone; removing it", "endpoint", key, "netns", ep.Netns)
			a.removeGone(key, ep)
			continue
		}
		ep, ok := a.checkLeases(key, ep)
		if !ok {
			continue
		}
		if err := a.attach(ep); err != nil {
			a.log.Error("restoring endpoint", "endpoint", key, "error", err)
			continue
		}
		// The row again, in case a crash came between the state file and
		// the table.
		if err := a.putRow(tableEndpoints, key, ep); err != nil {
			a.log.Error("restoring endpoint row", "endpoint", key, "error", err)
		}
		a.settled(key) // a name taken meanwhile takes it down
		a.log.Info("endpoint restored", "endpoint", key, "address", strings.Join(ep.Addresses, ","))
	}
	// Rows of ours with no endpoint behind them go.
	stored := map[string]bool{}
	for _, ep := range a.store.snapshot().Endpoints {
		if ep.State != api.StateDown {
			stored[ep.Network+"/"+ep.Name] = true
		}
	}
	for _, e := range a.kv.List(tableEndpoints) {
		if e.Owner == a.cfg.Name && !stored[e.Key] {
			a.log.Warn("removing an endpoint row of this host with no endpoint behind it", "endpoint", e.Key)
			a.kv.Delete(tableEndpoints, e.Key)
		}
	}
}

func (a *Agent) removeGone(key string, ep api.Endpoint) {
	a.mu.Lock()
	delete(a.local, key)
	a.mu.Unlock()
	a.kv.Delete(tableEndpoints, key)
	a.forgetEndpoint(ep.Network, ep.Name)
	if ep.Netns != "" && !strings.ContainsRune(ep.Netns, '/') {
		os.Remove(dns.NetnsResolvConfPath(ep.Netns))
		os.Remove("/etc/netns/" + ep.Netns) // only if empty
	}
	a.releaseAddresses(key, ep)
}

// releaseAddresses gives an endpoint's addresses back: to the segment's
// DHCP server when one leased them, else to IPAM (best effort, logged).
func (a *Agent) releaseAddresses(key string, ep api.Endpoint) {
	if ep.DHCP != nil {
		a.releaseDHCP(ep)
		return
	}
	for _, s := range ep.Addresses {
		if p, err := netip.ParsePrefix(s); err == nil {
			if err := a.ipam.Release(ep.Network, p.Addr()); err != nil {
				a.log.Warn("releasing address", "endpoint", key, "error", err)
			}
		}
	}
}

// forgetEndpoint drops an endpoint from the state file.
func (a *Agent) forgetEndpoint(network, name string) {
	err := a.store.update(func(st *localState) {
		for i, e := range st.Endpoints {
			if e.Network == network && e.Name == name {
				st.Endpoints = append(st.Endpoints[:i], st.Endpoints[i+1:]...)
				break
			}
		}
	})
	if err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// Services groups the endpoints in sight by (network, service).
func (a *Agent) Services() []api.Service {
	byKey := map[string]*api.Service{}
	for _, e := range a.Endpoints() {
		if e.Service == "" || e.State != "" { // a down endpoint serves nothing
			continue
		}
		k := e.Network + "/" + e.Service
		s := byKey[k]
		if s == nil {
			s = &api.Service{Name: e.Service, Network: e.Network}
			byKey[k] = s
		}
		s.Endpoints = append(s.Endpoints, e.Name+"@"+e.Host)
		s.Addresses = append(s.Addresses, e.Addresses...)
	}
	out := make([]api.Service, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Members lists the live members.
func (a *Agent) Members() []api.Member {
	var out []api.Member
	for _, m := range a.kv.Node().Members() {
		out = append(out, api.Member{Name: m.Name, Addr: m.Addr, VTEP: m.Meta.VTEP, Version: m.Meta.Version, Self: m.Name == a.cfg.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (a *Agent) putRow(table, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = a.kv.Put(table, key, b)
	return err
}

// driverNetwork is what a driver sees of a network.
func driverNetwork(n api.Network) driver.Network {
	dn := driver.Network{Name: n.Name, Internal: n.Internal}
	dn.Subnet, _ = netip.ParsePrefix(n.Subnet)
	dn.Gateway, _ = netip.ParseAddr(n.Gateway)
	return dn
}

func portKey(p driver.Publish) string { return fmt.Sprintf("%d/%s", p.HostPort, p.Proto) }

// publishedByLocked names the endpoint, local or being created, that
// publishes p's host port, or "". Called with a.mu held.
func (a *Agent) publishedByLocked(p driver.Publish) string {
	if key, ok := a.ports[portKey(p)]; ok {
		return key
	}
	for key, le := range a.local {
		for _, s := range le.rec.Publish {
			if q, err := driver.ParsePublish(s); err == nil && q.HostPort == p.HostPort && q.Proto == p.Proto {
				return key
			}
		}
	}
	return ""
}

func sortedNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
