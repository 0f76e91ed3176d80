// Package ipamtest is an in-memory ipam.Table shared by simulated hosts:
// every write is seen at once by the hosts that can reach its writer, and
// hosts can be killed, revived and partitioned. A host does not see the
// rows of a dead writer, as kvs hides the rows of a failed host, but its
// subnet claims, which are the cluster's; nor any row of a writer on the
// other side of a partition.
package ipamtest

import (
	"sort"
	"strings"
	"sync"

	"github.com/vxnet/vxnet/ipam"
)

// Network holds every host's rows.
type Network struct {
	// Claims makes the hosts' tables take claims (ipam.Claimer), as a
	// store such as etcd does: one store every host reaches, whatever the
	// partitions between hosts.
	Claims bool

	mu      sync.Mutex
	rows    map[string]map[string]ipam.Row // writer → key → row
	dead    map[string]bool
	group   map[string]int // partition group; absent = 0
	version uint64
	lists   map[string]int // List calls, by host
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{rows: map[string]map[string]ipam.Row{}, dead: map[string]bool{}, group: map[string]int{}, lists: map[string]int{}}
}

// Lists counts host's List calls: a test that moves a clock waits on it
// for the hosts to have looked at their tables again.
func (n *Network) Lists(host string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lists[host]
}

// Table returns host's view; the host joins the network.
func (n *Network) Table(host string) *Table {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rows[host] == nil {
		n.rows[host] = map[string]ipam.Row{}
	}
	return &Table{n: n, self: host}
}

// Kill makes host unreachable (its rows hidden from the others).
func (n *Network) Kill(host string) { n.mu.Lock(); n.dead[host] = true; n.mu.Unlock() }

// Revive brings host back with its rows.
func (n *Network) Revive(host string) { n.mu.Lock(); delete(n.dead, host); n.mu.Unlock() }

// Partition splits the hosts into groups; hosts not named form group 0.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[string]int{}
	for i, g := range groups {
		for _, h := range g {
			n.group[h] = i + 1
		}
	}
}

// Heal ends a partition.
func (n *Network) Heal() { n.Partition() }

func (n *Network) reachLocked(from, to string) bool {
	return from == to || (!n.dead[to] && !n.dead[from] && n.group[from] == n.group[to])
}

// Table is one host's view. It implements ipam.Table.
type Table struct {
	n    *Network
	self string
}

var _ ipam.Table = (*Table)(nil)

// Self implements ipam.Table.
func (t *Table) Self() string { return t.self }

// Put implements ipam.Table.
func (t *Table) Put(key string, value []byte) error {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	t.n.version++
	t.n.rows[t.self][key] = ipam.Row{Key: key, Value: append([]byte(nil), value...), Writer: t.self, Version: t.n.version}
	return nil
}

// Delete implements ipam.Table.
func (t *Table) Delete(key string) error {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	delete(t.n.rows[t.self], key)
	return nil
}

// List implements ipam.Table: per key, the newest row of a reachable writer.
func (t *Table) List(prefix string) []ipam.Row {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	t.n.lists[t.self]++
	best := map[string]ipam.Row{}
	for w, rows := range t.n.rows {
		// A dead writer's claims stay in sight (they are the cluster's);
		// the other side of a partition is out of sight whole.
		claimsOnly := !t.n.reachLocked(t.self, w)
		if claimsOnly && (t.n.group[t.self] != t.n.group[w] || t.n.dead[t.self]) && !t.n.Claims {
			continue
		}
		for k, r := range rows {
			if claimsOnly && !strings.HasPrefix(k, ipam.SubnetKeyPrefix) && !strings.HasPrefix(k, ipam.BlockClaimKeyPrefix) {
				continue
			}
			if strings.HasPrefix(k, prefix) && (best[k].Writer == "" || r.Version > best[k].Version) {
				best[k] = r
			}
		}
	}
	out := make([]ipam.Row, 0, len(best))
	for _, r := range best {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Members implements ipam.Table.
func (t *Table) Members() []string {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	var out []string
	for h := range t.n.rows {
		if t.n.reachLocked(t.self, h) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

var _ ipam.Claimer = (*Table)(nil)

// CanClaim implements ipam.Claimer: true when the network takes claims.
func (t *Table) CanClaim() bool { return t.n.Claims }

// Claim implements ipam.Claimer.
func (t *Table) Claim(key string, value []byte, from string, version uint64) (bool, error) {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	holder, cur := "", ipam.Row{}
	for w, rows := range t.n.rows {
		if r, ok := rows[key]; ok {
			holder, cur = w, r
		}
	}
	if holder != from || (from != "" && cur.Version != version) {
		return false, nil
	}
	if from != "" {
		delete(t.n.rows[from], key)
	}
	t.n.version++
	t.n.rows[t.self][key] = ipam.Row{Key: key, Value: append([]byte(nil), value...), Writer: t.self, Version: t.n.version}
	return true, nil
}

// Unclaim implements ipam.Claimer.
func (t *Table) Unclaim(key string, version uint64) (bool, error) {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	if r, ok := t.n.rows[t.self][key]; !ok || r.Version != version {
		return false, nil
	}
	delete(t.n.rows[t.self], key)
	return true, nil
}
