package agent

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/kvs"
)

// Leave implements api.Backend: this host leaves the cluster for good.
// Its endpoints are removed (refused while it has any, unless req.Force),
// so that a later start does not bring them back; the cluster is told it
// is leaving (the others withdraw what is left of its rows at once), its
// etcd lease is given back; then, once it has answered, the agent stops.
// From the first step on, no endpoint is made here.
func (a *Agent) Leave(req api.ClusterLeave) (api.ClusterLeave, error) {
	a.mu.Lock()
	if a.left {
		a.mu.Unlock()
		return api.ClusterLeave{}, apiError(api.CodeConflict, "force", "this host is leaving the cluster already")
	}
	eps := append(sortedMapKeys(a.local), sortedMapKeys(a.down)...)
	if !req.Force && len(eps)+len(a.pending) > 0 {
		have := append(slices.Clone(eps), sortedMapKeys(a.pending)...)
		a.mu.Unlock()
		return api.ClusterLeave{}, apiError(api.CodeConflict, "force", "this host has endpoints: %s (remove them first, or leave with --force: their containers lose the network, and the cluster forgets them)", strings.Join(have, ", "))
	}
	a.left = true // reserveEndpoint refuses from now on
	a.mu.Unlock()

	var errs []string
	for _, key := range eps {
		network, name, _ := strings.Cut(key, "/")
		if err := a.RemoveEndpoint(network, name); err != nil {
			errs = append(errs, key+": "+err.Error())
		}
	}
	errs = append(errs, a.leaveCluster(5*time.Second)...)
	a.log.Info("left the cluster", "node", a.cfg.Name, "count", len(eps))
	select {
	case a.leaving <- struct{}{}: // Run stops once this answer is out
	default:
	}
	res := api.ClusterLeave{Force: req.Force, Endpoints: eps}
	if len(errs) > 0 {
		return res, fmt.Errorf("left the cluster, but: %s", strings.Join(errs, "; "))
	}
	return res, nil
}

// leaveCluster tells the cluster this host is gone for good (the others
// withdraw its rows at once) and gives its etcd lease back; it returns
// what failed, said for a person.
func (a *Agent) leaveCluster(timeout time.Duration) []string {
	var errs []string
	if err := a.kv.Node().Leave(timeout); err != nil {
		errs = append(errs, "announcing the leave: "+err.Error()+" (the others see this host fail instead)")
	}
	if e, ok := a.kv.(*kvs.Etcd); ok {
		if err := e.Revoke(); err != nil {
			errs = append(errs, "giving back the etcd lease: "+err.Error()+" (this host's rows go when it expires)")
		}
	}
	return errs
}
