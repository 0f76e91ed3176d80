package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/etcdtest"
	"github.com/vxnet/vxnet/tables"
)

// TestStoreImport_etcdLeavesNetworksInUse: `store import` straight into
// etcd refuses, as an agent's import does, a network row that would
// shadow or move a network the store holds (another creation of its name,
// the name in other case, its VNI) and a row of a table vxnet does not
// have; it writes the rest and exits 1, naming each refused row.
func TestStoreImport_etcdLeavesNetworksInUse(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	dir := t.TempDir()
	endpoints := strings.Join(ec.Endpoints(), ",")
	web := tables.Network{Name: "web", Driver: "overlay", VNI: 4100, Subnet: netip.MustParsePrefix("10.60.0.0/24"), Creator: "h1", Created: time.Unix(100, 0)}
	dump := func(name string, rows ...api.StoreRow) string {
		b, err := json.Marshal(api.StoreDump{Format: api.StoreDumpFormat, Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	row := func(n tables.Network) api.StoreRow {
		return api.NewStoreRow(tables.Networks, n.Key(), n.Creator, n.Encode())
	}
	if code, out, errs := runCLI("store", "import", dump("first.json", row(web)), "--etcd-endpoints", endpoints); code != 0 || !strings.Contains(out, "1 row written") {
		t.Fatalf("first import: exit %d\n%s%s", code, out, errs)
	}
	older := web
	older.Creator, older.Created, older.VNI, older.Subnet = "h2", time.Unix(1, 0), 4101, netip.MustParsePrefix("10.61.0.0/24")
	upper := web
	upper.Name, upper.VNI, upper.Subnet = "Web", 4102, netip.MustParsePrefix("10.62.0.0/24")
	vni := web
	vni.Name, vni.Subnet = "api", netip.MustParsePrefix("10.63.0.0/24")
	good := web
	good.Name, good.VNI, good.Subnet = "db", 4104, netip.MustParsePrefix("10.64.0.0/24")
	// The refused creations' own rows go with them: older's subnet claim
	// (a dump lists claims first), a service of Web.
	claim := api.NewStoreRow("ipam-subnets", fmt.Sprintf("subnet/web/h2/%d", older.Created.UnixNano()), "h2", []byte(`{}`))
	svc := api.NewStoreRow(tables.Services, "Web/api", "h1", []byte(`{}`))
	code, out, errs := runCLI("store", "import", dump("second.json", claim, row(web), row(older), row(upper), row(vni), api.NewStoreRow("nosuch", "k", "h1", []byte(`{}`)), row(good), svc), "--etcd-endpoints", endpoints)
	if code != 1 {
		t.Errorf("second import: exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"1 row written, 1 already there",
		"row 0 (ipam-subnets/subnet/web/h2/1000000000): it belongs to the network of row 2, which is refused",
		`row 2 (networks/web/h2): name "web": network "web" created on host "h1"`,
		`row 3 (networks/Web/h1): name "Web": network "web" exists, and names that differ only in case`,
		`row 4 (networks/api/h1): vni 4100: network "web" has it`,
		`row 5 (nosuch/k): table "nosuch": not one of vxnet's tables`,
		"row 7 (services/Web/api): it belongs to the network of row 3, which is refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second import's output lacks %q:\n%s%s", want, out, errs)
		}
	}
	code, out, errs = runCLI("store", "export", "--etcd-endpoints", endpoints)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI("store", "export", "--etcd-endpoints", endpoints, "--etcd-prefix", "/other"); code != 0 || !strings.Contains(errs, `no vxnet rows under the prefix "/other"`) {
		t.Errorf("export of an empty prefix: exit %d, stderr %q; want 0 and a word on the prefix", code, errs)
	}
	var back api.StoreDump
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range back.Rows {
		keys = append(keys, r.Table+"/"+r.Key)
	}
	if strings.Join(keys, " ") != "networks/db/h1 networks/web/h1" {
		t.Errorf("the store holds %q, want networks/db/h1 and networks/web/h1", keys)
	}
}

// TestStoreImport_notADump: a file that is not a dump is named with what
// is wrong in it, not with the program's types.
func TestStoreImport_notADump(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.json")
	os.WriteFile(p, []byte(`[]`), 0o600)
	code, _, errs := runCLI("store", "import", p, "--etcd-endpoints", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "not a dump of vxnet store export") || !strings.Contains(errs, "the file holds a JSON array") || strings.Contains(errs, "api.") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
