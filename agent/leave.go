package agent

import (
	"strings"

	"github.com/vxnet/vxnet/api"
)

// Leave implements api.Backend: the agent leaves the cluster and stops,
// once it has answered. Refused while this host has endpoints, unless
// req.Force.
func (a *Agent) Leave(req api.ClusterLeave) (api.ClusterLeave, error) {
	a.mu.Lock()
	eps := append(sortedMapKeys(a.local), sortedMapKeys(a.down)...)
	a.mu.Unlock()
	if len(eps) > 0 && !req.Force {
		return api.ClusterLeave{}, apiError(api.CodeConflict, "force", "this host has endpoints: %s (remove them first, or force: their containers lose the network, and the others forget them)", strings.Join(eps, ", "))
	}
	select {
	case a.leaving <- struct{}{}:
	default: // asked already
	}
	return api.ClusterLeave{Force: req.Force, Endpoints: eps}, nil
}
