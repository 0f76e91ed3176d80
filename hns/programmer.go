package hns

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Programmer keeps HNS matching what vxnet wants on this host. Each Sync
// lists HNS afresh (HNS may have restarted and forgotten non-persistent
// networks) and changes only what differs, so calling it again with the
// same wants changes nothing. It touches only objects named with
// NamePrefix: networks and endpoints of others are left alone.
//
// HNS has no update for the fields vxnet sets, so a network or endpoint
// whose spec changed is deleted and created again (a network's endpoints go
// with it). A vxnet network that still has an endpoint of someone else's
// (a container a runtime attached to it by name) is not deleted, and the
// error says so. Methods are safe for concurrent use; they run one at a
// time.
type Programmer struct {
	c   Client
	log *slog.Logger
	mu  sync.Mutex // serialises Sync and Cleanup
}

// NewProgrammer returns a Programmer that drives c and logs to log (nil
// discards).
func NewProgrammer(c Client, log *slog.Logger) *Programmer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Programmer{c: c, log: log.With("component", "hns")}
}

// wantNet is one network Sync wants, built.
type wantNet struct {
	spec NetworkSpec
	net  Network
	eps  []EndpointSpec
}

// Sync makes HNS hold exactly nets, with eps (by vxnet network name) as
// their endpoints: it creates the networks missing, deletes the vxnet
// networks not wanted (their endpoints first), re-creates a network whose
// spec changed, and on each network deletes the vxnet endpoints not wanted
// or changed before creating those missing. It goes on past errors and
// returns them joined, each naming its network or endpoint; a network or
// endpoint whose spec is invalid is reported (a *SpecError) and its HNS
// object left as it is. Only failing to list HNS stops it early.
func (p *Programmer) Sync(nets []NetworkSpec, eps map[string][]EndpointSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	want, order, skip, errs := wanted(nets, eps)
	haveNets, err := p.c.Networks()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("hns: list networks: %w", err))...)
	}
	haveEps, err := p.c.Endpoints()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("hns: list endpoints: %w", err))...)
	}
	byNet := map[string][]Endpoint{}
	for _, e := range haveEps {
		byNet[e.HostComputeNetwork] = append(byNet[e.HostComputeNetwork], e)
	}
	kept := map[string]Network{}
	blocked := map[string]bool{} // an old network of this name could not be removed
	for _, hn := range haveNets {
		if !strings.HasPrefix(hn.Name, NamePrefix) || skip[hn.Name] {
			continue
		}
		w, ok := want[hn.Name]
		if _, dup := kept[hn.Name]; ok && !dup && networkMatches(w.net, hn) {
			kept[hn.Name] = hn
			continue
		}
		if rerrs := p.removeNetwork(hn, byNet[hn.ID]); len(rerrs) > 0 {
			errs = append(errs, rerrs...)
			blocked[hn.Name] = true
		}
	}
	for _, name := range order {
		w := want[name]
		hn, ok := kept[name]
		if !ok && blocked[name] {
			continue // created again once the old one is gone
		}
		if !ok {
			if hn, err = p.c.CreateNetwork(w.net); err != nil {
				errs = append(errs, fmt.Errorf("hns: network %q: create: %w", w.spec.Name, err))
				continue
			}
			p.log.Info("created HNS network", "network", w.spec.Name)
		}
		errs = append(errs, p.syncEndpoints(w, hn, byNet[hn.ID])...)
	}
	return errors.Join(errs...)
}

// wanted builds nets, by HNS name in order. skip holds the HNS names of
// networks whose spec is invalid: Sync leaves them as they are.
func wanted(nets []NetworkSpec, eps map[string][]EndpointSpec) (want map[string]wantNet, order []string, skip map[string]bool, errs []error) {
	want, skip = map[string]wantNet{}, map[string]bool{}
	known := map[string]bool{}
	for _, s := range nets {
		known[s.Name] = true
		n, err := BuildNetwork(s)
		if err != nil {
			errs = append(errs, &SpecError{err})
			skip[NetworkName(s.Name)] = true
			continue
		}
		if _, dup := want[n.Name]; dup {
			errs = append(errs, &SpecError{fmt.Errorf("hns: network %q: wanted twice", s.Name)})
			continue
		}
		want[n.Name] = wantNet{spec: s, net: n, eps: eps[s.Name]}
		order = append(order, n.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		if !known[name] {
			errs = append(errs, &SpecError{fmt.Errorf("hns: endpoints for network %q, which is not among the wanted networks", name)})
		}
	}
	return want, order, skip, errs
}

// syncEndpoints makes hn, which is w's network in HNS and has the
// endpoints have, hold w's endpoints.
func (p *Programmer) syncEndpoints(w wantNet, hn Network, have []Endpoint) []error {
	var errs []error
	want, skip := map[string]Endpoint{}, map[string]bool{}
	nsOf := map[string]string{} // the namespace each is to be attached to
	var order []string
	for _, e := range w.eps {
		ep, err := BuildEndpoint(w.spec, hn.ID, e)
		if err != nil {
			errs = append(errs, &SpecError{err})
			skip[EndpointName(w.spec.Name, e.Name)] = true
			continue
		}
		if _, dup := want[ep.Name]; dup {
			errs = append(errs, &SpecError{fmt.Errorf("hns: endpoint %q on network %q: wanted twice", e.Name, w.spec.Name)})
			continue
		}
		want[ep.Name] = ep
		nsOf[ep.Name] = e.Namespace
		order = append(order, ep.Name)
	}
	// Deletions first: a new endpoint may take an address an old one had.
	kept := map[string]bool{}
	for _, he := range have {
		if !strings.HasPrefix(he.Name, NamePrefix) || skip[he.Name] {
			continue
		}
		// Kept with its namespace: the one wanted, none yet, or, when
		// vxnet attaches none, the one its runtime attached it to.
		ns := nsOf[he.Name]
		if we, ok := want[he.Name]; ok && !kept[he.Name] && endpointMatches(we, he) &&
			(ns == "" || he.HostComputeNamespace == "" || he.HostComputeNamespace == ns) {
			kept[he.Name] = true
			if ns != "" && he.HostComputeNamespace == "" {
				short := strings.TrimPrefix(he.Name, EndpointName(w.spec.Name, ""))
				if err := p.c.AttachNamespace(he.ID, ns); err != nil {
					errs = append(errs, fmt.Errorf("hns: endpoint %q on network %q: attach to namespace %s: %w", short, w.spec.Name, ns, err))
				}
			}
			continue
		}
		if err := p.deleteEndpoint(w.spec.Name, he); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range order {
		if kept[name] {
			continue
		}
		short := strings.TrimPrefix(name, EndpointName(w.spec.Name, ""))
		created, err := p.c.CreateEndpoint(want[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("hns: endpoint %q on network %q: create: %w", short, w.spec.Name, err))
			continue
		}
		if ns := nsOf[name]; ns != "" {
			if err := p.c.AttachNamespace(created.ID, ns); err != nil {
				errs = append(errs, fmt.Errorf("hns: endpoint %q on network %q: attach to namespace %s: %w", short, w.spec.Name, ns, err))
			}
		}
		p.log.Info("created HNS endpoint", "network", w.spec.Name, "endpoint", short, "address", want[name].IpConfigurations[0].IpAddress)
	}
	return errs
}

// removeNetwork deletes hn after its vxnet endpoints eps. An endpoint of
// someone else's (a container a runtime attached to the network by name)
// is left alone, and so the network stays too.
func (p *Programmer) removeNetwork(hn Network, eps []Endpoint) []error {
	name := strings.TrimPrefix(hn.Name, NamePrefix)
	var errs []error
	foreign := 0
	for _, e := range eps {
		if !strings.HasPrefix(e.Name, NamePrefix) {
			foreign++
			continue
		}
		if err := p.deleteEndpoint(name, e); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 || foreign > 0 {
		return append(errs, fmt.Errorf("hns: network %q: not deleted: endpoints remain (%d not vxnet's)", name, foreign))
	}
	if err := p.c.DeleteNetwork(hn.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return []error{fmt.Errorf("hns: network %q: delete %s: %w", name, hn.ID, err)}
	}
	p.log.Info("deleted HNS network", "network", name)
	return nil
}

// deleteEndpoint deletes e of network (vxnet's name, "" when unknown); one
// already gone is no error.
func (p *Programmer) deleteEndpoint(network string, e Endpoint) error {
	name, where := e.Name, ""
	if network != "" {
		name = strings.TrimPrefix(e.Name, EndpointName(network, ""))
		where = fmt.Sprintf(" on network %q", network)
	}
	if err := p.c.DeleteEndpoint(e.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("hns: endpoint %q%s: delete %s: %w", name, where, e.ID, err)
	}
	p.log.Info("deleted HNS endpoint", "network", network, "endpoint", name)
	return nil
}

// Cleanup removes every endpoint named with NamePrefix: what a previous
// run left. Stale endpoints are the most common complaint about container
// networking on Windows (moby#39098, Windows-Containers#631); the agent
// calls Cleanup once at start, and Sync then re-creates what is wanted.
// Networks stay (Sync removes those no longer wanted). It goes on past
// errors and returns them joined.
func (p *Programmer) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	eps, err := p.c.Endpoints()
	if err != nil {
		return fmt.Errorf("hns: list endpoints: %w", err)
	}
	var errs []error
	removed := 0
	for _, e := range eps {
		if !strings.HasPrefix(e.Name, NamePrefix) {
			continue
		}
		if err := p.deleteEndpoint("", e); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	p.log.Info("cleaned up HNS", "count", removed)
	return errors.Join(errs...)
}
