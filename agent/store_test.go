package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/tables"
)

// TestImportStore_refusesNetworksTheAPIWouldNot: an imported network row
// is checked as network create checks a request (name, driver, VNI,
// subnet, range, gateway) and may not take the name (in any case), the
// VNI or overlap the subnet of a network in use; each refusal names its row and field, and the
// good rows are written.
func TestImportStore_refusesNetworksTheAPIWouldNot(t *testing.T) {
	a := startTestAgent(t, nil)
	web, err := a.CreateNetwork(context.Background(), api.NetworkCreate{Name: "web", Subnet: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	good := tables.Network{Name: "imported", Driver: "overlay", VNI: 7001, Subnet: netip.MustParsePrefix("10.51.0.0/24"), Creator: "old", Created: time.Unix(1, 0)}
	bad := map[string]func(n *tables.Network){
		`network name "bad name"`: func(n *tables.Network) { n.Name = "bad name" },
		"driver":                  func(n *tables.Network) { n.Driver = "weird" },
		"vni":                     func(n *tables.Network) { n.VNI = 0 },
		"vni ":                    func(n *tables.Network) { n.VNI = 1 << 24 },
		"subnet":                  func(n *tables.Network) { n.Subnet = netip.Prefix{} },
		"gateway":                 func(n *tables.Network) { n.Gateway = netip.MustParseAddr("10.99.0.1") },
		"too small":               func(n *tables.Network) { n.IPRange = n.Subnet.Addr().String() + "/32" },
		"network \"web\"":         func(n *tables.Network) { n.VNI = web.VNI },
		"overlaps":                func(n *tables.Network) { n.Subnet = netip.MustParsePrefix("10.50.0.0/16") },
		// Another creation of a name in use, or the name in other case:
		// the network in use stays.
		`created on host`:     func(n *tables.Network) { n.Name = "web" },
		`differ only in case`: func(n *tables.Network) { n.Name = "Web" },
	}
	d := api.StoreDump{Format: api.StoreDumpFormat}
	var order []string
	for want, change := range bad {
		n := good
		n.Name = "n" + string(rune('a'+len(order)))
		n.VNI = good.VNI + uint32(len(order)) + 1
		n.Subnet = netip.MustParsePrefix(fmt.Sprintf("10.52.%d.0/24", len(order)))
		change(&n)
		d.Rows = append(d.Rows, api.NewStoreRow(tables.Networks, n.Key(), "old", n.Encode()))
		order = append(order, want)
	}
	d.Rows = append(d.Rows, api.NewStoreRow(tables.Networks, good.Key(), "old", good.Encode()))
	// Two rows of one dump that clash: the first is written.
	twin := good
	twin.Name, twin.Subnet = "twin", netip.MustParsePrefix("10.53.0.0/24")
	d.Rows = append(d.Rows, api.NewStoreRow(tables.Networks, twin.Key(), "old", twin.Encode()))
	order = append(order, `network "imported"`)
	// A table no vxnet has: refused, not counted as a host's row.
	d.Rows = append(d.Rows, api.NewStoreRow("nosuch", "k", "old", []byte(`{}`)))
	order = append(order, `table "nosuch": not one of vxnet's tables`)
	res, err := a.ImportStore(d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 || len(res.Refused) != len(bad)+2 || res.HostRows != 0 {
		t.Fatalf("written %d, refused %d: %q, host rows %d; want 1, %d and 0", res.Written, len(res.Refused), res.Refused, res.HostRows, len(bad)+2)
	}
	for i, want := range order {
		if !strings.Contains(res.Refused[i], strings.TrimSpace(want)) {
			t.Errorf("row %d refused with %q, want it to name %q", i, res.Refused[i], want)
		}
	}
	if _, ok := a.kv.Get(tables.Networks, good.Key()); !ok {
		t.Error("the good row was not written")
	}
	if n, ok := a.network("web"); !ok || n.VNI != web.VNI || n.Subnet.String() != "10.50.0.0/24" {
		t.Errorf("network web after the import: %+v", n)
	}
	if _, ok := a.network("Web"); ok {
		t.Error("network Web was imported beside web")
	}
}
