package agent

import (
	"errors"
	"sort"

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

// syncView re-reads both tables whole: at start, and before this host's
// endpoints are restored, so that they see every row the store holds
// (routineReconcile may not have applied the last changes yet).
func (a *Agent) syncView() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, key := range sortedMapKeys(a.creations) {
		a.refreshNetworkLocked(key)
	}
	for _, e := range a.kv.List(tables.Networks) {
		a.refreshNetworkLocked(e.Key)
	}
	for _, key := range sortedMapKeys(a.owners) {
		a.refreshEndpointLocked(key)
	}
	for _, key := range sortedMapKeys(a.services) {
		a.refreshServiceLocked(key)
	}
	for _, e := range a.kv.List(tables.Services) {
		a.refreshServiceLocked(e.Key)
	}
	for _, e := range a.kv.List(tables.Endpoints) {
		a.refreshEndpointLocked(e.Key)
	}
}

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
	delete(a.rows, key)
	delete(a.owners, key)
	if !ok {
		return false
	}
	// Whose the key is, even when the row does not decode (a newer
	// host's format): the name is taken all the same.
	a.owners[key] = e.Owner
	if ep, err := tables.DecodeEndpoint(key, e.Owner, e.Value); err == nil {
		a.rows[key] = ep
	} else {
		a.log.Warn("ignoring a malformed endpoint row", "node", e.Owner, "error", err)
	}
	le, mine := a.local[key]
	return mine && e.Owner != a.cfg.Name && !le.removing
}

// put writes a row of this host's.
func (a *Agent) put(table, key string, value []byte) error {
	return a.putClaimed(table, key, value, 0)
}

// putClaimed is put for an endpoint row put back with the claim to its
// name it had (kvs.Tables.PutClaimed; 0 claims as put does).
func (a *Agent) putClaimed(table, key string, value []byte, claim uint64) error {
	_, err := a.kv.PutClaimed(table, key, value, claim)
	a.refresh(table, key)
	return err
}

// del deletes a row (gone already is fine): of the endpoints table, this
// host's, and another host's row of the key, hidden behind it, shows again.
func (a *Agent) del(table, key string) error {
	err := a.kv.Delete(table, key)
	a.refresh(table, key)
	if errors.Is(err, kvs.ErrNotFound) {
		return nil
	}
	return err
}

// refresh re-reads a key this host wrote.
func (a *Agent) refresh(table, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch table {
	case tables.Networks:
		a.refreshNetworkLocked(key)
	case tables.Services:
		a.refreshServiceLocked(key)
	default:
		a.refreshEndpointLocked(key)
	}
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
