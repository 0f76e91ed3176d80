package agent

import (
	"context"
	"errors"
	"strings"

	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/kvs"
)

// IPAMTableName is the kvs table global IPAM's rows live in.
const IPAMTableName = "ipam"

// ipamTable adapts the gossip kvs backend to ipam.Table.
type ipamTable struct {
	kv *kvs.Gossip
}

var _ ipam.Table = ipamTable{}

// NewIPAMTable returns the ipam.Table view of a kvs backend.
func NewIPAMTable(kv *kvs.Gossip) ipam.Table { return ipamTable{kv} }

func (t ipamTable) Self() string { return t.kv.Node().Name() }

func (t ipamTable) Put(key string, value []byte) error {
	_, err := t.kv.Put(IPAMTableName, key, value)
	return err
}

func (t ipamTable) Delete(key string) error {
	if err := t.kv.Delete(IPAMTableName, key); err != nil && !errors.Is(err, kvs.ErrNotFound) {
		return err
	}
	return nil
}

func (t ipamTable) List(prefix string) []ipam.Row {
	var out []ipam.Row
	for _, e := range t.kv.List(IPAMTableName) {
		if strings.HasPrefix(e.Key, prefix) {
			out = append(out, ipam.Row{Key: e.Key, Value: e.Value, Writer: e.Owner, Version: e.Version})
		}
	}
	return out
}

func (t ipamTable) Members() []string {
	ms := t.kv.Node().Members()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// RunIPAM runs g until ctx ends, refreshing it whenever the ipam table or
// the membership changes.
func RunIPAM(ctx context.Context, kv *kvs.Gossip, g *ipam.Global) {
	_, events, cancel := kv.Watch(IPAMTableName)
	defer cancel()
	members, cancelMembers := kv.Node().Subscribe()
	defer cancelMembers()
	go g.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			g.Notify()
		case <-members:
			g.Notify()
		}
	}
}
