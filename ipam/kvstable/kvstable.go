// Package kvstable adapts a kvs backend to ipam.Table: IPAM's
// rows ride on the replicated tables, its subnet claims in a cluster table
// (they outlive their creator), its blocks and wishes in a host-scoped one.
package kvstable

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
)

// TableName is the kvs table global IPAM's host rows (blocks, wishes)
// live in; its subnet claims live in ClaimsTableName, a cluster table
// (kvs.Config.ClusterTables): a network's claim is the cluster's, not its
// creator's.
const (
	TableName       = "ipam"
	ClaimsTableName = "ipam-subnets"
	// BlocksTableName holds block claims, on a store that takes claims
	// (etcd): a cluster table, since a claim outlives its holder until an
	// heir takes it over.
	BlocksTableName = "ipam-blocks"
)

// ClusterTables are the cluster tables of IPAM, for
// kvs.Config.ClusterTables.
var ClusterTables = []string{ClaimsTableName, BlocksTableName}

// ipamTableOf is the kvs table of an ipam key.
func ipamTableOf(key string) string {
	switch {
	case strings.HasPrefix(key, ipam.SubnetKeyPrefix):
		return ClaimsTableName
	case strings.HasPrefix(key, ipam.BlockClaimKeyPrefix):
		return BlocksTableName
	}
	return TableName
}

// claimer is a kvs backend that takes claims (etcd).
type claimer interface {
	Claim(table, key string, value []byte, from string, version uint64) (bool, uint64, error)
	Unclaim(table, key string, version uint64) (bool, error)
}

var _ ipam.Claimer = (*Table)(nil)

// CanClaim implements ipam.Claimer: the etcd backend takes claims, gossip
// does not.
func (t *Table) CanClaim() bool {
	_, ok := t.kv.(claimer)
	return ok
}

// Claim implements ipam.Claimer.
func (t *Table) Claim(key string, value []byte, from string, version uint64) (bool, error) {
	c, ok := t.kv.(claimer)
	if !ok {
		return false, errors.New("ipam: this store takes no claims")
	}
	won, v, err := c.Claim(ipamTableOf(key), key, value, from, version)
	if won {
		t.apply(kvs.Entry{Table: ipamTableOf(key), Key: key, Value: value, Owner: t.Self(), Version: v}, false)
	}
	return won, err
}

// Unclaim implements ipam.Claimer.
func (t *Table) Unclaim(key string, version uint64) (bool, error) {
	c, ok := t.kv.(claimer)
	if !ok {
		return false, errors.New("ipam: this store takes no claims")
	}
	done, err := c.Unclaim(ipamTableOf(key), key, version)
	if done {
		t.mu.Lock()
		if m := t.rows[bucket(key)]; m != nil && m[key].Writer == t.Self() {
			delete(m, key)
		}
		t.mu.Unlock()
	}
	return done, err
}

// Table adapts a kvs backend to ipam.Table. It keeps its own
// index of the ipam rows, fed by a kvs watch and by this host's own writes
// at once (ipam relies on reading its own writes), grouped by the key's
// first two parts so that ipam's per-network listings touch only that
// network's rows. Run must be running for other hosts' rows to show.
type Table struct {
	kv kvs.Tables

	mu       sync.Mutex
	rows     map[string]map[string]ipam.Row // "kind/network/" → key → row
	members  []string                       // cached; nil after a membership event
	watching bool                           // Run keeps members fresh
}

var _ ipam.Table = (*Table)(nil)

// New returns the ipam.Table view of a kvs backend (gossip or etcd).
func New(kv kvs.Tables) *Table {
	t := &Table{kv: kv, rows: map[string]map[string]ipam.Row{}}
	for _, table := range []string{TableName, ClaimsTableName, BlocksTableName} {
		for _, e := range kv.List(table) {
			t.apply(e, false)
		}
	}
	return t
}

// bucket is the first two '/'-separated parts of key, with the slash.
func bucket(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '/')
	if j < 0 {
		return key
	}
	return key[:i+1+j+1]
}

// apply records a row (or its removal) unless a newer one is known.
func (t *Table) apply(e kvs.Entry, gone bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := bucket(e.Key)
	m := t.rows[b]
	// A late event of a write this index already has (our own Put is
	// applied at once, its event comes after) changes nothing.
	if old, ok := m[e.Key]; ok && old.Writer == e.Owner && old.Version > e.Version {
		return
	}
	// Block claims are versioned by the store for every holder alike
	// (etcd's revisions): an event older than the claim held here, say
	// one queued before this host's own takeover applied, changes nothing.
	if old, ok := m[e.Key]; ok && e.Table == BlocksTableName && old.Version > e.Version {
		return
	}
	if gone {
		// A host row goes with its writer; a subnet claim with anyone's
		// delete. A block claim goes with its holder's slot only: a takeover
		// deletes the old holder's as it writes the new one's.
		if old, ok := m[e.Key]; ok && (old.Writer == e.Owner || e.Table == ClaimsTableName) {
			delete(m, e.Key)
		}
		return
	}
	if m == nil {
		m = map[string]ipam.Row{}
		t.rows[b] = m
	}
	m[e.Key] = ipam.Row{Key: e.Key, Value: e.Value, Writer: e.Owner, Version: e.Version}
}

// Self implements ipam.Table.
func (t *Table) Self() string { return t.kv.Node().Name() }

// Put implements ipam.Table.
func (t *Table) Put(key string, value []byte) error {
	e, err := t.kv.Put(ipamTableOf(key), key, value)
	if err != nil {
		return err
	}
	t.apply(e, false)
	return nil
}

// Delete implements ipam.Table. A block claim goes only if it is this
// host's (its own slot, at the version this index holds): a claim another
// host took over is never deleted by its old holder.
func (t *Table) Delete(key string) error {
	table := ipamTableOf(key)
	if table == BlocksTableName {
		t.mu.Lock()
		r, ok := t.rows[bucket(key)][key]
		t.mu.Unlock()
		if !ok || r.Writer != t.Self() {
			return nil
		}
		_, err := t.Unclaim(key, r.Version)
		return err
	}
	if err := t.kv.Delete(table, key); err != nil && !errors.Is(err, kvs.ErrNotFound) {
		return err
	}
	t.mu.Lock()
	if m := t.rows[bucket(key)]; m != nil && (m[key].Writer == t.Self() || table == ClaimsTableName || table == BlocksTableName) {
		delete(m, key)
	}
	t.mu.Unlock()
	return nil
}

// List implements ipam.Table.
func (t *Table) List(prefix string) []ipam.Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ipam.Row
	if b := bucket(prefix); b == prefix && strings.Count(prefix, "/") == 2 {
		for _, r := range t.rows[b] {
			out = append(out, r)
		}
		return out
	}
	for b, m := range t.rows {
		if !strings.HasPrefix(b, prefix) && !strings.HasPrefix(prefix, b) {
			continue
		}
		for k, r := range m {
			if strings.HasPrefix(k, prefix) {
				out = append(out, r)
			}
		}
	}
	return out
}

// Members implements ipam.Table. The list is cached between membership
// events (Run clears it), so without Run it is read every time.
func (t *Table) Members() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.members != nil && t.watching {
		return t.members
	}
	ms := t.kv.Node().Members()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	t.members = out
	return out
}

// Run feeds t from the kvs watch and runs g until ctx ends,
// refreshing it whenever the ipam rows or the membership change.
func Run(ctx context.Context, t *Table, g *ipam.Global) {
	snap, events, cancel := t.kv.Watch(TableName)
	defer cancel()
	for _, e := range snap {
		t.apply(e, false)
	}
	snapC, claimEvents, cancelC := t.kv.Watch(ClaimsTableName)
	defer cancelC()
	for _, e := range snapC {
		t.apply(e, false)
	}
	snapB, blockEvents, cancelB := t.kv.Watch(BlocksTableName)
	defer cancelB()
	for _, e := range snapB {
		t.apply(e, false)
	}
	members, cancelMembers := t.kv.Node().Subscribe()
	defer cancelMembers()
	t.mu.Lock()
	t.watching, t.members = true, nil
	t.mu.Unlock()
	defer func() { t.mu.Lock(); t.watching = false; t.mu.Unlock() }()
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { <-done }()
	g.Notify("")
	for {
		var ev kvs.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-events:
		case ev, ok = <-claimEvents:
		case ev, ok = <-blockEvents:
		case <-members:
			t.mu.Lock()
			t.members = nil
			t.mu.Unlock()
			g.Notify("")
			continue
		}
		if !ok {
			return
		}
		t.apply(ev.Entry, ev.Type == kvs.EventDelete)
		g.Notify(ev.Entry.Key)
	}
}
