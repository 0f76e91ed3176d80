package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/metrics"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// Services with virtual IPs. A service is a row of the cluster's
// services table, written by the host that creates it; its VIPs are
// leases of that host's IPAM (VIPHost), kept in its state file with the
// service's key (hoststate.State.VIPs), so that no endpoint gets one while
// the service lives. Every host's plan turns the row and the endpoints
// that joined the service into the switch's service (dataplane.ServiceSpec)
// and DNS records: the name answers with the VIPs, tasks.NAME with the
// endpoints. The VIP host gives the leases back when it sees the row gone
// (removed from any host), or another creation of the key won; a VIP host
// whose state was lost takes its VIPs back from the rows (settleVIPs).

// CreateService creates a service on a network.
func (a *Agent) CreateService(ctx context.Context, req api.ServiceCreate) (api.Service, error) {
	if err := names.Service(req.Name); err != nil {
		return api.Service{}, apiError(api.CodeBadRequest, "name", "%v", err)
	}
	mode := req.EndpointMode
	switch mode {
	case "":
		mode = tables.ModeVIP
	case tables.ModeVIP, tables.ModeDNSRR:
	default:
		return api.Service{}, apiError(api.CodeBadRequest, "endpointMode", "endpoint mode %q: want vip (connections to one virtual IP, spread over the endpoints) or dnsrr (the name answers with every endpoint's address)", req.EndpointMode)
	}
	var ports []tables.PublishedPort
	for _, p := range req.Publish {
		pp, err := tables.ParsePublishedPort(p)
		if err != nil {
			return api.Service{}, apiError(api.CodeBadRequest, "publish", "%v", err)
		}
		if slices.ContainsFunc(ports, func(q tables.PublishedPort) bool { return q.Published == pp.Published && q.Proto == pp.Proto }) {
			return api.Service{}, apiError(api.CodeBadRequest, "publish", "port %d/%s published twice", pp.Published, pp.Proto)
		}
		ports = append(ports, pp)
	}
	if len(ports) > 0 && mode != tables.ModeVIP {
		return api.Service{}, apiError(api.CodeBadRequest, "publish", "published ports need endpoint mode vip: every host sends their connections to the VIP")
	}
	if req.Network == "" {
		return api.Service{}, apiError(api.CodeBadRequest, "network", "network is required: the network whose endpoints the service groups")
	}
	n, ok := a.network(req.Network)
	if !ok {
		return api.Service{}, apiError(api.CodeNotFound, "network", "no network %q", req.Network)
	}
	if mode == tables.ModeDNSRR && (req.VIP != "" || req.VIP6 != "") {
		field := "vip"
		if req.VIP == "" {
			field = "vip6"
		}
		return api.Service{}, apiError(api.CodeBadRequest, field, "a dnsrr service has no VIP (leave out --%s, or use --endpoint-mode vip)", field)
	}
	if mode == tables.ModeVIP && req.VIP6 != "" && req.VIP6 != "auto" && !n.Subnet6.IsValid() && n.Subnet.Addr().Is6() {
		// An IPv6-only network: its VIP is IPv6 whichever field names it.
		if req.VIP != "" {
			return api.Service{}, apiError(api.CodeBadRequest, "vip6", "vip6 %q: network %q has one subnet, IPv6 (%v), and vip %q names the VIP already", req.VIP6, n.Name, n.Subnet, req.VIP)
		}
		req.VIP, req.VIP6 = req.VIP6, ""
	}
	if mode == tables.ModeVIP {
		switch {
		case n.AssignedBy != "":
			return api.Service{}, apiError(api.CodeBadRequest, "network", "network %q: its addresses are assigned by %s; a VIP comes from vxnet's IPAM (use --endpoint-mode dnsrr)", n.Name, n.AssignedBy)
		case n.Driver != "overlay" && n.Driver != "nat":
			return api.Service{}, apiError(api.CodeBadRequest, "network", "network %q is a %s network: VIPs are for overlay and nat networks (use --endpoint-mode dnsrr)", n.Name, n.Driver)
		case req.VIP6 != "" && req.VIP6 != "auto" && !n.Subnet6.IsValid(): // auto: one if the network has IPv6
			return api.Service{}, apiError(api.CodeBadRequest, "vip6", "network %q has no IPv6 subnet for vip6 %q", n.Name, req.VIP6)
		}
	}
	for _, p := range ports {
		if err := a.clusterPortErr(p.String(), p.Published, p.Proto); err != nil {
			return api.Service{}, err
		}
	}
	if len(ports) > 0 && !meshable(n) {
		return api.Service{}, apiError(api.CodeBadRequest, "publish", "network %q: services publish ports on every host on overlay networks with a way out (this one is %s%s)", n.Name, n.Driver, map[bool]string{true: ", internal"}[n.Internal])
	}
	key := tables.ServiceKey(req.Network, req.Name)
	release, err := a.claimName("service/"+key, func() error {
		return apiError(api.CodeBusy, "name", "service %q on network %q is being created: try again", req.Name, req.Network)
	})
	if err != nil {
		return api.Service{}, err
	}
	defer release()
	// The network's DNS name, shared with its endpoints' (names.go).
	releaseDNS, err := a.claimName(dnsClaim(req.Network, req.Name), func() error {
		return apiError(api.CodeBusy, "name", "an endpoint %q on network %q is being created: try again", req.Name, req.Network)
	})
	if err != nil {
		return api.Service{}, err
	}
	defer releaseDNS()
	a.mu.Lock()
	_, exists := a.services[key]
	for _, s := range a.services {
		if s.Network == req.Network && strings.EqualFold(s.Name, req.Name) && s.Name != req.Name {
			a.mu.Unlock()
			return api.Service{}, apiError(api.CodeConflict, "name", "service %q exists on network %q as %q: DNS names ignore case", req.Name, req.Network, s.Name)
		}
	}
	if err := a.endpointNameErrLocked("service", req.Name, req.Network); err != nil {
		a.mu.Unlock()
		return api.Service{}, err
	}
	var taken string
	for _, e := range a.rows {
		for _, ps := range e.Publish {
			pp, err := driver.ParsePublish(ps)
			if err != nil {
				continue
			}
			for _, q := range ports {
				if pp.HostPort == q.Published && pp.Proto == q.Proto && taken == "" {
					taken = fmt.Sprintf("publish %q: port %d/%s is published by endpoint %s on host %s", q.String(), q.Published, q.Proto, e.Name, e.Host)
				}
			}
		}
	}
	for _, q := range ports {
		if svc := a.servicePortLocked(driver.Publish{HostPort: q.Published, Proto: q.Proto}); svc != "" && taken == "" {
			taken = fmt.Sprintf("publish %q: port %d/%s is published by %s", q.String(), q.Published, q.Proto, svc)
		}
	}
	a.mu.Unlock()
	if exists {
		return api.Service{}, apiError(api.CodeConflict, "name", "service %q exists on network %q", req.Name, req.Network)
	}
	if taken != "" {
		return api.Service{}, apiError(api.CodeConflict, "publish", "%s", taken)
	}
	s := tables.Service{Name: req.Name, Network: req.Network, Mode: mode, Ports: ports, Creator: a.cfg.Name, Created: time.Now().UTC()}
	if mode == tables.ModeVIP {
		vips, err := a.leaseVIPs(ctx, key, n, req)
		if err != nil {
			return api.Service{}, err
		}
		s.VIPs, s.VIPHost = vips, a.cfg.Name
	}
	if err := a.put(tables.Services, key, s.Encode()); err != nil {
		a.releaseVIPs(key)
		return api.Service{}, err
	}
	// The same service created at the same moment on another host: its
	// row reaches this host within moments; the store keeps one of the
	// two, and the other's creator is told now, as an error.
	if len(a.kv.Node().Members()) > 1 {
		t := time.NewTimer(a.nameSettle)
		<-t.C
	}
	if e, ok := a.kv.Get(tables.Services, key); ok && e.Owner != a.cfg.Name {
		a.releaseVIPs(key)
		return api.Service{}, apiError(api.CodeConflict, "name", "service %q on network %q was created at the same time on host %s, whose row the cluster keeps", req.Name, req.Network, e.Owner)
	}
	a.persist()
	a.kickReconcile()
	a.log.Info("service created", "network", s.Network, "service", s.Name, "mode", s.Mode, "vips", fmt.Sprint(s.VIPs))
	return a.apiService(s), nil
}

// addressErr is IPAM's refusal of an asked-for address (an endpoint's ip
// or ip6, a service's vip or vip6), named by field, with what holds the
// address when it is in use (here, or in another host's block).
func (a *Agent) addressErr(field, network string, vip netip.Addr, err error) error {
	var ae *api.Error
	if !errors.As(fromIPAM(err), &ae) {
		return err
	}
	out := *ae
	out.Field = field
	if errors.Is(err, ipam.ErrInUse) || errors.Is(err, ipam.ErrOtherHost) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, e := range a.rows {
			if e.Network == network && slices.ContainsFunc(e.Addrs, func(p netip.Prefix) bool { return p.Addr() == vip }) {
				out.Message += fmt.Sprintf(" (by endpoint %s on host %s)", e.Name, e.Host)
				return &out
			}
		}
		for _, s := range a.services {
			if s.Network == network && slices.Contains(s.VIPs, vip) {
				out.Message += fmt.Sprintf(" (the VIP of service %s)", s.Name)
				return &out
			}
		}
	}
	return &out
}

// clusterPortErr refuses a host port that the cluster's own services
// listen on (gossip over TCP and UDP, VXLAN over UDP, the join service
// over TCP where this host runs one) for spec, a port to publish. Errors
// name the field publish.
func (a *Agent) clusterPortErr(spec string, port uint16, proto string) error {
	p := int(port)
	joins := a.join != nil // the join service listens
	if p == a.cfg.GossipPort || proto == "udp" && p == a.cfg.VXLANPort || joins && proto == "tcp" && p == a.cfg.JoinPort {
		join := ""
		if joins {
			join = fmt.Sprintf(", join %d/tcp", a.cfg.JoinPort)
		}
		return apiError(api.CodeBadRequest, "publish", "publish %q: port %d/%s is the cluster's own (gossip %d, VXLAN %d/udp%s): pick another", spec, port, proto, a.cfg.GossipPort, a.cfg.VXLANPort, join)
	}
	return nil
}

// servicePortLocked names the service that publishes host port p on
// every host (the routing mesh), or "". a.mu is held.
func (a *Agent) servicePortLocked(p driver.Publish) string {
	for _, s := range a.services {
		for _, q := range s.Ports {
			if q.Published == p.HostPort && q.Proto == p.Proto {
				return fmt.Sprintf("service %s on network %s", s.Name, s.Network)
			}
		}
	}
	return ""
}

// leaseVIPs takes the service's VIPs from IPAM: the asked-for addresses,
// or the next free ones; one per family of the network.
func (a *Agent) leaseVIPs(ctx context.Context, key string, n tables.Network, req api.ServiceCreate) ([]netip.Addr, error) {
	type side struct {
		ipamName, field, want string
		subnet                netip.Prefix
	}
	sides := []side{{n.Name, "vip", req.VIP, n.Subnet}}
	if n.Subnet6.IsValid() {
		sides = append(sides, side{n.Name + ipam.V6Suffix, "vip6", req.VIP6, n.Subnet6})
	}
	var vips []netip.Addr
	undo := func() {
		for _, v := range vips {
			a.ipam.Release(a.ipamName(n.Name, v), v)
		}
	}
	for _, sd := range sides {
		var v netip.Addr
		if sd.want == "" || sd.want == "auto" {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var err error
			v, err = a.ipam.Allocate(actx, sd.ipamName)
			cancel()
			if err != nil {
				undo()
				return nil, fromIPAM(err)
			}
		} else {
			p, err := netip.ParseAddr(sd.want)
			if err != nil || p.Zone() != "" || !sd.subnet.Contains(p.Unmap()) {
				undo()
				return nil, apiError(api.CodeBadRequest, sd.field, "%s %q: want auto or an address of the network's subnet %s", sd.field, sd.want, sd.subnet)
			}
			if err := a.ipam.AllocateStatic(sd.ipamName, p.Unmap()); err != nil {
				undo()
				return nil, a.addressErr(sd.field, n.Name, p.Unmap(), err)
			}
			v = p.Unmap()
		}
		vips = append(vips, v)
	}
	a.mu.Lock()
	a.vipLeases[key] = vips
	a.mu.Unlock()
	a.saveVIPs()
	return vips, nil
}

// releaseVIPs gives back the VIPs this host leased for a service key.
func (a *Agent) releaseVIPs(key string) {
	a.mu.Lock()
	vips := slices.Clone(a.vipLeases[key])
	a.mu.Unlock()
	a.releaseSome(key, vips)
}

// RemoveService removes a service, from any host: its endpoints stay (and
// answer under their own names, and tasks.NAME no more); its VIPs go back
// when their host sees the row gone.
func (a *Agent) RemoveService(network, name string) error {
	key := tables.ServiceKey(network, name)
	a.mu.Lock()
	_, ok := a.services[key]
	a.mu.Unlock()
	if !ok {
		for _, s := range api.Services(a.Endpoints()) {
			if s.Network == network && s.Name == name {
				return apiError(api.CodeNotFound, "name", "service %q on network %q was never created: it is the name its endpoints joined (%s); it goes with them", name, network, strings.Join(s.Endpoints, ", "))
			}
		}
		return apiError(api.CodeNotFound, "name", "no service %q on network %q", name, network)
	}
	if err := a.del(tables.Services, key); err != nil {
		return err
	}
	a.settleVIPs()
	a.persist()
	a.kickReconcile()
	a.log.Info("service removed", "network", network, "service", name)
	return nil
}

// settleVIPs makes this host's VIP leases follow the services table.
// Leases of a service that is gone, or of VIPs its row no longer names,
// go back. A VIP is leased by the host whose address block holds it: the
// VIP host (the creator), which takes its VIPs back if it lost its state;
// and, once the VIP host has left the cluster, the host each VIP's block
// passes to (its heir, per family), which leases it as soon as it holds
// the block, so that no endpoint ever gets the VIP of a live service.
// Services being created here are left alone (their row is not written
// yet). One settle at a time.
func (a *Agent) settleVIPs() {
	a.vipMu.Lock()
	defer a.vipMu.Unlock()
	_, live := a.liveMembers()
	type change struct {
		key  string
		vips []netip.Addr
		mine bool // this host is the VIP host
	}
	var drop, take []change
	a.mu.Lock()
	for key, held := range a.vipLeases {
		if _, creating := a.creating["service/"+key]; creating {
			continue
		}
		s, ok := a.services[key]
		var stale []netip.Addr
		for _, v := range held {
			if !ok || !slices.Contains(s.VIPs, v) {
				stale = append(stale, v)
			}
		}
		if len(stale) > 0 {
			drop = append(drop, change{key, stale, false})
		}
	}
	for key, s := range a.services {
		if _, creating := a.creating["service/"+key]; creating || len(s.VIPs) == 0 || (s.VIPHost != a.cfg.Name && live[s.VIPHost]) {
			continue
		}
		var missing []netip.Addr
		for _, v := range s.VIPs {
			if !slices.Contains(a.vipLeases[key], v) {
				missing = append(missing, v)
			}
		}
		if len(missing) > 0 {
			take = append(take, change{key, missing, s.VIPHost == a.cfg.Name})
		}
	}
	a.mu.Unlock()
	for _, d := range drop {
		a.log.Info("giving back VIPs: their service is gone or names others", "service", d.key, "vips", fmt.Sprint(d.vips))
		a.releaseSome(d.key, d.vips)
	}
	for _, tk := range take {
		network, _, _ := strings.Cut(tk.key, "/")
		mine := tk.mine
		for _, v := range tk.vips {
			if err := a.ipam.AllocateStatic(a.ipamName(network, v), v); err != nil {
				if mine {
					a.log.Warn("taking back a service's VIP", "service", tk.key, "address", v.String(), "error", err)
				}
				continue // another host's block: its holder leases it
			}
			a.addVIP(tk.key, v)
			if !mine {
				a.log.Info("leasing a VIP whose host left the cluster: its address block is this host's now", "service", tk.key, "address", v.String())
			}
		}
	}
}

// addVIP records one more VIP lease of a service key.
func (a *Agent) addVIP(key string, v netip.Addr) {
	a.mu.Lock()
	if !slices.Contains(a.vipLeases[key], v) {
		a.vipLeases[key] = append(a.vipLeases[key], v)
	}
	a.mu.Unlock()
	a.saveVIPs()
	a.persist()
}

// releaseSome forgets some of the VIPs leased for a service key, saves
// that, then gives back those it did hold and IPAM still counts as its
// leases.
func (a *Agent) releaseSome(key string, vips []netip.Addr) {
	network, _, _ := strings.Cut(key, "/")
	a.mu.Lock()
	var gone []netip.Addr
	kept := slices.DeleteFunc(slices.Clone(a.vipLeases[key]), func(v netip.Addr) bool {
		if slices.Contains(vips, v) {
			gone = append(gone, v)
			return true
		}
		return false
	})
	if len(kept) == 0 {
		delete(a.vipLeases, key)
	} else {
		a.vipLeases[key] = kept
	}
	a.mu.Unlock()
	a.saveVIPs()
	a.persist()
	leased := a.leasedSet(network)
	for _, v := range gone {
		if !leased[v] {
			continue
		}
		if err := a.ipam.Release(a.ipamName(network, v), v); err != nil {
			a.log.Warn("releasing a service's VIP", "network", network, "address", v.String(), "error", err)
		}
	}
}

// saveVIPs writes the VIP leases into the state file.
func (a *Agent) saveVIPs() {
	a.saveAddrs(a.vipLeases, func(st *hoststate.State, m map[string][]netip.Addr) { st.VIPs = m })
}

// loadVIPs reads the VIP leases from the state file.
func (a *Agent) loadVIPs() { a.loadAddrs(a.vipLeases, a.store.Snapshot().VIPs) }

// refreshServiceLocked re-reads one key of the services table. a.mu is
// held.
func (a *Agent) refreshServiceLocked(key string) {
	e, ok := a.kv.Get(tables.Services, key)
	if !ok {
		delete(a.services, key)
		return
	}
	s, err := tables.DecodeService(key, e.Value)
	if err != nil {
		delete(a.services, key)
		a.log.Warn("ignoring a malformed service row", "node", e.Owner, "error", err)
		return
	}
	a.services[key] = s
}

// serviceUsers names the services of a network.
func (a *Agent) serviceUsers(network string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.services {
		if s.Network == network {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Services lists the services: the created ones, and the names endpoints
// joined with none created; with their endpoints and this host's flow
// counts.
func (a *Agent) Services() []api.Service {
	implicit := api.Services(a.Endpoints())
	a.mu.Lock()
	rows := make([]tables.Service, 0, len(a.services))
	for _, s := range a.services {
		rows = append(rows, s)
	}
	a.mu.Unlock()
	byKey := map[string]api.Service{}
	for _, s := range implicit {
		byKey[tables.ServiceKey(s.Network, s.Name)] = s
	}
	for _, s := range rows {
		as := a.apiService(s)
		if im, ok := byKey[s.Key()]; ok {
			as.Endpoints, as.Addresses = im.Endpoints, im.Addresses
		}
		byKey[s.Key()] = as
	}
	out := make([]api.Service, 0, len(byKey))
	for _, k := range sortedMapKeys(byKey) {
		out = append(out, byKey[k])
	}
	return out
}

// apiService is a row as the API shows it, with this host's counts.
func (a *Agent) apiService(s tables.Service) api.Service {
	as := api.Service{Name: s.Name, Network: s.Network, EndpointMode: s.Mode, Creator: s.Creator, Created: s.Created,
		Endpoints: []string{}, Addresses: []string{}}
	for _, v := range s.VIPs {
		as.VIPs = append(as.VIPs, v.String())
	}
	for _, p := range s.Ports {
		as.Publish = append(as.Publish, p.String())
	}
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	if c := a.svcCounters[s.Key()]; c != nil {
		as.Flows, as.Moved = c.Flows.Load(), c.Moved.Load()
	}
	prefix := s.Key() + "|"
	for k, c := range a.taskCounters {
		if rest, ok := strings.CutPrefix(k, prefix); ok && c.Flows.Load() > 0 {
			if as.TaskFlows == nil {
				as.TaskFlows = map[string]uint64{}
			}
			as.TaskFlows[rest] = c.Flows.Load()
		}
	}
	return as
}

// serviceCounters fills in the plan's counters: one per service and one
// per (service, endpoint), kept from one plan to the next so that the
// switch's counts survive a table change.
func (a *Agent) serviceCounters(in *plan.Input) {
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	in.ServiceCounters = map[string]*dataplane.ServiceCounters{}
	in.TaskCounters = map[string]*dataplane.TaskCounters{}
	for _, s := range in.Services {
		k := s.Key()
		if a.svcCounters[k] == nil {
			a.svcCounters[k] = &dataplane.ServiceCounters{}
		}
		in.ServiceCounters[k] = a.svcCounters[k]
	}
	for _, ep := range in.Endpoints {
		sk := tables.ServiceKey(ep.Network, ep.Service)
		if ep.Service == "" || in.ServiceCounters[sk] == nil {
			continue
		}
		tk := plan.TaskKey(sk, ep)
		if a.taskCounters[tk] == nil {
			a.taskCounters[tk] = &dataplane.TaskCounters{}
		}
		in.TaskCounters[tk] = a.taskCounters[tk]
	}
	// Those of services and endpoints gone go with them: nothing kept
	// for every service or endpoint there ever was.
	for k := range a.svcCounters {
		if in.ServiceCounters[k] == nil {
			delete(a.svcCounters, k)
		}
	}
	for k := range a.taskCounters {
		if in.TaskCounters[k] == nil {
			delete(a.taskCounters, k)
		}
	}
}

// serviceFlows are the services' flow counts for the metrics: the
// services this host's switch has counted, by task.
func (a *Agent) serviceFlows() []metrics.ServiceFlows {
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	var out []metrics.ServiceFlows
	for _, key := range sortedMapKeys(a.svcCounters) {
		sf := metrics.ServiceFlows{Service: key, ByTask: map[string]uint64{}, Moved: a.svcCounters[key].Moved.Load()}
		for tk, c := range a.taskCounters {
			if svc, task, ok := strings.Cut(tk, "|"); ok && svc == key {
				sf.ByTask[task] = c.Flows.Load()
			}
		}
		out = append(out, sf)
	}
	return out
}
