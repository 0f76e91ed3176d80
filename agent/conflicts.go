package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/tables"
)

// What this host does when the cluster decides against one of its
// endpoints. The rules are the same on every host, so no host waits for
// another to agree:
//
//   - Name: of two endpoints of one name on one network (created at once,
//     or on both sides of a partition), the first claimed wins (kvs
//     first-claim table). The loser is taken down: its device goes, its
//     address is released, and it stays listed on its host as down with
//     the reason, until endpoint rm. Names that differ only in letter
//     case are one name to DNS: of such endpoints too (one made while the
//     other's host was away), the first claimed wins, by the same rule
//     the table applies to one key (claim, then host name).
//   - Address: when IPAM reports an endpoint's address lost (its network
//     lost to an earlier creation of the same name, or moved to another
//     subnet, or this host was away so long that its blocks passed to
//     others), the address is taken off the container's device at once,
//     a new one is allocated and put on, and the table and DNS follow. If
//     no address can be had, the endpoint is taken down instead.

// The down reasons of endpoints that lost their name (Endpoints tells
// when the name is free again, but for a rival in another letter case).
const (
	nameTakenPrefix = "name taken: "
	sameToDNS       = "the same name to DNS"
)

// loseAfter is how long a local endpoint must have lost its name before
// it is taken down: long enough for the hosts' views to agree.
const loseAfter = 2 * time.Second

// settleConflicts acts on what the tables decided since the last call:
// this host's losing network creations are withdrawn, its endpoints whose
// names another host holds are taken down.
func (a *Agent) settleConflicts() {
	a.withdrawLosingNetworks()
	a.moveClashingVNIs()
	// Every local endpoint whose key another host's row wins, checked
	// now (not from the event that woke us: it may be stale).
	type lost struct {
		key, why string
		le       *localEndpoint
	}
	var losers []lost
	rivals := a.caseRivals()
	now := time.Now()
	recheck := false
	a.mu.Lock()
	for key := range a.losingSince {
		if _, ok := a.local[key]; !ok {
			delete(a.losingSince, key)
		}
	}
	for _, key := range sortedMapKeys(a.local) {
		le := a.local[key]
		if le.removing || le.busy {
			continue
		}
		owner, ok := a.owners[key]
		first := "claimed first"
		if a.wasForgotten.Load() || a.keptThroughForget(key) {
			first = "taken while this host was forgotten (vxnet cluster forget), or claimed first"
		}
		why := nameTakenPrefix + "host " + owner + " holds an endpoint of this name on this network, " + first
		if rival, lost := rivals[key]; lost && ok && owner == a.cfg.Name {
			owner = rival.host
			why = fmt.Sprintf("%shost %s holds endpoint %q on this network, %s, %s", nameTakenPrefix, rival.host, rival.name, sameToDNS, first)
		}
		if !ok || owner == a.cfg.Name {
			delete(a.losingSince, key)
			continue
		}
		// Lost for loseAfter, not for a moment: the rows of a host that
		// comes back arrive in steps (its last run's, then its new
		// claim), which hosts may see in other orders; taking an
		// endpoint down is for good.
		since, seen := a.losingSince[key]
		if !seen {
			a.losingSince[key] = now
		}
		if !seen || now.Sub(since) < loseAfter {
			recheck = true
			continue
		}
		delete(a.losingSince, key)
		le.removing = true
		losers = append(losers, lost{key, why, le})
	}
	a.mu.Unlock()
	if recheck {
		time.AfterFunc(loseAfter, a.kickReconcile)
	}
	for _, l := range losers {
		l.le.waitWriters()
		a.takeDown(l.key, l.le, l.why, true)
	}
}

// caseRival is another host's endpoint whose name is one of this host's
// in another letter case, claimed first.
type caseRival struct{ host, name string }

// caseRivals returns, for each endpoint of this host's whose name another
// host's endpoint on the network holds in another letter case with an
// earlier claim, that endpoint.
func (a *Agent) caseRivals() map[string]caseRival {
	a.mu.Lock()
	// This host's endpoints by network and lower-case name (few), then
	// the other keys of those names (one pass over every endpoint).
	type folded struct{ network, name string }
	mine := map[folded]string{}
	for key := range a.local {
		network, name, _ := strings.Cut(key, "/")
		mine[folded{network, names.Key(name)}] = key
	}
	others := map[string][]string{} // this host's key → its case variants
	for key := range a.owners {
		network, name, _ := strings.Cut(key, "/")
		if k, ok := mine[folded{network, names.Key(name)}]; ok && k != key {
			others[k] = append(others[k], key)
		}
	}
	a.mu.Unlock()
	out := map[string]caseRival{}
	for key, variants := range others {
		e, ok := a.kv.Get(tables.Endpoints, key)
		if !ok || e.Owner != a.cfg.Name {
			continue // lost or gone on its own key: the caller sees to it
		}
		best := e // the first claimed of them all, by the table's rule
		for _, other := range variants {
			r, ok := a.kv.Get(tables.Endpoints, other)
			if ok && (r.Claim < best.Claim || r.Claim == best.Claim && r.Owner < best.Owner) {
				best = r
			}
		}
		if best.Key != key && best.Owner != a.cfg.Name {
			_, name, _ := strings.Cut(best.Key, "/")
			out[key] = caseRival{best.Owner, name}
		}
	}
	return out
}

// settled ends the creation or restoration of a local endpoint: from now
// on conflicts apply to it. An address IPAM reported lost meanwhile (no
// longer among this host's leases) is replaced now.
func (a *Agent) settled(key string) {
	a.mu.Lock()
	le := a.local[key]
	if le == nil {
		a.mu.Unlock()
		return
	}
	le.busy = false
	rec := le.rec
	a.mu.Unlock()
	if rec.DHCP == nil && !rec.Assigned && len(rec.Addrs) > 0 {
		leased := a.leasedSet(rec.Network)
		lost := map[netip.Addr]bool{}
		for _, p := range rec.Addrs {
			if !leased[p.Addr()] {
				lost[p.Addr()] = true
			}
		}
		if len(lost) > 0 {
			a.bg.Go(func() { a.readdress(key, lost) })
		}
	}
	a.kickReconcile()
}

// takeDown takes a local endpoint out of service, which the caller owns
// (le.removing set): its device, row and (if release) addresses go; it
// stays in the state file and in endpoint ls as down, with the reason.
func (a *Agent) takeDown(key string, le *localEndpoint, reason string, release bool) {
	rec := le.rec
	a.detach(key)
	if err := a.del(tables.Endpoints, key); err != nil {
		a.log.Warn("deleting endpoint row", "endpoint", key, "error", err)
	}
	a.markDown(key, rec, reason)
	a.persist()
	if release {
		a.releaseAddresses(key, rec)
	}
	a.kickReconcile() // another host's endpoint of this name shows here now (del)
}

// markDown records rec as down with the reason (and the addresses it
// had), in the state file and in endpoint ls.
func (a *Agent) markDown(key string, rec tables.Endpoint, reason string) {
	down := rec
	down.State, down.Reason = tables.StateDown, reason
	if len(rec.Addrs) > 0 {
		down.Reason += " (it had " + strings.ReplaceAll(fmtPrefixes(rec.Addrs), ",", ", ") + ")"
	}
	down.Addrs, down.MAC, down.DHCP, down.Publish = nil, vxlan.MAC{}, nil, nil
	a.saveEndpoint(down)
	a.mu.Lock()
	a.down[key] = down
	a.mu.Unlock()
	a.log.Warn("endpoint taken out of service; remove it with endpoint rm", "endpoint", key, "reason", reason)
}

// leasedSet is this host's leases of a network (of both sides of a
// dual-stack one).
func (a *Agent) leasedSet(network string) map[netip.Addr]bool {
	leased := map[netip.Addr]bool{}
	for _, side := range []string{network, network + ipam.V6Suffix} {
		for _, l := range a.ipam.Leases(side) {
			leased[l] = true
		}
	}
	return leased
}

// onLost is IPAM telling this host that leases of a network are no longer
// its own. Called from IPAM's goroutine without locks: the work, which
// waits on IPAM, happens on another.
func (a *Agent) onLost(network string, addrs []netip.Addr) {
	network = ofIPAM(network)
	lost := map[netip.Addr]bool{}
	for _, ad := range addrs {
		lost[ad] = true
	}
	a.mu.Lock()
	var keys []string
	for _, key := range sortedMapKeys(a.local) {
		le := a.local[key]
		if le.rec.Network != network || le.rec.DHCP != nil || le.rec.Assigned {
			continue
		}
		if le.removing {
			le.relost = true // a readdress under way checks again
		}
		for _, p := range le.rec.Addrs {
			if lost[p.Addr()] {
				keys = append(keys, key)
				break
			}
		}
	}
	a.mu.Unlock()
	why := "addresses lost: their network moved, lost to an earlier creation of its name, or this host was away longer than the reap time or forgotten (vxnet cluster forget)"
	if len(keys) == 0 {
		a.log.Warn(why+"; no endpoint here holds them", "network", network, "addresses", fmt.Sprint(addrs))
	} else {
		a.log.Warn(why+"; readdressing the endpoints here that hold them (count)", "network", network, "addresses", fmt.Sprint(addrs), "count", len(keys))
	}
	a.kickReconcile() // the routing mesh's address and services' VIPs may be among them
	if len(keys) == 0 {
		return
	}
	// Stopping, it does not run: the next start finds the leases missing
	// (checkLeases). Each endpoint on its own: one that waits for an
	// address does not keep the others on theirs meanwhile.
	for _, key := range keys {
		a.bg.Go(func() { a.readdress(key, lost) })
	}
}

// readdress gives a local endpoint new addresses in place of the lost
// ones; if it cannot, the endpoint is taken down. Addresses lost while it
// runs (onLost sets relost), its new ones too, are replaced in turn
// before it lets the endpoint go.
func (a *Agent) readdress(key string, lost map[netip.Addr]bool) {
	a.mu.Lock()
	le := a.local[key]
	if le == nil || le.removing || le.busy {
		// Being removed (its lease goes with it), readdressed (relost
		// is set), or created or restored (settled checks its leases
		// when done).
		a.mu.Unlock()
		return
	}
	le.removing, le.relost = true, false
	a.mu.Unlock()
	le.waitWriters()
	lost = maps.Clone(lost)
	for round := 0; ; round++ {
		if !a.readdressOnce(key, le, lost) {
			return // taken down, or stopping
		}
		a.mu.Lock()
		if !le.relost || round >= 8 {
			le.removing, le.relost = false, false
			a.mu.Unlock()
			return
		}
		le.relost = false
		a.mu.Unlock()
		lost = map[netip.Addr]bool{} // what is no longer leased, below
	}
}

// readdressOnce is one round of readdress; false when the endpoint is
// no longer the readdress's (taken down, or left for the next start).
func (a *Agent) readdressOnce(key string, le *localEndpoint, lost map[netip.Addr]bool) bool {
	a.mu.Lock()
	old := le.rec
	a.mu.Unlock()
	// IPAM reports each side of a dual-stack network on its own, and a
	// readdress under way for one side makes the other's wait: every
	// address no longer leased here is lost.
	leased := a.leasedSet(old.Network)
	for _, p := range old.Addrs {
		if !leased[p.Addr()] {
			lost[p.Addr()] = true
		}
	}

	if old.Handover {
		// Its runtime set its address in the container, and would not
		// know of another: out of service, for the runtime to connect it
		// again. Its other reservations go back to the runtime, to
		// release.
		for _, p := range old.Addrs {
			if lost[p.Addr()] {
				a.dropReservation(old.Network, p.Addr())
			} else if old.Reserved {
				a.untakeReservation(old.Network, p.Addr(), key)
			}
		}
		a.takeDown(key, le, fmt.Sprintf("lost %v, which its runtime (Docker) gave the container; connect it again (docker network disconnect, then connect)", fmtPrefixes(old.Addrs)), false)
		return false
	}
	var keep, drop []netip.Prefix
	for _, p := range old.Addrs {
		if lost[p.Addr()] {
			drop = append(drop, p)
		} else {
			keep = append(keep, p)
		}
	}
	if len(drop) == 0 {
		return true
	}
	// Off the device first: the container stops sending from them.
	if old.Netns != "" {
		if err := tun.Readdress(netnsPath(old.Netns), old.Ifname, drop, nil, nil); err != nil {
			a.log.Warn("removing lost addresses from the endpoint's device", "endpoint", key, "error", err)
		}
	}
	// Out of the tables too while new ones are sought (a block may take
	// a while to come): the lost addresses may be another host's by now,
	// and no host must forward them here meanwhile.
	interim := old
	interim.Addrs, interim.State = keep, tables.StateReaddressing
	a.mu.Lock()
	le.rec = interim
	a.mu.Unlock()
	if err := a.put(tables.Endpoints, interim.Key(), interim.Encode()); err != nil {
		a.log.Warn("writing endpoint row", "endpoint", key, "error", err)
	}
	a.reconcileNow()
	why := fmt.Sprintf("lost %v", drop)
	var fresh []netip.Prefix
	var err error
	for _, p := range drop { // one of the same family for each
		var f netip.Prefix
		if f, err = a.freshAddress(a.ipamName(old.Network, p.Addr())); err != nil {
			break
		}
		fresh = append(fresh, f)
	}
	if err != nil {
		a.releaseAddresses(key, tables.Endpoint{Network: old.Network, Addrs: fresh})
	}
	if err == nil && a.readdressHook != nil {
		a.readdressHook(key, fresh)
	}
	if err != nil && a.runCtx.Err() != nil {
		// Stopping: leave the record as it was; the next start finds
		// the lease missing and readdresses it (checkLeases).
		a.mu.Lock()
		le.rec = old
		le.removing, le.relost = false, false
		a.mu.Unlock()
		return false
	}
	if err != nil {
		a.releaseAddresses(key, tables.Endpoint{Network: old.Network, Addrs: keep})
		a.takeDown(key, le, why+" and got no new address: "+err.Error(), false)
		return false
	}
	if old.Netns != "" {
		if err := tun.Readdress(netnsPath(old.Netns), old.Ifname, nil, fresh, a.containerRoutes(old.Network)); err != nil {
			a.releaseAddresses(key, tables.Endpoint{Network: old.Network, Addrs: fresh})
			a.takeDown(key, le, why+" and could not put the new one on its device: "+err.Error(), false)
			return false
		}
	}
	rec := old
	rec.Addrs, rec.State = v4First(append(keep, fresh...)), ""
	if old.MAC == vxlan.StableMAC(old.Addrs[0].Addr()) { // not one the runtime chose
		rec.MAC = vxlan.StableMAC(rec.Addrs[0].Addr())
	}
	a.mu.Lock()
	le.rec = rec
	a.mu.Unlock()
	if err := a.put(tables.Endpoints, rec.Key(), rec.Encode()); err != nil {
		a.log.Error("writing endpoint row", "endpoint", key, "error", err)
	}
	a.saveEndpoint(rec)
	a.persist()
	a.reconcileNow()
	a.log.Warn("endpoint readdressed", "endpoint", key, "previous", fmt.Sprint(drop), "address", fmt.Sprint(fresh))
	return true
}

// freshAddress allocates an address of an IPAM network (a network, or
// the IPv6 side of a dual-stack one), with the prefix length of the
// subnet IPAM holds for it now.
func (a *Agent) freshAddress(network string) (netip.Prefix, error) {
	subnet, ok := a.ipam.Subnet(network)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("no network %q", network)
	}
	ctx, cancel := context.WithTimeout(a.runCtx, 30*time.Second)
	defer cancel()
	addr, err := a.ipam.Allocate(ctx, network)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, subnet.Bits()), nil
}

// checkLeases is run on an endpoint being restored, before its device
// exists: an address this host no longer leases (IPAM dropped it while the
// host was away, or a crash came between the two) is replaced before the
// container can send from it. ok is false if the endpoint was taken down.
func (a *Agent) checkLeases(ep tables.Endpoint) (tables.Endpoint, bool) {
	key := ep.Key()
	if ep.DHCP != nil || ep.Assigned || len(ep.Addrs) == 0 {
		return ep, true
	}
	leased := a.leasedSet(ep.Network)
	var out []netip.Prefix
	changed := false
	for i, p := range ep.Addrs {
		if leased[p.Addr()] || a.ipam.AllocateStatic(a.ipamName(ep.Network, p.Addr()), p.Addr()) == nil {
			out = append(out, p) // leased, or unleased but still this host's to take
			continue
		}
		if ep.Handover { // the runtime's address: see readdress
			a.dropReservation(ep.Network, p.Addr())
			if ep.Reserved {
				for _, q := range ep.Addrs {
					if q != p {
						a.untakeReservation(ep.Network, q.Addr(), key)
					}
				}
			}
			ep.Reserved = false
			a.markDown(key, ep, fmt.Sprintf("its address %v is no longer this host's, and its runtime (Docker) gave it to the container; connect it again", p))
			return ep, false
		}
		fresh, ferr := a.freshAddress(a.ipamName(ep.Network, p.Addr()))
		if ferr != nil {
			for _, q := range ep.Addrs[i+1:] {
				if leased[q.Addr()] {
					out = append(out, q)
				}
			}
			a.releaseAddresses(key, tables.Endpoint{Network: ep.Network, Addrs: out})
			a.markDown(key, ep, fmt.Sprintf("its address is no longer this host's and no new one could be had: %v", ferr))
			return ep, false
		}
		a.log.Warn("endpoint readdressed", "endpoint", key, "previous", p.String(), "address", fresh.String(),
			"reason", "its address is no longer this host's (the host was away, or its network changed)")
		out, changed = append(out, fresh), true
	}
	if changed {
		derived := ep.MAC == vxlan.StableMAC(ep.Addrs[0].Addr()) // not one the runtime chose
		ep.Addrs = v4First(out)
		if derived {
			ep.MAC = vxlan.StableMAC(ep.Addrs[0].Addr())
		}
		a.saveEndpoint(ep)
	}
	return ep, true
}

// Catching up after a long absence: joined, then rows arriving until the
// flow stops for catchUpQuiet, for at most catchUpMax.
const (
	catchUpQuiet = time.Second
	catchUpMax   = 20 * time.Second
	// dnsCatchUpMax bounds, after the join, how long DNS leaves names it
	// does not know unanswered.
	dnsCatchUpMax = 5 * time.Second
)

// catchUp waits until this host has joined and the cluster's rows have
// stopped arriving, then has IPAM read them: blocks that passed to others
// while it was away are known before its endpoints come back.
// With mustJoin it waits for the join however long it takes; it reports
// whether it caught up.
func (a *Agent) catchUp(ctx context.Context, joined <-chan struct{}, mustJoin bool) bool {
	deadline := time.NewTimer(catchUpMax)
	defer deadline.Stop()
	var timeout <-chan time.Time
	if !mustJoin {
		timeout = deadline.C
	}
	select {
	case <-joined:
	case <-timeout:
		a.log.Warn("could not join the cluster in time; restoring endpoints with the addresses this host last held")
		return false
	case <-ctx.Done():
		return false
	}
	a.kv.WaitQuiet(ctx, catchUpQuiet, catchUpMax)
	if ctx.Err() != nil {
		return false
	}
	a.ipam.Refresh()
	return true
}

// adoptFromCluster rebuilds this host's state file from its rows in the
// cluster (Config.Recover): every endpoint of this host whose namespace
// still exists is taken back, with its address leased again; the others'
// rows go. Then the host is again the authority on its rows.
func (a *Agent) adoptFromCluster() {
	defer func() {
		a.kv.StopAdopting()
		a.recovering.Store(false)
		a.persist()
		if err := hoststate.ClearRecovery(a.cfg.DataDir); err != nil {
			a.log.Error("clearing the recovery mark", "error", err)
		}
	}()
	var eps []tables.Endpoint
	for _, e := range a.kv.List(tables.Endpoints) {
		ep, err := tables.DecodeEndpoint(e.Key, e.Owner, e.Value)
		if e.Owner != a.cfg.Name || err != nil {
			continue
		}
		if ep.Mesh {
			// Not a container: the routing mesh takes an address again.
			a.del(tables.Endpoints, e.Key)
			continue
		}
		if ep.Netns != "" {
			if _, err := os.Stat(netnsPath(ep.Netns)); err != nil {
				a.log.Warn("recovering: the endpoint's namespace is gone; removing it", "endpoint", e.Key, "netns", ep.Netns)
				a.del(tables.Endpoints, e.Key)
				continue
			}
		}
		eps = append(eps, ep)
	}
	if err := a.store.Update(func(st *hoststate.State) { st.Endpoints = eps }); err != nil {
		a.log.Error("saving state", "error", err)
	}
	a.log.Info("recovered this host's endpoints from the cluster", "count", len(eps))
	if len(eps) == 0 && a.cfg.Store == config.StoreEtcd {
		a.log.Warn("recovering: etcd holds no endpoint of this host: its rows go with its lease (--etcd-lease-ttl) once it is down, so a recovery takes them back only within that time; its containers need their endpoints made again")
	}
	// restoreEndpoints leases their addresses again (checkLeases) and
	// attaches them.
}

// releaseOrphanLeases gives back, at start, the leases no endpoint record
// holds: a crash between two steps of a create, a readdress or a remove
// leaks one rather than handing it out twice, and this is where it comes
// back.
func (a *Agent) releaseOrphanLeases() {
	st := a.store.Snapshot()
	held := map[string]map[netip.Addr]bool{}
	for _, ep := range st.Endpoints {
		if ep.State == tables.StateDown || ep.DHCP != nil {
			continue
		}
		for _, p := range ep.Addrs {
			if held[ep.Network] == nil {
				held[ep.Network] = map[netip.Addr]bool{}
			}
			held[ep.Network][p.Addr()] = true
		}
	}
	for network, addrs := range st.Mesh {
		if held[network] == nil {
			held[network] = map[netip.Addr]bool{}
		}
		for _, ip := range addrs {
			held[network][ip] = true
		}
	}
	for key, vips := range st.VIPs {
		network, _, _ := strings.Cut(key, "/")
		if held[network] == nil {
			held[network] = map[netip.Addr]bool{}
		}
		for _, ip := range vips {
			held[network][ip] = true
		}
	}
	for network, addrs := range st.Reserved {
		for _, ip := range addrs {
			if held[network] == nil {
				held[network] = map[netip.Addr]bool{}
			}
			held[network][ip] = true
		}
	}
	for _, network := range sortedMapKeys(st.Leases) {
		for _, l := range st.Leases[network] {
			if held[ofIPAM(network)][l] {
				continue
			}
			if err := a.ipam.Release(network, l); err != nil {
				a.log.Warn("releasing a lease no endpoint holds", "network", network, "address", l.String(), "error", err)
				continue
			}
			a.log.Info("released a lease no endpoint holds", "network", network, "address", l.String())
		}
	}
}
