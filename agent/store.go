package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/internal/names"
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
		n, err := tables.DecodeNetwork(key, value)
		if err != nil {
			return err
		}
		return checkNetworkRow(n)
	case tables.Services:
		_, err := tables.DecodeService(key, value)
		return err
	case tables.Tokens:
		_, err := tables.DecodeToken(key, value)
		return err
	case tables.GossipKeys:
		_, err := tables.DecodeGossipKeyRotation(key, value)
		return err
	case tables.Forgotten:
		_, err := tables.DecodeForgottenHost(key, value)
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

// checkNetworkRow refuses a network row the API would not have written:
// its name, driver, VNI, subnets, ranges and gateways are checked as at
// network create. Errors name the field and the value.
func checkNetworkRow(n tables.Network) error {
	if err := names.Network(n.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if _, err := driver.Get(n.Driver); err != nil {
		return fmt.Errorf("driver %q: %w", n.Driver, err)
	}
	if err := vxlan.ValidVNI(n.VNI); err != nil {
		return fmt.Errorf("vni: %w", err)
	}
	if !n.Subnet.IsValid() {
		return errors.New("subnet: none (every network has one)")
	}
	gw := func(a netip.Addr) string {
		if a.IsValid() {
			return a.String()
		}
		return ""
	}
	if err := ipam.CheckPool(n.Name, ipam.PoolConfig{Subnet: n.Subnet.String(), IPRange: n.IPRange, Gateway: gw(n.Gateway)}); err != nil {
		return err
	}
	if n.Subnet6.IsValid() {
		if err := ipam.CheckPool(n.Name+ipam.V6Suffix, ipam.PoolConfig{Subnet: n.Subnet6.String(), IPRange: n.IPRange6, Gateway: gw(n.Gateway6)}); err != nil {
			return err
		}
	}
	return nil
}

// NetworkClash names the network of others that an imported network row
// n would clash with, or returns nil: another creation of n's name (or
// of a name differing only in case), or another network with n's VNI or
// a subnet overlapping n's. An import does not move or shadow a network
// in use.
func NetworkClash(n tables.Network, others []tables.Network) error {
	for _, o := range others {
		switch {
		case o.Name == n.Name && o.Key() == n.Key():
			continue // the same network (an update of it)
		case o.Name == n.Name:
			return fmt.Errorf("name %q: network %q created on host %q (subnet %s) is in use; this row's (host %q, subnet %s) is left out", n.Name, o.Name, o.Creator, subnetsOf(o), n.Creator, subnetsOf(n))
		case names.Key(o.Name) == names.Key(n.Name):
			return fmt.Errorf("name %q: network %q exists, and names that differ only in case are one name in DNS", n.Name, o.Name)
		case o.VNI == n.VNI:
			return fmt.Errorf("vni %d: network %q has it", n.VNI, o.Name)
		case o.Subnet.IsValid() && o.Subnet.Overlaps(n.Subnet):
			return fmt.Errorf("subnet %s: overlaps network %q's %s", n.Subnet, o.Name, o.Subnet)
		case o.Subnet6.IsValid() && n.Subnet6.IsValid() && o.Subnet6.Overlaps(n.Subnet6):
			return fmt.Errorf("subnet6 %s: overlaps network %q's %s", n.Subnet6, o.Name, o.Subnet6)
		}
	}
	return nil
}

// subnetsOf is a network's subnets for a message: "10.0.9.0/24", or with
// its IPv6 one, "10.0.9.0/24 and fd00::/64".
func subnetsOf(n tables.Network) string {
	var s []string
	for _, p := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if p.IsValid() {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, " and ")
}

// CheckTable refuses a table that is not one of vxnet's, naming them.
func CheckTable(table string) error {
	if slices.Contains(clusterTables, table) || slices.Contains(hostTables, table) {
		return nil
	}
	return fmt.Errorf("table %q: not one of vxnet's tables (%s)", table, strings.Join(append(ClusterTables(), hostTables...), ", "))
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

// ImportStore implements api.Backend: the rows PlanImport picks are
// written, as this host's writes (block claims, as their holder's, where
// the store takes claims). Bad rows are refused one by one; the others
// go on.
func (a *Agent) ImportStore(d api.StoreDump) (api.StoreImport, error) {
	if d.Format != api.StoreDumpFormat {
		return api.StoreImport{}, apiError(api.CodeBadRequest, "format", "format %q: want %q (a file vxnet store export wrote)", d.Format, api.StoreDumpFormat)
	}
	if a.table.CanClaim() {
		d.Rows = WithBlockClaims(d.Rows)
	}
	a.mu.Lock()
	var nets []tables.Network
	for _, name := range sortedMapKeys(a.networks) {
		nets = append(nets, a.current(a.networks[name]))
	}
	a.mu.Unlock()
	present := func(table, key string) bool { _, ok := a.kv.Get(table, key); return ok }
	write, res := PlanImport(d.Rows, present, nets, a.table.CanClaim())
	for _, i := range write {
		r := d.Rows[i]
		v := r.Bytes()
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

// PlanImport decides what an import of rows writes (write, their indexes,
// in order) and counts the rest in res: rows of a host's own tables
// (endpoints, address blocks; block claims too unless the store takes
// claims, blockClaims) are left to their hosts; rows present says the
// store holds are left alone; the others are checked as the hosts that
// read them check them, and refused one by one, naming the row. A network
// that would shadow or move one of nets (or one written before it) is
// refused, and so are the rows that are that creation's: its subnet
// claims, and the block claims and services of its name if no creation
// of the name is kept.
func PlanImport(rows []api.StoreRow, present func(table, key string) bool, nets []tables.Network, blockClaims bool) (write []int, res api.StoreImport) {
	refuse := func(i int, err error) {
		res.Refused = append(res.Refused, fmt.Sprintf("row %d (%s/%s): %v", i, rows[i].Table, rows[i].Key, err))
	}
	// The networks first: the claims of a refused one go with it, and a
	// dump lists them before it.
	netErr := map[int]error{}
	refusedCreation := map[string]int{} // name/creator → its row
	refusedName := map[string]int{}     // name → the first refused row of it
	keptName := map[string]bool{}
	kept := slices.Clone(nets)
	for i, r := range rows {
		if r.Table != tables.Networks {
			continue
		}
		v := r.Bytes()
		if err := CheckClusterRow(r.Table, r.Key, v); err != nil {
			netErr[i] = err
			if name, creator, ok := strings.Cut(r.Key, "/"); ok {
				refusedCreation[tables.NetworkKey(name, creator)] = i
				if _, seen := refusedName[name]; !seen {
					refusedName[name] = i
				}
			}
			continue
		}
		n, _ := tables.DecodeNetwork(r.Key, v)
		if present(r.Table, r.Key) {
			keptName[n.Name] = true
			continue
		}
		if err := NetworkClash(n, kept); err != nil {
			netErr[i] = err
			refusedCreation[n.Key()] = i
			if _, seen := refusedName[n.Name]; !seen {
				refusedName[n.Name] = i
			}
			continue
		}
		kept = append(kept, n)
		keptName[n.Name] = true
	}
	// The row of a refused network that r belongs to, if any.
	refusedWith := func(r api.StoreRow) (int, bool) {
		name, creator := "", ""
		switch r.Table {
		case kvstable.ClaimsTableName: // subnet/NAME/CREATOR/CREATED
			rest, _ := strings.CutPrefix(r.Key, ipam.SubnetKeyPrefix)
			parts := strings.Split(rest, "/")
			if len(parts) < 2 {
				return 0, false
			}
			name, creator = strings.TrimSuffix(parts[0], ipam.V6Suffix), parts[1]
			j, ok := refusedCreation[tables.NetworkKey(name, creator)]
			return j, ok
		case kvstable.BlocksTableName: // claim/NAME/INDEX
			rest, _ := strings.CutPrefix(r.Key, ipam.BlockClaimKeyPrefix)
			name, _, _ = strings.Cut(rest, "/")
			name = strings.TrimSuffix(name, ipam.V6Suffix)
		case tables.Services: // NETWORK/NAME
			name, _, _ = strings.Cut(r.Key, "/")
		default:
			return 0, false
		}
		j, ok := refusedName[name]
		return j, ok && !keptName[name]
	}
	for i, r := range rows {
		if err := CheckTable(r.Table); err != nil {
			refuse(i, err)
			continue
		}
		if !slices.Contains(clusterTables, r.Table) || (r.Table == kvstable.BlocksTableName && !blockClaims) || r.Table == tables.Forgotten {
			// A host's own row, a block claim a gossip store does not
			// take (its hosts hand blocks out by grants), or a forgotten
			// host's run (its rows are gone already; in another store
			// the rule would name runs of hosts it does not know).
			res.HostRows++
			continue
		}
		if err, ok := netErr[i]; ok {
			refuse(i, err)
			continue
		}
		if j, ok := refusedWith(r); ok {
			refuse(i, fmt.Errorf("it belongs to the network of row %d, which is refused", j))
			continue
		}
		if present(r.Table, r.Key) {
			res.Present++
			continue
		}
		if err := CheckClusterRow(r.Table, r.Key, r.Bytes()); err != nil {
			refuse(i, err)
			continue
		}
		write = append(write, i)
	}
	return write, res
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
