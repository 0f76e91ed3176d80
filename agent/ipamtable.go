package agent

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
)

// IPAMTableName is the kvs table global IPAM's host rows (blocks, wishes)
// live in; its subnet claims live in IPAMClaimsTableName, a cluster table
// (kvs.Config.ClusterTables): a network's claim is the cluster's, not its
// creator's.
const (
	IPAMTableName       = "ipam"
	IPAMClaimsTableName = "ipam-subnets"
)

// IPAMClusterTables are the cluster tables of IPAM, for
// kvs.Config.ClusterTables.
var IPAMClusterTables = []string{IPAMClaimsTableName}

// ipamTableOf is the kvs table of an ipam key.
func ipamTableOf(key string) string {
	if strings.HasPrefix(key, ipam.SubnetKeyPrefix) {
		return IPAMClaimsTableName
	}
	return IPAMTableName
}

// IPAMTable adapts the gossip kvs backend to ipam.Table. It keeps its own
// index of the ipam rows, fed by a kvs watch and by this host's own writes
// at once (ipam relies on reading its own writes), grouped by the key's
// first two parts so that ipam's per-network listings touch only that
// network's rows. Run must be running for other hosts' rows to show.
type IPAMTable struct {
	kv *kvs.Gossip

	mu       sync.Mutex
	rows     map[string]map[string]ipam.Row // "kind/network/" → key → row
	members  []string                       // cached; nil after a membership event
	watching bool                           // RunIPAM keeps members fresh
}

var _ ipam.Table = (*IPAMTable)(nil)

// NewIPAMTable returns the ipam.Table view of a kvs backend.
func NewIPAMTable(kv *kvs.Gossip) *IPAMTable {
	t := &IPAMTable{kv: kv, rows: map[string]map[string]ipam.Row{}}
	for _, table := range []string{IPAMTableName, IPAMClaimsTableName} {
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
func (t *IPAMTable) apply(e kvs.Entry, gone bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := bucket(e.Key)
	m := t.rows[b]
	// A late event of a write this index already has (our own Put is
	// applied at once, its event comes after) changes nothing.
	if old, ok := m[e.Key]; ok && old.Writer == e.Owner && old.Version > e.Version {
		return
	}
	if gone {
		// A host row goes with its writer; a cluster row (a claim) with
		// anyone's delete.
		if old, ok := m[e.Key]; ok && (old.Writer == e.Owner || e.Table == IPAMClaimsTableName) {
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
func (t *IPAMTable) Self() string { return t.kv.Node().Name() }

// Put implements ipam.Table.
func (t *IPAMTable) Put(key string, value []byte) error {
	e, err := t.kv.Put(ipamTableOf(key), key, value)
	if err != nil {
		return err
	}
	t.apply(e, false)
	return nil
}

// Delete implements ipam.Table.
func (t *IPAMTable) Delete(key string) error {
	table := ipamTableOf(key)
	if err := t.kv.Delete(table, key); err != nil && !errors.Is(err, kvs.ErrNotFound) {
		return err
	}
	t.mu.Lock()
	if m := t.rows[bucket(key)]; m != nil && (m[key].Writer == t.Self() || table == IPAMClaimsTableName) {
		delete(m, key)
	}
	t.mu.Unlock()
	return nil
}

// List implements ipam.Table.
func (t *IPAMTable) List(prefix string) []ipam.Row {
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
// events (RunIPAM clears it), so without RunIPAM it is read every time.
func (t *IPAMTable) Members() []string {
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

// RunIPAM feeds t from the kvs watch and runs g until ctx ends,
// refreshing it whenever the ipam rows or the membership change.
func RunIPAM(ctx context.Context, t *IPAMTable, g *ipam.Global) {
	snap, events, cancel := t.kv.Watch(IPAMTableName)
	defer cancel()
	for _, e := range snap {
		t.apply(e, false)
	}
	snapC, claimEvents, cancelC := t.kv.Watch(IPAMClaimsTableName)
	defer cancelC()
	for _, e := range snapC {
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
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			t.apply(ev.Entry, ev.Type == kvs.EventDelete)
			g.Notify(ev.Entry.Key)
		case ev, ok := <-claimEvents:
			if !ok {
				return
			}
			t.apply(ev.Entry, ev.Type == kvs.EventDelete)
			g.Notify(ev.Entry.Key)
		case <-members:
			t.mu.Lock()
			t.members = nil
			t.mu.Unlock()
			g.Notify("")
		}
	}
}
