package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/ipam/kvstable"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

// Moving the cluster's tables between stores (gossip, etcd): an export
// is every row this host sees; an import writes the cluster tables' rows
// (networks, services, subnet claims), which outlive their writers. A
// host's own rows (endpoints, address blocks) are not imported: each host
// writes them from its state file when it starts with the new store.

// ClusterTables are the tables whose rows belong to the cluster, not to
// the host that wrote them: the ones an import writes.
func ClusterTables() []string { return slices.Clone(clusterTables) }

// CheckClusterRow reports why a row of a cluster table would be refused
// by the hosts that read it, or nil.
func CheckClusterRow(table, key string, value []byte) error {
	switch table {
	case tables.Networks:
		_, err := tables.DecodeNetwork(key, value)
		return err
	case tables.Services:
		_, err := tables.DecodeService(key, value)
		return err
	case tables.Tokens:
		_, err := tables.DecodeToken(key, value)
		return err
	case tables.GossipKeys:
		_, err := tables.DecodeGossipKeyRotation(key, value)
		return err
	}
	if !slices.Contains(clusterTables, table) {
		return fmt.Errorf("table %q is not one of the cluster's (%v)", table, clusterTables)
	}
	if !json.Valid(value) {
		return errors.New("the value is not JSON")
	}
	return nil
}

// ExportStore implements api.Backend.
func (a *Agent) ExportStore() api.StoreDump {
	d := api.StoreDump{Format: api.StoreDumpFormat, Store: a.kv.Health().Backend, Exported: time.Now().UTC(), Rows: []api.StoreRow{}}
	for _, e := range a.kv.List("") {
		d.Rows = append(d.Rows, api.NewStoreRow(e.Table, e.Key, e.Owner, e.Value))
	}
	// The address blocks of hosts down now (gossip hides their rows):
	// moved to etcd, they stay those hosts'.
	for _, e := range a.kv.Hidden(kvstable.TableName) {
		d.Rows = append(d.Rows, api.NewStoreRow(e.Table, e.Key, e.Owner, e.Value))
	}
	return d
}

// WithBlockClaims adds to a dump's rows the block claims its block grants
// make (gossip's address blocks, as ipam.ClaimsFromGrants turns them),
// unless the dump holds claims already: imported into etcd, every block
// stays with the host that held it.
func WithBlockClaims(rows []api.StoreRow) []api.StoreRow {
	var ipamRows []ipam.Row
	for _, r := range rows {
		if r.Table == kvstable.BlocksTableName {
			return rows
		}
		if r.Table == kvstable.TableName || r.Table == kvstable.ClaimsTableName {
			ipamRows = append(ipamRows, ipam.Row{Key: r.Key, Value: r.Bytes(), Writer: r.Owner})
		}
	}
	// The claims go first: hosts already running see a network as soon
	// as its subnet row lands, and take free blocks; its blocks must be
	// their holders' by then.
	var out []api.StoreRow
	for _, c := range ipam.ClaimsFromGrants(ipamRows) {
		out = append(out, api.NewStoreRow(kvstable.BlocksTableName, c.Key, c.Writer, c.Value))
	}
	return append(out, rows...)
}

// ImportStore implements api.Backend: every cluster row of d not in the
// tables yet is written, as this host's write (block claims, as their
// holder's, where the store takes claims). Bad rows are refused one by
// one; the others go on.
func (a *Agent) ImportStore(d api.StoreDump) (api.StoreImport, error) {
	var res api.StoreImport
	if d.Format != api.StoreDumpFormat {
		return res, apiError(api.CodeBadRequest, "format", "format %q: want %q (a file vxnet store export wrote)", d.Format, api.StoreDumpFormat)
	}
	if a.table.CanClaim() {
		d.Rows = WithBlockClaims(d.Rows)
	}
	for i, r := range d.Rows {
		if !a.kv.IsCluster(r.Table) || (r.Table == kvstable.BlocksTableName && !a.table.CanClaim()) {
			// A host's own row, or a block claim a gossip store does not
			// take (its hosts hand blocks out by grants).
			res.HostRows++
			continue
		}
		v := r.Bytes()
		if err := CheckClusterRow(r.Table, r.Key, v); err != nil {
			res.Refused = append(res.Refused, fmt.Sprintf("row %d (%s/%s): %v", i, r.Table, r.Key, err))
			continue
		}
		if _, ok := a.kv.Get(r.Table, r.Key); ok {
			res.Present++
			continue
		}
		var err error
		if r.Table == kvstable.BlocksTableName {
			// A claim is its holder's, whoever imports it; one another
			// host made meanwhile stays.
			var won bool
			if won, err = a.importClaim(r, v); err == nil && !won {
				res.Present++
				continue
			}
		} else {
			_, err = a.kv.Put(r.Table, r.Key, v)
		}
		if err != nil {
			if errors.Is(err, kvs.ErrUnavailable) {
				return res, err
			}
			res.Refused = append(res.Refused, fmt.Sprintf("row %d (%s/%s): %v", i, r.Table, r.Key, err))
			continue
		}
		res.Written++
	}
	if res.Written > 0 {
		a.log.Info("tables imported", "count", res.Written)
		a.kickReconcile()
	}
	return res, nil
}

// importClaim writes a block claim in its holder's slot, if no host holds
// the block (etcd only: gossip takes no claims).
func (a *Agent) importClaim(r api.StoreRow, v []byte) (bool, error) {
	c, ok := a.kv.(*kvs.Etcd)
	if !ok {
		return false, fmt.Errorf("this store takes no block claims (they are for --store etcd)")
	}
	return c.ClaimFor(r.Table, r.Key, r.Owner, v)
}
