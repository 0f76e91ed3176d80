package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/tables"
)

// TestImportStore_refusesNetworksTheAPIWouldNot: an imported network row
// is checked as network create checks a request (name, driver, VNI,
// subnet, range, gateway) and may not take the VNI or overlap the subnet
// of a network in use; each refusal names its row and field, and the
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
	}
	d := api.StoreDump{Format: api.StoreDumpFormat}
	var order []string
	for want, change := range bad {
		n := good
		n.Name = "n" + string(rune('a'+len(order)))
		n.VNI = good.VNI + uint32(len(order)) + 1
		n.Subnet = netip.MustParsePrefix("10.52." + string(rune('0'+len(order))) + ".0/24")
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
	res, err := a.ImportStore(d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 || len(res.Refused) != len(bad)+1 {
		t.Fatalf("written %d, refused %d: %q; want 1 and %d", res.Written, len(res.Refused), res.Refused, len(bad)+1)
	}
	for i, want := range order {
		if !strings.Contains(res.Refused[i], strings.TrimSpace(want)) {
			t.Errorf("row %d refused with %q, want it to name %q", i, res.Refused[i], want)
		}
	}
	if _, ok := a.kv.Get(tables.Networks, good.Key()); !ok {
		t.Error("the good row was not written")
	}
	if n, ok := a.network("web"); !ok || n.VNI != web.VNI {
		t.Errorf("network web after the import: %+v", n)
	}
}
