package agent

import (
	"errors"

	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// The tables as this host reads them: every row decoded once, when it
// changes — from the watch (routineReconcile), and at once after this
// host's own writes, so that a request sees what the request before it
// wrote. The API and the plan read these maps, never the store.
//
// Refreshing re-reads the key from the store rather than trusting the
// event: of two rows of one key (kvs's first-claim endpoints, a network's
// creations) the store says which one wins now.

// refreshNetworkLocked re-reads one creation of the networks table, and
// the name's winner. a.mu is held.
func (a *Agent) refreshNetworkLocked(key string) {
	if e, ok := a.kv.Get(tables.Networks, key); !ok {
		delete(a.creations, key)
	} else if n, err := tables.DecodeNetwork(key, e.Value); err != nil {
		delete(a.creations, key)
		a.log.Warn("ignoring a malformed network row", "node", e.Owner, "error", err)
	} else {
		a.creations[key] = n
	}
	name := networkName(key)
	var rows []tables.Network
	for _, n := range a.creations {
		if n.Name == name { // DecodeNetwork checked the key is name/creator
			rows = append(rows, n)
		}
	}
	if w, ok := tables.PickNetworks(rows)[name]; ok {
		a.networks[name] = w
	} else {
		delete(a.networks, name)
	}
}

// refreshEndpointLocked re-reads one key of the endpoints table. a.mu is
// held. It reports whether one of this host's endpoints lost its key to
// another host's row (settleConflicts takes it down).
func (a *Agent) refreshEndpointLocked(key string) (lost bool) {
	e, ok := a.kv.Get(tables.Endpoints, key)
	if !ok {
		delete(a.rows, key)
		return false
	}
	ep, err := tables.DecodeEndpoint(key, e.Owner, e.Value)
	if err != nil {
		delete(a.rows, key)
		a.log.Warn("ignoring a malformed endpoint row", "node", e.Owner, "error", err)
		return false
	}
	a.rows[key] = ep
	le, mine := a.local[key]
	return mine && ep.Host != a.cfg.Name && !le.removing
}

// putNetwork writes a creation of a network.
func (a *Agent) putNetwork(n tables.Network) error {
	_, err := a.kv.Put(tables.Networks, n.Key(), n.Encode())
	a.mu.Lock()
	a.refreshNetworkLocked(n.Key())
	a.mu.Unlock()
	return err
}

// deleteNetwork deletes a creation of a network (gone already is fine).
func (a *Agent) deleteNetwork(key string) error {
	err := a.kv.Delete(tables.Networks, key)
	a.mu.Lock()
	a.refreshNetworkLocked(key)
	a.mu.Unlock()
	if errors.Is(err, kvs.ErrNotFound) {
		return nil
	}
	return err
}

// putEndpoint writes this host's row of an endpoint.
func (a *Agent) putEndpoint(ep tables.Endpoint) error {
	_, err := a.kv.Put(tables.Endpoints, ep.Key(), ep.Encode())
	a.mu.Lock()
	a.refreshEndpointLocked(ep.Key())
	a.mu.Unlock()
	return err
}

// deleteEndpoint deletes this host's row of an endpoint (gone already is
// fine): another host's row of the key, hidden behind it, shows again.
func (a *Agent) deleteEndpoint(key string) error {
	err := a.kv.Delete(tables.Endpoints, key)
	a.mu.Lock()
	a.refreshEndpointLocked(key)
	a.mu.Unlock()
	if errors.Is(err, kvs.ErrNotFound) {
		return nil
	}
	return err
}
