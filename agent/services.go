package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane"
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
	n, ok := a.network(req.Network)
	if !ok {
		return api.Service{}, apiError(api.CodeNotFound, "network", "no network %q", req.Network)
	}
	if mode == tables.ModeDNSRR && (req.VIP != "" || req.VIP6 != "") {
		return api.Service{}, apiError(api.CodeBadRequest, "vip", "a dnsrr service has no VIP (leave out --vip, or use --endpoint-mode vip)")
	}
	if mode == tables.ModeVIP {
		switch {
		case n.AssignedBy != "":
			return api.Service{}, apiError(api.CodeBadRequest, "network", "network %q: its addresses are assigned by %s; a VIP comes from vxnet's IPAM (use --endpoint-mode dnsrr)", n.Name, n.AssignedBy)
		case n.Driver != "overlay" && n.Driver != "nat":
			return api.Service{}, apiError(api.CodeBadRequest, "network", "network %q is a %s network: VIPs are for overlay and nat networks (use --endpoint-mode dnsrr)", n.Name, n.Driver)
		case req.VIP6 != "" && !n.Subnet6.IsValid():
			return api.Service{}, apiError(api.CodeBadRequest, "vip6", "network %q has no IPv6 subnet for vip6 %q", n.Name, req.VIP6)
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
	a.mu.Lock()
	_, exists := a.services[key]
	var taken string
	for _, s := range a.services {
		for _, p := range s.Ports {
			for _, q := range ports {
				if p.Published == q.Published && p.Proto == q.Proto && taken == "" {
					taken = fmt.Sprintf("publish %q: port %d/%s is published by service %s on network %s", q.String(), q.Published, q.Proto, s.Name, s.Network)
				}
			}
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
	a.persist()
	a.kickReconcile()
	a.log.Info("service created", "network", s.Network, "service", s.Name, "mode", s.Mode, "vips", fmt.Sprint(s.VIPs))
	return a.apiService(s), nil
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
				return nil, fromIPAM(err)
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
	vips := a.vipLeases[key]
	delete(a.vipLeases, key)
	a.mu.Unlock()
	network, _, _ := strings.Cut(key, "/")
	for _, v := range vips {
		if err := a.ipam.Release(a.ipamName(network, v), v); err != nil {
			a.log.Warn("releasing a service's VIP", "network", network, "address", v.String(), "error", err)
		}
	}
	a.saveVIPs()
	a.persist()
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

// settleVIPs makes this host's VIP leases follow the services table:
// leases of a service that is gone, or whose row names other VIPs or
// another VIP host, go back; a row naming this host as VIP host whose
// leases it lacks (its state was lost) gets them back.
func (a *Agent) settleVIPs() {
	a.mu.Lock()
	var drop []string
	for key, vips := range a.vipLeases {
		s, ok := a.services[key]
		if !ok || s.VIPHost != a.cfg.Name || !slices.Equal(s.VIPs, vips) {
			drop = append(drop, key)
		}
	}
	var take []tables.Service
	for key, s := range a.services {
		if _, ok := a.vipLeases[key]; !ok && s.VIPHost == a.cfg.Name && len(s.VIPs) > 0 && !slices.Contains(drop, key) {
			take = append(take, s)
		}
	}
	a.mu.Unlock()
	for _, key := range drop {
		a.log.Info("giving back a service's VIPs: the service is gone or another creation won", "service", key)
		a.releaseVIPs(key)
	}
	for _, s := range take {
		var got []netip.Addr
		for _, v := range s.VIPs {
			if err := a.ipam.AllocateStatic(a.ipamName(s.Network, v), v); err != nil {
				a.log.Warn("taking back a service's VIP", "service", s.Key(), "address", v.String(), "error", err)
				continue
			}
			got = append(got, v)
		}
		if len(got) > 0 {
			a.mu.Lock()
			a.vipLeases[s.Key()] = got
			a.mu.Unlock()
			a.saveVIPs()
		}
	}
}

// saveVIPs writes the VIP leases into the state file.
func (a *Agent) saveVIPs() {
	a.resSave.Lock()
	defer a.resSave.Unlock()
	a.mu.Lock()
	vips := make(map[string][]netip.Addr, len(a.vipLeases))
	for k, v := range a.vipLeases {
		vips[k] = slices.Clone(v)
	}
	a.mu.Unlock()
	if err := a.store.Update(func(st *hoststate.State) { st.VIPs = vips }); err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// loadVIPs reads the VIP leases from the state file.
func (a *Agent) loadVIPs() {
	st := a.store.Snapshot()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range st.VIPs {
		a.vipLeases[k] = slices.Clone(v)
	}
}

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
