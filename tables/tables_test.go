package tables

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dhcp"
)

func sampleEndpoint() Endpoint {
	return Endpoint{Name: "web", Network: "ov", Host: "h1", VTEP: netip.MustParseAddr("198.18.0.1"),
		MAC: vxlan.MAC{2, 0x42, 10, 0, 9, 2}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.9.2/24")},
		Aliases: []string{"www"}, Service: "front", Netns: "c1", Ifname: "eth0", Publish: []string{"8080:80/tcp"},
		SRVPorts: []string{"http=80/tcp"}}
}

func TestEndpoint_roundTrip(t *testing.T) {
	e := sampleEndpoint()
	got, err := DecodeEndpoint("ov/web", "h1", e.Encode())
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, e)
	}
	e.Mesh, e.Service, e.Netns = true, "", ""
	if got, err := DecodeEndpoint("ov/web", "h1", e.Encode()); err != nil || !got.Mesh {
		t.Fatalf("a mesh row: %+v, %v", got, err)
	}
}

// The wire form is the one hosts spoke before rows had a version: a row
// without "v" decodes, and the field names are unchanged.
func TestEndpoint_readsRowsWithoutVersion(t *testing.T) {
	old := `{"name":"web","network":"ov","host":"h1","vtep":"198.18.0.1","mac":"02:42:0a:00:09:02","addresses":["10.0.9.2/24"]}`
	e, err := DecodeEndpoint("ov/web", "h1", []byte(old))
	if err != nil || e.Addr() != netip.MustParseAddr("10.0.9.2") || e.VTEP != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("%+v, %v", e, err)
	}
	if s := string(e.Encode()); !strings.Contains(s, `"v":1`) || !strings.Contains(s, `"addresses":["10.0.9.2/24"]`) {
		t.Errorf("wire form %s", s)
	}
}

func TestDecode_errorsNameTheField(t *testing.T) {
	good := string(sampleEndpoint().Encode())
	tests := map[string]struct {
		key, owner, row, want string
	}{
		"newer format":  {"ov/web", "h1", strings.Replace(good, `"v":1`, `"v":3`, 1), `v "3": written by a newer vxnet`},
		"bad vtep":      {"ov/web", "h1", strings.Replace(good, "198.18.0.1", "nope", 1), `vtep "nope"`},
		"bad mac":       {"ov/web", "h1", strings.Replace(good, "02:42:0a:00:09:02", "zz", 1), `mac "zz"`},
		"bad address":   {"ov/web", "h1", strings.Replace(good, "10.0.9.2/24", "10.0.9.2", 1), `addresses "10.0.9.2"`},
		"key mismatch":  {"ov/db", "h1", good, `network/name "ov/web": does not match the key`},
		"other writer":  {"ov/web", "h2", good, `host "h1": is not the row's writer h2`},
		"not an object": {"ov/web", "h1", `[1]`, "not an endpoint row"},
		"no mac":        {"ov/web", "h1", strings.Replace(good, `"mac":"02:42:0a:00:09:02",`, "", 1), `mac "": missing`},
	}
	for name, tt := range tests {
		_, err := DecodeEndpoint(tt.key, tt.owner, []byte(tt.row))
		var re *RowError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a RowError containing %q", name, err, tt.want)
		}
	}
}

func TestNetwork_roundTripAndChecks(t *testing.T) {
	n := Network{Name: "ov", Driver: "overlay", Scope: "global", VNI: 4242, Subnet: netip.MustParsePrefix("10.0.9.0/24"),
		Gateway: netip.MustParseAddr("10.0.9.1"), Options: map[string]string{"x": "y"}, Creator: "h1",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	got, err := DecodeNetwork(n.Key(), n.Encode())
	if err != nil || !reflect.DeepEqual(got, n) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := DecodeNetwork("ov/h2", n.Encode()); err == nil || !strings.Contains(err.Error(), "does not match the key") {
		t.Errorf("key mismatch: %v", err)
	}
	// A gateway written as a zero address's text by an older writer is
	// no gateway.
	old := strings.Replace(string(n.Encode()), `"gateway":"10.0.9.1"`, `"gateway":"invalid IP"`, 1)
	if got, err := DecodeNetwork(n.Key(), []byte(old)); err != nil || got.Gateway.IsValid() {
		t.Errorf("old gateway text: %+v, %v", got, err)
	}
	bad := strings.Replace(string(n.Encode()), "10.0.9.0/24", "10.0.9.0", 1)
	if _, err := DecodeNetwork(n.Key(), []byte(bad)); err == nil || !strings.Contains(err.Error(), `subnet "10.0.9.0"`) {
		t.Errorf("bad subnet: %v", err)
	}
	if strings.Contains(string(n.Encode()), `"v":2`) {
		t.Errorf("a single-stack row written as version 2: %s", n.Encode())
	}

	// Dual stack: version 2, so that a host reading only version 1
	// refuses the row; both subnets and gateways come back.
	d := n
	d.Subnet6, d.Gateway6 = netip.MustParsePrefix("fd00:9::/64"), netip.MustParseAddr("fd00:9::1")
	enc := string(d.Encode())
	if !strings.Contains(enc, `"v":2`) {
		t.Errorf("a dual-stack row not written as version 2: %s", enc)
	}
	if got, err := DecodeNetwork(d.Key(), []byte(enc)); err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("dual-stack round trip: %+v, %v", got, err)
	}
	for from, want := range map[string]string{
		`"subnet6":"fd00:9::/64"`: `"subnet6":"10.1.0.0/24"`,
		`"subnet":"10.0.9.0/24"`:  `"subnet":"fd00:8::/64"`,
		`"gateway6":"fd00:9::1"`:  `"gateway6":"x"`,
	} {
		if _, err := DecodeNetwork(d.Key(), []byte(strings.Replace(enc, from, want, 1))); err == nil {
			t.Errorf("%s accepted", want)
		}
	}
}

func TestPickNetworks(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := Network{Name: "x", Creator: "h2", Created: t0}
	b := Network{Name: "x", Creator: "h1", Created: t0.Add(time.Second)}
	c := Network{Name: "x", Creator: "h1", Created: t0}
	if w := PickNetworks([]Network{b, a, c})["x"]; w.Creator != "h1" || !w.Created.Equal(t0) {
		t.Errorf("winner %+v, want the earliest, then the first creator by name", w)
	}
}

// FuzzDecodeEndpoint: any bytes decode to a row or a RowError, never a
// panic; a row that decodes encodes to one that decodes to the same wire
// form.
func FuzzDecodeEndpoint(f *testing.F) {
	f.Add([]byte(sampleEndpoint().Encode()))
	f.Add([]byte(`{"name":"web","network":"ov","host":"h1","vtep":"","mac":"02-42-0A-00-09-02","addresses":[]}`))
	f.Add([]byte(`{"v":9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEndpoint("ov/web", "h1", b)
		if err != nil {
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RowError", err)
			}
			return
		}
		again, err := DecodeEndpoint("ov/web", "h1", e.Encode())
		if err != nil || string(again.Encode()) != string(e.Encode()) {
			t.Fatalf("re-decoded %s, %v; want %s", again.Encode(), err, e.Encode())
		}
	})
}

// TestLease_roundTrip: a lease recorded reads back as the same lease (to
// the second).
func TestLease_roundTrip(t *testing.T) {
	l := dhcp.Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Router: netip.MustParseAddr("192.0.2.254"),
		Server: netip.MustParseAddr("192.0.2.1"), Time: time.Hour, Got: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := Endpoint{Addrs: []netip.Prefix{l.Addr}, DHCP: LeaseRecord("eth1", l)}
	got, err := e.Lease()
	if err != nil || got != l || e.DHCP.Uplink != "eth1" {
		t.Errorf("lease %+v, %v; want %+v", got, err, l)
	}
	if _, err := (Endpoint{}).Lease(); err == nil {
		t.Error("an endpoint without a lease gave one")
	}
}
