package agent

import (
	"context"
	"errors"
	"time"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/internal/leftout"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/plan"
	"github.com/vxnet/vxnet/tables"
)

// The tables the agent rebuilds from the replicated ones on every change;
// the rows each leaves out are reported once (internal/leftout).
const (
	tableForwarding = "forwarding" // the switch's (dataplane.NewTable)
	tableDNS        = "dns"        // the DNS records (dns.NewTable)
	tableHNS        = "hns"        // what HNS holds (Windows)
	tablePlan       = "plan"       // what the plan leaves out of all of them (package plan)
	tableKeys       = "keys"       // encrypted networks' keys, by member (seal.go)
)

// watchTables loads the networks and endpoints tables into the view and
// returns their changes to come, for routineReconcile.
func (a *Agent) watchTables() (nets, eps, svcs <-chan kvs.Event, cancel func()) {
	_, nets, cancelN := a.kv.Watch(tables.Networks)
	_, eps, cancelE := a.kv.Watch(tables.Endpoints)
	_, svcs, cancelS := a.kv.Watch(tables.Services)
	a.syncView()
	return nets, eps, svcs, func() { cancelN(); cancelE(); cancelS() }
}

// routineReconcile follows the tables' changes: watch, then plan (package
// plan, a pure function of the tables and this host), then apply (the
// host side, the switch's table, DNS, HNS).
func (a *Agent) routineReconcile(ctx context.Context, netEvents, epEvents, svcEvents <-chan kvs.Event) {
	a.log.Debug("reconciler started")
	defer a.log.Debug("reconciler stopped")
	a.reconcileNow()
	// Changes come in bursts (a host joining brings all its rows): one
	// rebuild covers a burst.
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	for {
		var ev kvs.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-netEvents:
		case ev, ok = <-epEvents:
		case ev, ok = <-svcEvents:
		case <-a.kick:
			a.settleConflicts()
			a.reconcileNow()
			continue
		case <-gap.C:
			a.settleConflicts()
			a.reconcileNow()
			continue
		}
		if !ok {
			return
		}
		a.mu.Lock()
		lost := false
		switch ev.Entry.Table {
		case tables.Networks:
			a.refreshNetworkLocked(ev.Entry.Key)
		case tables.Services:
			a.refreshServiceLocked(ev.Entry.Key)
		default:
			lost = a.refreshEndpointLocked(ev.Entry.Key)
		}
		a.mu.Unlock()
		if lost {
			a.kickReconcile()
		}
		gap.Reset(5 * time.Millisecond)
	}
}

// kickReconcile asks for a rebuild without waiting for it.
func (a *Agent) kickReconcile() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// reconcileNow plans this host's state from the tables and applies it.
func (a *Agent) reconcileNow() {
	// One rebuild at a time, build and publish together: an older snapshot
	// must never be published after a newer one (detach relies on it before
	// it removes a port).
	a.recMu.Lock()
	defer a.recMu.Unlock()
	a.refreshKeys()
	select {
	case <-a.ready: // this host's endpoints and leases are back
		a.settleVIPs()
		a.settleMesh()
	default:
	}
	in, heldUntil := a.planInput()
	// DNS stops answering a down host's names when their hold ends.
	if a.heldTimer != nil {
		a.heldTimer.Stop()
		a.heldTimer = nil
	}
	if !heldUntil.IsZero() {
		a.heldTimer = time.AfterFunc(time.Until(heldUntil)+10*time.Millisecond, a.kickReconcile)
	}
	// The host side first (nat's gateways, uplinks): the tables point at it.
	host := plan.HostSide(in)
	failed := false // something to try again later (retryReconcile)
	if err := a.host.Sync(host.Gateways, host.Published); err != nil {
		a.log.Error("programming the host's gateways and their rules", "error", err)
		failed = true
	}
	if a.syncGatewayDNS(host.Gateways) {
		failed = true
	}
	for _, g := range host.Gateways {
		in.Gateways[g.Name] = a.host.Port(g.Name)
	}
	keep := map[string]bool{}
	for _, name := range host.Uplinks {
		if u, err := a.host.Uplink(name); err == nil {
			in.Uplinks[name], keep[name] = u, true
		} else {
			a.log.Warn("uplink unavailable on this host", "uplink", name, "error", err)
		}
	}
	st := plan.Make(in)
	var notes []error
	for _, n := range st.Notes {
		notes = append(notes, errors.New(n.String()))
	}
	a.skipped.Report(tablePlan, errors.Join(notes...))
	// Bad rows are left out of each table and reported once (internal/leftout).
	fwd, err := dataplane.NewTable(st.Forwarding)
	a.sw.SetTable(fwd)
	a.skipped.Report(tableForwarding, err)
	records, err := dns.NewTable(st.DNSNetworks, st.DNSEndpoints, 0)
	a.dns.SetRecords(records)
	a.skipped.Report(tableDNS, err)
	if a.syncHNS(st.HNSNetworks, st.HNSEndpoints) {
		failed = true
	}
	// What the published table no longer uses goes last.
	a.host.PruneUplinks(keep)
	if a.host.Prune(host.Gateways) {
		a.kickReconcile()
	}
	if failed {
		a.retryReconcile()
	} else {
		a.resetRetry()
	}
}

// retryReconcile reconciles again later, once, for what could not be
// done now (the host's rules, a gateway's resolver, HNS): in a second,
// then twice as long each time it is asked again without a clean
// reconcile (resetRetry) in between, up to a minute.
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

// resetRetry: a reconcile did everything it was asked.
func (a *Agent) resetRetry() { a.retryWait.Store(0) }

// planInput is what the plan is made from: the tables as decoded, this
// host's endpoints in place of their rows, IPAM's current subnets; and
// when the first name hold of its Held endpoints ends (zero: none).
func (a *Agent) planInput() (plan.Input, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := plan.Input{Self: a.cfg.Name, VTEP: a.vtep, HNS: a.hnsProg != nil, MTU: a.cfg.MTU, Local: map[string]plan.Local{},
		Gateways: map[string]*dataplane.Port{}, Uplinks: map[string]*dataplane.Uplink{}}
	for _, name := range sortedMapKeys(a.networks) {
		in.Networks = append(in.Networks, a.current(a.networks[name]))
	}
	for _, key := range sortedMapKeys(a.rows) {
		// This host's endpoints are planned from their local records, in
		// place of any row of their key (another host's, winning the name:
		// settleConflicts takes ours down).
		if _, mine := a.local[key]; !mine {
			in.Endpoints = append(in.Endpoints, a.rows[key])
		}
	}
	for _, key := range sortedMapKeys(a.local) {
		le := a.local[key]
		in.Endpoints = append(in.Endpoints, le.rec)
		in.Local[key] = plan.Local{Port: le.port}
	}
	for _, key := range sortedMapKeys(a.services) {
		in.Services = append(in.Services, a.services[key])
	}
	a.serviceCounters(&in)
	var heldUntil time.Time
	in.Held, heldUntil = a.heldEndpoints()
	return in, heldUntil
}

// heldEndpoints are the endpoints of the hosts that are down whose names
// are held for them (heldByDownHost), and until when the first of those
// holds lasts (zero: none). Under mu.
func (a *Agent) heldEndpoints() ([]tables.Endpoint, time.Time) {
	var out []tables.Endpoint
	var first time.Time
	for _, r := range a.downRows() {
		if _, seen := a.owners[r.Key]; seen || !r.held {
			continue // not held, or another host's row of the key is in sight
		}
		ep, err := tables.DecodeEndpoint(r.Key, r.Owner, r.Value)
		if err != nil {
			continue
		}
		out = append(out, ep)
		if first.IsZero() || r.until.Before(first) {
			first = r.until
		}
	}
	return out, first
}

// syncHNS makes HNS hold nets and eps. A network or endpoint whose spec
// is invalid (a bad row) is left out and reported once (internal/leftout); HNS's
// own failures are logged and reported (reconcileNow tries again later).
func (a *Agent) syncHNS(nets []hns.NetworkSpec, eps map[string][]hns.EndpointSpec) bool {
	if a.hnsProg == nil {
		return false
	}
	var bad, failed []error
	for _, err := range leftout.Unjoin(a.hnsProg.Sync(nets, eps)) {
		var se *hns.SpecError
		if errors.As(err, &se) {
			bad = append(bad, err)
		} else {
			failed = append(failed, err)
		}
	}
	a.skipped.Report(tableHNS, errors.Join(bad...))
	if len(failed) > 0 {
		a.log.Error("programming HNS", "error", errors.Join(failed...))
	}
	return len(failed) > 0
}
