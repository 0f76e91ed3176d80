package agent

import (
	"context"
	"errors"
	"sort"
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
	for _, m := range a.kv.Node().Members() {
		if m.Name == name {
			return api.ClusterForget{}, apiError(api.CodeConflict, "name", "host %s is up (a live member): forget only a host that is down; to take a live one out, run vxnet cluster leave on it", name)
		}
	}
	run, ok := a.kv.DownRun(name)
	if !ok {
		return api.ClusterForget{}, apiError(api.CodeNotFound, "name", "no host %q is down here (vxnet cluster members --down lists those that are)", name)
	}
	eps := a.endpointsOf(name)
	row := tables.ForgottenHost{Host: name, Run: run, By: a.cfg.Name, At: time.Now().UTC()}
	if err := a.put(tables.Forgotten, name, row.Encode()); err != nil {
		return api.ClusterForget{}, err
	}
	a.followForgotten()
	a.log.Info("host forgotten: its endpoints and address blocks dropped", "node", name, "count", len(eps))
	return api.ClusterForget{Name: name, Endpoints: eps}, nil
}

// endpointsOf lists a host's endpoints as this host sees them, hidden
// ones too, as NETWORK/NAME.
func (a *Agent) endpointsOf(host string) []string {
	seen := map[string]bool{}
	for _, e := range a.kv.Hidden(tables.Endpoints) {
		if e.Owner == host {
			seen[e.Key] = true
		}
	}
	a.mu.Lock()
	for key, owner := range a.owners {
		if owner == host {
			seen[key] = true
		}
	}
	a.mu.Unlock()
	out := make([]string, 0, len(seen))
	for key := range seen {
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

// routineForgotten follows the Forgotten table.
func (a *Agent) routineForgotten(ctx context.Context) {
	_, events, cancel := a.kv.Watch(tables.Forgotten)
	defer cancel()
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

// followForgotten hands every row of the Forgotten table to the store,
// and says so once when one names this host: it was forgotten while it
// was down or out of reach, so the names its endpoints claimed before
// that may be another endpoint's now (those are listed down here).
func (a *Agent) followForgotten() {
	a.forgetMu.Lock()
	defer a.forgetMu.Unlock()
	rules := map[string]kvs.ForgetRule{}
	gone := map[string]bool{}
	var bad []error
	for _, e := range a.kv.List(tables.Forgotten) {
		f, err := tables.DecodeForgottenHost(e.Key, e.Value)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		rules[f.Host] = kvs.ForgetRule{Epoch: f.Run, Clock: e.Version}
		gone[f.Host] = true
		if f.Host == a.cfg.Name && a.forgetSeen != e.Version {
			a.forgetSeen = e.Version
			a.log.Warn("this host was forgotten by the cluster (vxnet cluster forget) while it was down or out of reach: names its endpoints claimed before are another endpoint's if one took them since",
				"peer", f.By, "at", f.At.Format(time.RFC3339))
		}
	}
	a.skipped.Report(tables.Forgotten, errors.Join(bad...))
	a.forgotten.Store(&gone)
	a.kv.SetForgotten(rules)
}

// forgottenHost reports whether a host was forgotten and its rows are not
// kept here for its return (a later run of it that is down is not
// forgotten): IPAM passes its blocks on at once (ipam.GlobalConfig.
// Forgotten). Safe under IPAM's lock: it takes only the store's.
func (a *Agent) forgottenHost(host string) bool {
	gone := a.forgotten.Load()
	if gone == nil || !(*gone)[host] {
		return false
	}
	_, down := a.kv.DownRun(host)
	return !down
}
