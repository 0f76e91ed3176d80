package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vxnet/vxnet/api"
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
	return d
}

// ImportStore implements api.Backend: every cluster row of d not in the
// tables yet is written, as this host's write. Bad rows are refused one
// by one; the others go on.
func (a *Agent) ImportStore(d api.StoreDump) (api.StoreImport, error) {
	var res api.StoreImport
	if d.Format != api.StoreDumpFormat {
		return res, apiError(api.CodeBadRequest, "format", "format %q: want %q (a file vxnet store export wrote)", d.Format, api.StoreDumpFormat)
	}
	for i, r := range d.Rows {
		if !a.kv.IsCluster(r.Table) {
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
		if _, err := a.kv.Put(r.Table, r.Key, v); err != nil {
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
