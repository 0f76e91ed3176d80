package dns

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dns/dnstest"
)

var ip = netip.MustParseAddr

// fixtureNetworks and fixtureEndpoints are the names the handler tests
// query: web and db (global), loc (local), intnet (internal).
func fixtureTable(t testing.TB) *Table {
	t.Helper()
	nets := []Network{
		{Name: "web", Scope: ScopeGlobal},
		{Name: "db", Scope: ScopeGlobal},
		{Name: "loc", Scope: ScopeLocal},
		{Name: "intnet", Scope: ScopeGlobal, Internal: true},
	}
	eps := []Endpoint{
		{Name: "api1", Aliases: []string{"API"}, Service: "apisvc", Network: "web", Addrs: []netip.Addr{ip("10.0.1.2"), ip("fd00:1::2")}, Local: true,
			Ports: []Port{{Name: "http", Proto: "tcp", Port: 8080}}},
		{Name: "api2", Service: "apisvc", Network: "web", Addrs: []netip.Addr{ip("10.0.1.3"), ip("fd00:1::3")},
			Ports: []Port{{Name: "http", Proto: "tcp", Port: 8080}}},
		{Name: "v4only", Network: "db", Addrs: []netip.Addr{ip("10.0.2.2")}},
		{Name: "shared", Network: "web", Addrs: []netip.Addr{ip("10.0.1.9")}},
		{Name: "shared", Network: "db", Addrs: []netip.Addr{ip("10.0.2.9")}},
		{Name: "l1", Network: "loc", Addrs: []netip.Addr{ip("10.0.3.2")}, Local: true},
		{Name: "l2", Network: "loc", Addrs: []netip.Addr{ip("10.0.3.3")}},
		{Name: "secret", Network: "intnet", Addrs: []netip.Addr{ip("10.0.4.2")}},
	}
	for i := range 100 {
		eps = append(eps, Endpoint{Name: fmt.Sprintf("many%d", i), Service: "many", Network: "web",
			Addrs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 5, byte(i + 1)})}})
	}
	tab, err := NewTable(nets, eps, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// newTestServer returns a server with the fixture table, forwarding to a
// dnstest upstream that knows example.com.
func newTestServer(t testing.TB) (*Server, *dnstest.Upstream) {
	t.Helper()
	up, err := dnstest.StartUpstream(map[string]netip.Addr{"example.com.": ip("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	cfg := DefaultConfig()
	cfg.Upstreams = []netip.AddrPort{up.Addr}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.SetRecords(fixtureTable(t))
	return s, up
}
