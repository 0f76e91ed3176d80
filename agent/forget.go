package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// ForgetHost makes the cluster forget a host that is down and will not
// come back: every host drops its endpoints and address blocks at once,
// as it would after the reap time (the networks and services it created
// stay: they are the cluster's). It writes a row of the Forgotten table,
// which every agent hands to its store (kvs.Tables.SetForgotten).
func (a *Agent) ForgetHost(req api.ClusterForget) (api.ClusterForget, error) {
	name := req.Name
	if err := names.Host(name); err != nil {
		return api.ClusterForget{}, apiError(api.CodeBadRequest, "name", "%v", err)
	}
	if name == a.cfg.Name {
		return api.ClusterForget{}, apiError(api.CodeConflict, "name", "%s is this host: to take it out of the cluster, run vxnet cluster leave here", name)
	}
	if _, ok := a.kv.(*kvs.Etcd); ok {
		return api.ClusterForget{}, apiError(api.CodeConflict, "name", "the tables are kept in etcd, where a host's rows go with its lease: there is nothing to forget")
	}
	var others []string // members on another vxnet, which would not forget it
	for _, m := range a.kv.Node().Members() {
		if m.Name == name {
			return api.ClusterForget{}, apiError(api.CodeConflict, "name", "host %s is up (a live member): forget only a host that is down; to take a live one out, run vxnet cluster leave on it", name)
		}
		if m.Meta.Version != a.cfg.Version {
			others = append(others, fmt.Sprintf("%s (%s)", m.Name, m.Meta.Version))
		}
	}
	run, ok := a.kv.DownRun(name)
	if !ok {
		if e, ok := a.kv.Get(tables.Forgotten, name); ok && a.kv.Forgotten(name) {
			if f, err := tables.DecodeForgottenHost(e.Key, e.Value); err == nil {
				return api.ClusterForget{}, apiError(api.CodeNotFound, "name", "host %s was forgotten already (on %s, at %s)", name, f.By, f.At.UTC().Format(time.RFC3339))
			}
		}
		return api.ClusterForget{}, apiError(api.CodeNotFound, "name", "no host %q is down here (vxnet cluster members --down lists those that are)", name)
	}
	if len(others) > 0 {
		sort.Strings(others)
		return api.ClusterForget{}, apiError(api.CodeConflict, "name", "hosts %s run another vxnet than this one (%s): upgrade every host first (one that does not know cluster forget would keep %s's endpoints for the reap time)",
			strings.Join(others, ", "), a.cfg.Version, name)
	}
	eps := a.endpointsOf(name)
	row := tables.ForgottenHost{Host: name, Run: run, By: a.cfg.Name, At: time.Now().UTC()}
	if _, err := a.kv.Put(tables.Forgotten, name, row.Encode()); err != nil {
		return api.ClusterForget{}, err
	}
	a.followForgotten()
	a.log.Info("host forgotten: its endpoints and address blocks dropped", "node", name, "count", len(eps))
	return api.ClusterForget{Name: name, Endpoints: eps}, nil
}

// routineForgotten follows the Forgotten table, once this host has caught
// up with the cluster: a row it kept in its state file may have been
// deleted since (its host took the forget back), which only the cluster
// can tell it.
func (a *Agent) routineForgotten(ctx context.Context) {
	_, events, cancel := a.kv.Watch(tables.Forgotten)
	defer cancel()
	select {
	case <-a.caughtUp:
	case <-ctx.Done():
		return
	}
	a.followForgotten()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			a.followForgotten()
		}
	}
}

// followForgotten hands every row of the Forgotten table to the store. A
// row naming this host (it was forgotten while down, or while it ran but
// was hung or cut off) has its endpoints claim their names anew once it
// has the cluster's tables (reclaimAfterRestore).
func (a *Agent) followForgotten() {
	select {
	case <-a.caughtUp:
	default:
		return // routineForgotten follows the table once caught up
	}
	a.forgetMu.Lock()
	defer a.forgetMu.Unlock()
	rules := map[string]kvs.ForgetRule{}
	var bad []error
	for _, e := range a.kv.List(tables.Forgotten) {
		f, err := tables.DecodeForgottenHost(e.Key, e.Value)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		rules[f.Host] = kvs.ForgetRule{Epoch: f.Run, Clock: e.Version}
		if f.Host == a.cfg.Name && a.forgetSeen != e.Version {
			a.forgetSeen = e.Version // once per forget: one reclaim
			a.wasForgotten.Store(true)
			a.markKeptThroughForget()
			a.bg.Go(func() { a.reclaimAfterRestore(f) })
		}
	}
	a.skipped.Report(tables.Forgotten, errors.Join(bad...))
	a.kv.SetForgotten(rules)
}

// reclaimAfterRestore claims this host's rows anew once its endpoints are
// restored and the rows stopped flowing in (so that it has seen the
// endpoints made while it was forgotten, which keep their names): a host
// back after it was forgotten then competes for names as one back after
// the reap time. Rows claimed since the forget (a later restart) have
// nothing to claim, and nothing is said.
func (a *Agent) reclaimAfterRestore(f tables.ForgottenHost) {
	select {
	case <-a.ready:
	case <-a.runCtx.Done():
		return
	}
	a.kv.WaitQuiet(a.runCtx, catchUpQuiet, catchUpMax)
	if a.runCtx.Err() != nil {
		return
	}
	a.forgetMu.Lock()
	defer a.forgetMu.Unlock()
	n := a.kv.ReclaimForgotten()
	a.wasForgotten.Store(false)
	if n == 0 {
		return
	}
	a.log.Warn("this host was forgotten by the cluster (vxnet cluster forget) while it was down, hung or cut off: its endpoints are back and claim their names anew; a name another endpoint took meanwhile stays that endpoint's (this host lists its own down), and each whose address lay in a block passed on gets a new one",
		"peer", f.By, "at", f.At.UTC().Format(time.RFC3339), "count", n)
}

// markKeptThroughForget notes this host's endpoints of the moment: they
// were made before it was forgotten, so a name one of them loses may have
// gone by the forget (the reason says so).
func (a *Agent) markKeptThroughForget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.forgetKept == nil {
		a.forgetKept = map[string]bool{}
	}
	for key := range a.local {
		a.forgetKept[key] = true
	}
}

// keptThroughForget reports whether a local endpoint was made before a
// forget of this host. a.mu is held.
func (a *Agent) keptThroughForget(key string) bool { return a.forgetKept[key] }

// forgottenHost reports whether a host's rows went by a forget and it has
// not been back since: IPAM passes its blocks on at once (ipam.
// GlobalConfig.Forgotten). Safe under IPAM's lock: it takes only the
// store's.
func (a *Agent) forgottenHost(host string) bool { return a.kv.Forgotten(host) }
