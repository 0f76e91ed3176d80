package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// final heals every fault, waits for the tables to converge and runs
// every check.
func (c *campaign) final(ctx context.Context) {
	c.say("final", "healing every host, then waiting up to %v for the tables to agree", c.cfg.Converge)
	c.healAll(ctx)
	o := c.converge(ctx)
	c.mu.Lock()
	c.finalObs = o
	c.mu.Unlock()
	ops, faults, _ := c.hist.snapshot()
	c.violate(PhaseFinal,
		checkMembers(o.Hosts, c.allHosts()),
		checkAgreement(o.Hosts),
		checkAddresses(o, true),
		checkSubnets(o),
		checkSurvival(expectedNetworks(ops), o.Hosts, faults),
		checkUniqueNames(ops, faults, o.Hosts),
		checkLeases(o.Hosts),
		checkDevices(o))
	c.phases = append(c.phases, PhaseFinal)
	if ref, ok := reference(o); ok {
		c.checkDNS(ctx, o, ref, ops)
		c.checkReach(ctx, o, ref)
	}
}

// allHosts lists the lab's hosts.
func (c *campaign) allHosts() []string {
	var out []string
	for _, h := range c.l.State().Hosts {
		out = append(out, h.Name)
	}
	return out
}

// reference is the view the final checks take the tables from: the first
// that answered (after convergence they all agree; if they do not,
// tables-agree says so).
func reference(o Observation) (HostView, bool) {
	v := answering(o.Hosts)
	if len(v) == 0 {
		return HostView{}, false
	}
	return v[0], true
}

// converge polls every host until each lists every host as a member and
// they all list the same tables, or cfg.Converge passes. It returns the
// last observation.
func (c *campaign) converge(ctx context.Context) Observation {
	hosts := c.allHosts()
	start := time.Now()
	for {
		o := c.l.observe(ctx, hosts, c.liveContainers())
		o.At = c.now()
		if len(checkMembers(o.Hosts, hosts)) == 0 && len(checkAgreement(o.Hosts)) == 0 {
			c.converged = o.At
			c.say("final", "every host lists every member and the same tables (%.1fs)", time.Since(start).Seconds())
			return o
		}
		if ctx.Err() != nil || time.Since(start) > c.cfg.Converge {
			c.say("final", "the tables still differ after %v: checking them as they are", c.cfg.Converge)
			return o
		}
		pause(ctx, 500*time.Millisecond)
	}
}

// dnsQuestion is a name to ask and the addresses it must give (none: it
// must not resolve).
type dnsQuestion struct {
	Name string
	Want []netip.Addr
}

// dnsQuestions lists what to ask on network: each endpoint's name and
// NAME.NETWORK (its addresses), each service's name and tasks.NAME (its
// endpoints' addresses), and the names of endpoints the workload created
// there that are gone (nothing).
func dnsQuestions(network string, ref HostView, ops []OpRecord) []dnsQuestion {
	var qs []dnsQuestion
	live := map[string]bool{}
	for _, e := range inService(ref.Endpoints) {
		if e.Network != network {
			continue
		}
		var want []netip.Addr
		for _, p := range addrsOf(e) {
			want = append(want, p.Addr())
		}
		live[e.Name] = true
		qs = append(qs, dnsQuestion{e.Name, want}, dnsQuestion{e.Name + "." + network, want})
	}
	for _, s := range ref.Services {
		if s.Network != network {
			continue
		}
		var want []netip.Addr
		for _, a := range s.Addresses {
			if p, err := netip.ParsePrefix(a); err == nil {
				want = append(want, p.Addr())
			}
		}
		live[s.Name] = true
		qs = append(qs, dnsQuestion{s.Name, want}, dnsQuestion{"tasks." + s.Name, want})
	}
	var gone []string
	for _, r := range ops {
		if (r.Kind == OpEndpointCreate || r.Kind == OpEndpointCreateTwice) && r.Network == network &&
			r.Outcome != OutcomeSkipped && !live[r.Endpoint] && !slices.Contains(gone, r.Endpoint) {
			gone = append(gone, r.Endpoint)
			qs = append(qs, dnsQuestion{r.Endpoint, nil}, dnsQuestion{r.Endpoint + "." + network, nil})
		}
	}
	return qs
}

// dnsClients picks, on each host, one container of network whose
// endpoint ref lists there and whose device holds its address.
func dnsClients(network string, ref HostView, o Observation) []ContainerView {
	var out []ContainerView
	for _, c := range o.Containers {
		if c.Network != network || slices.ContainsFunc(out, func(x ContainerView) bool { return x.Host == c.Host }) {
			continue
		}
		listed := slices.ContainsFunc(inService(ref.Endpoints), func(e Endpoint) bool {
			return e.Network == network && e.Name == c.Name && e.Host == c.Host &&
				slices.ContainsFunc(c.Devices, func(d Device) bool {
					return slices.ContainsFunc(d.Addrs, func(p netip.Prefix) bool { return hasAddr(e, p.Addr()) })
				})
		})
		if listed {
			out = append(out, c)
		}
	}
	return out
}

// parseDig parses `dig +noall +answer`: the A and AAAA records by owner
// name (lower case, no trailing dot).
func parseDig(out string) map[string][]netip.Addr {
	got := map[string][]netip.Addr{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(f[0], ";") || (f[3] != "A" && f[3] != "AAAA") {
			continue
		}
		if a, err := netip.ParseAddr(f[4]); err == nil {
			name := strings.TrimSuffix(strings.ToLower(f[0]), ".")
			got[name] = append(got[name], a)
		}
	}
	return got
}

// checkDNS asks every question of every network in a container on each of
// its hosts, with one dig per container.
func (c *campaign) checkDNS(ctx context.Context, o Observation, ref HostView, ops []OpRecord) {
	var results []DNSResult
	asked := 0
	for _, n := range ref.Networks {
		qs := dnsQuestions(n.Name, ref, ops)
		if len(qs) == 0 {
			continue
		}
		argv := []string{"dig", "+noall", "+answer", "+time=2", "+tries=1", digAtAgent}
		for _, q := range qs {
			argv = append(argv, q.Name)
		}
		for _, cl := range dnsClients(n.Name, ref, o) {
			dctx, cancel := context.WithTimeout(ctx, time.Duration(len(qs))*3*time.Second)
			out, err := c.l.run.run(dctx, inNetns(cl.Netns, argv...)...)
			cancel()
			got := parseDig(out)
			for _, q := range qs {
				r := DNSResult{Network: n.Name, Name: q.Name, From: cl.Netns, Host: cl.Host, Want: q.Want, Got: got[strings.ToLower(q.Name)]}
				if err != nil {
					r.Err = err.Error()
				}
				results = append(results, r)
			}
			asked++
		}
	}
	vs := checkDNS(results)
	c.say("final", "dns: %d answers from %d containers, %d names wrong", len(results), asked, len(vs))
	c.violate(PhaseFinal, vs)
}

// checkReach runs ping and TCP between every ordered pair of endpoints of
// each network, in the containers of the endpoints ref lists.
func (c *campaign) checkReach(ctx context.Context, o Observation, ref HostView) {
	for _, n := range ref.Networks {
		var cs []ContainerState
		for _, e := range inService(ref.Endpoints) {
			if e.Network == n.Name && slices.ContainsFunc(o.Containers, func(x ContainerView) bool { return x.Netns == e.Netns && x.Host == e.Host }) {
				cs = append(cs, ContainerState{Name: e.Name, Host: e.Host, Netns: e.Netns, Network: n.Name, Addr: e.Addr()})
			}
		}
		if len(cs) < 2 {
			continue
		}
		dc := DemoConfig{Network: n.Name, Checks: []Check{PingAddr, TCPAddr}, Parallel: 4}.withDefaults()
		if err := c.l.startEchoes(ctx, cs, dc.EchoPort); err != nil {
			c.say("final", "reachable on %s not checked: %v", n.Name, err)
			c.l.stopEchoes(ctx)
			continue
		}
		m := c.l.checkAll(ctx, cs, nil, dc) // between endpoints only: the outside is the demo's
		c.l.stopEchoes(ctx)
		c.say("final", "reachable on %s: %d endpoints, checks %s", n.Name, len(cs), tally(m.Total()))
		c.violate(PhaseFinal, checkReach(n.Name, m))
	}
}

// cleanup removes every endpoint and network through the API (viaAPI),
// checks that nothing is left in the tables or the leases, takes the lab
// down and checks that none of its namespaces is left.
func (c *campaign) cleanup(ctx context.Context, viaAPI bool) {
	if viaAPI {
		c.removeAll(ctx)
		c.waitCleared(ctx)
		c.phases = append(c.phases, PhaseCleanup)
	}
	id := c.cfg.Lab.ID
	err := c.l.Down(ctx)
	left, lerr := labNamespaces(ctx, c.l.run, id)
	if lerr != nil {
		c.say("cleanup", "namespaces not checked: %v", lerr)
		return
	}
	vs := checkNamespaces(id, left)
	if err != nil {
		vs = append(vs, Violation{Invariant: InvNamespaces, Subject: "lab " + id + " down", Evidence: oneLine(err.Error())})
	}
	c.violate(PhaseCleanup, vs)
	c.phases = append(c.phases, "down")
	c.say("cleanup", "lab %s is down; %d of its namespaces left", id, len(left))
}

// removeAll removes, through the API, every container's endpoint (on its
// host), every other endpoint listed (on its host) and every network (on
// its creator), and deletes the containers.
func (c *campaign) removeAll(ctx context.Context) {
	ref, _ := reference(c.finalObs)
	var vs []Violation
	conts := c.liveContainersFull()
	for _, x := range conts {
		if err := c.removeEndpoint(ctx, x.Host, x.Network, x.Name); err != nil {
			vs = append(vs, removalViolation(fmt.Sprintf("endpoint %s on network %s (on %s)", x.Name, x.Network, x.Host), x.Host, err))
		}
		c.dropContainer(ctx, x, true)
	}
	for _, e := range ref.Endpoints {
		if !slices.ContainsFunc(conts, func(x *chaosContainer) bool { return x.Netns == e.Netns }) {
			if err := c.removeEndpoint(ctx, e.Host, e.Network, e.Name); err != nil {
				vs = append(vs, removalViolation(fmt.Sprintf("endpoint %s on network %s (on %s)", e.Name, e.Network, e.Host), e.Host, err))
			}
		}
	}
	for _, n := range ref.Networks {
		if err := c.removeNetwork(ctx, n); err != nil {
			vs = append(vs, removalViolation("network "+n.Name, n.Creator, err))
		}
	}
	c.say("cleanup", "removed %d containers' endpoints and %d networks through the API (%d refused)",
		len(conts), len(ref.Networks), len(vs))
	c.violate(PhaseCleanup, vs)
}

func removalViolation(subject, host string, err error) Violation {
	return Violation{Invariant: InvCleanRemoval, Subject: subject, Evidence: "rm refused: " + oneLine(err.Error()), Hosts: []string{host}}
}

// liveContainersFull lists the containers whose namespace exists.
func (c *campaign) liveContainersFull() []*chaosContainer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(c.containers), func(x *chaosContainer) bool { return x.gone })
}

// removeEndpoint removes an endpoint on its host; "no endpoint" is fine
// (a creation that never happened).
func (c *campaign) removeEndpoint(ctx context.Context, host, network, name string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	out, err := c.l.CLI(ctx, host, "endpoint", "rm", "--network", network, name)
	if err != nil && strings.Contains(out, "no endpoint") {
		return nil
	}
	return err
}

// removeNetwork removes a network on its creator, trying again while the
// creator still sees endpoints whose removal has not reached it yet.
func (c *campaign) removeNetwork(ctx context.Context, n NetworkRow) error {
	deadline := time.Now().Add(c.l.cfg.ReadyTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		out, err := c.l.CLI(cctx, n.Creator, "network", "rm", n.Name)
		cancel()
		if err == nil || !strings.Contains(out, "has endpoints") || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		pause(ctx, 200*time.Millisecond)
	}
}

// waitCleared polls until no host lists anything or leases anything, up
// to the ready timeout; what is left then is a violation.
func (c *campaign) waitCleared(ctx context.Context) {
	hosts := c.allHosts()
	deadline := time.Now().Add(c.l.cfg.ReadyTimeout)
	for {
		o := c.l.observe(ctx, hosts, nil)
		vs := checkCleanedUp(o.Hosts)
		if len(vs) == 0 || ctx.Err() != nil || time.Now().After(deadline) {
			c.violate(PhaseCleanup, vs)
			return
		}
		pause(ctx, 500*time.Millisecond)
	}
}
