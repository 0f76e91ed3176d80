package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/hoststate"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/tables"
)

// The routing mesh: a service's published port answers on every host.
// Each host with such a service on a network holds an address of the
// network of its own, its mesh address, announced as an endpoint row with
// Mesh set (so every host's switch sends what is addressed to it to this
// host, whose gateway takes it). The host's netfilter rules DNAT a
// connection to the published port to the service's VIP and SNAT it to
// the mesh address as it enters the network through the gateway
// (hostnet); the gateway port's flow table then picks a task, here or on
// another host, as for any container, and the replies come back to the
// mesh address, from the VIP. The lease is kept in the state file (Mesh)
// and given back when the network has no such service left.

// meshPrefix starts the name of every host's mesh row; no endpoint
// created through the API may have it.
const meshPrefix = "vxmesh-"

// meshName is the name of this host's mesh row on every network.
func (a *Agent) meshName() string {
	n := meshPrefix + a.cfg.Name
	if names.Endpoint(n) != nil {
		sum := sha256.Sum256([]byte(a.cfg.Name))
		n = meshPrefix + hex.EncodeToString(sum[:6])
	}
	return n
}

// settleMesh makes this host's mesh addresses and rows follow the
// services: one on every overlay network (not internal) with a vip
// service that publishes ports, none elsewhere (and none on a host whose
// containers HNS attaches: its switch has no gateway to serve one).
func (a *Agent) settleMesh() {
	want := map[string]tables.Network{}
	a.mu.Lock()
	for _, s := range a.services {
		if s.Mode != tables.ModeVIP || len(s.Ports) == 0 || a.hnsProg != nil {
			continue
		}
		if n, ok := a.networks[s.Network]; ok && meshable(n) {
			want[s.Network] = n
		}
	}
	// What to drop: the networks of this host's mesh addresses and of
	// its mesh rows (one may be left without the other).
	have := map[string]bool{}
	for network := range a.meshAddrs {
		have[network] = true
	}
	for _, e := range a.rows {
		if e.Mesh && e.Host == a.cfg.Name {
			have[e.Network] = true
		}
	}
	a.mu.Unlock()
	for _, network := range sortedMapKeys(have) {
		if _, ok := want[network]; !ok {
			a.dropMesh(network)
		}
	}
	for _, network := range sortedMapKeys(want) {
		a.ensureMesh(want[network])
	}
}

// meshable reports whether n's services can publish ports on every host.
func meshable(n tables.Network) bool {
	return n.Driver == "overlay" && !n.Internal && n.AssignedBy == ""
}

// ensureMesh gives this host its mesh address on n (kept while IPAM
// keeps the lease) and its row.
func (a *Agent) ensureMesh(n tables.Network) {
	leased := a.leasedSet(n.Name)
	a.mu.Lock()
	addrs := slices.Clone(a.meshAddrs[n.Name])
	a.mu.Unlock()
	key := tables.EndpointKey(n.Name, a.meshName())
	if len(addrs) == 0 || slices.ContainsFunc(addrs, func(m netip.Addr) bool { return !leased[m] }) {
		if len(addrs) > 0 {
			a.log.Warn("the routing mesh's address is no longer this host's lease: taking another", "network", n.Name, "address", addrs[0].String())
			a.dropMesh(n.Name) // its row first: it announces an address that may be another's now
		}
		addrs = nil
		sides := []string{n.Name}
		if n.Subnet6.IsValid() {
			sides = append(sides, n.Name+ipam.V6Suffix)
		}
		for _, side := range sides {
			ctx, cancel := context.WithTimeout(a.runCtx, 10*time.Second)
			m, err := a.ipam.Allocate(ctx, side)
			cancel()
			if err != nil {
				a.log.Error("the routing mesh needs an address of the network on this host", "network", n.Name, "error", err)
				for _, got := range addrs {
					a.ipam.Release(a.ipamName(n.Name, got), got)
				}
				a.retryReconcile()
				return
			}
			addrs = append(addrs, m)
		}
		a.mu.Lock()
		a.meshAddrs[n.Name] = addrs
		a.mu.Unlock()
		a.saveMesh()
		a.persist()
		a.log.Info("routing mesh address taken", "network", n.Name, "address", addrs[0].String())
	}
	row := a.meshRow(n, addrs)
	if e, ok := a.kv.Get(tables.Endpoints, key); ok && e.Owner == a.cfg.Name && string(e.Value) == string(row.Encode()) {
		return
	} else if ok && e.Owner != a.cfg.Name {
		a.log.Error("the routing mesh's row name is another host's endpoint: this host answers no published service port on the network", "network", n.Name, "endpoint", key, "node", e.Owner)
		return
	}
	if err := a.put(tables.Endpoints, key, row.Encode()); err != nil {
		a.log.Error("writing the routing mesh's row", "network", n.Name, "error", err)
		a.retryReconcile()
		return
	}
	a.persist()
}

// dropMesh removes this host's mesh row and then gives its addresses
// back: never an address given back while a row still announces it.
func (a *Agent) dropMesh(network string) {
	key := tables.EndpointKey(network, a.meshName())
	if e, ok := a.kv.Get(tables.Endpoints, key); ok && e.Owner == a.cfg.Name {
		if err := a.del(tables.Endpoints, key); err != nil {
			a.log.Warn("removing the routing mesh's row; its address stays leased until it goes", "network", network, "error", err)
			a.retryReconcile()
			return
		}
	}
	a.releaseMesh(network)
	a.log.Info("routing mesh address given back", "network", network)
}

// releaseMesh forgets this host's mesh addresses on network, saves that,
// then gives back those still its leases (a crash in between leaks a
// lease, which the next start gives back, rather than reuse one).
func (a *Agent) releaseMesh(network string) {
	a.mu.Lock()
	addrs := a.meshAddrs[network]
	delete(a.meshAddrs, network)
	a.mu.Unlock()
	a.saveMesh()
	a.persist()
	leased := a.leasedSet(network)
	for _, m := range addrs {
		if !leased[m] {
			continue
		}
		if err := a.ipam.Release(a.ipamName(network, m), m); err != nil {
			a.log.Warn("releasing the routing mesh's address", "network", network, "address", m.String(), "error", err)
		}
	}
}

// saveMesh writes the mesh addresses into the state file.
func (a *Agent) saveMesh() {
	a.saveAddrs(a.meshAddrs, func(st *hoststate.State, m map[string][]netip.Addr) { st.Mesh = m })
}

// loadMesh reads the mesh addresses from the state file.
func (a *Agent) loadMesh() { a.loadAddrs(a.meshAddrs, a.store.Snapshot().Mesh) }

// saveAddrs writes a copy of m, a map of a.mu's, into the state file with
// set, one save at a time (as saveReserved: never an older list over a
// newer one).
func (a *Agent) saveAddrs(m map[string][]netip.Addr, set func(*hoststate.State, map[string][]netip.Addr)) {
	a.resSave.Lock()
	defer a.resSave.Unlock()
	a.mu.Lock()
	saved := make(map[string][]netip.Addr, len(m))
	for k, v := range m {
		saved[k] = slices.Clone(v)
	}
	a.mu.Unlock()
	if err := a.store.Update(func(st *hoststate.State) { set(st, saved) }); err != nil {
		a.log.Error("saving state", "error", err)
	}
}

// loadAddrs copies from, read from the state file, into m, a map of
// a.mu's.
func (a *Agent) loadAddrs(m, from map[string][]netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range from {
		m[k] = slices.Clone(v)
	}
}

// meshRow is this host's routing-mesh row on n, with its addresses there
// (one of each family the network has).
func (a *Agent) meshRow(n tables.Network, addrs []netip.Addr) tables.Endpoint {
	row := tables.Endpoint{Name: a.meshName(), Network: n.Name, Host: a.cfg.Name, VTEP: a.vtep, MAC: vxlan.StableMAC(addrs[0]), Mesh: true}
	for _, m := range addrs {
		row.Addrs = append(row.Addrs, n.PrefixOf(m))
	}
	return row
}
