package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
)

// TestDualStack_addressOfEach: a dual-stack network claims both subnets;
// reservations of either family come from and go back to their side (the
// IPv6 one by asking for ::); leases reservations hold survive the
// release of orphans; the network's removal withdraws both claims.
// Requests IPAM could not serve are refused naming the field; an aux
// address of an IPv6-only network is still kept out of use.
func TestDualStack_addressOfEach(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		req  api.NetworkCreate
		want string
	}{
		{api.NetworkCreate{Name: "d", Subnet6: "fd00:9::/64"}, "IPv4 subnet too"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "10.0.8.0/24"}, "subnet6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::1/64"}, "did you mean fd00:9::/64?"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "::ffff:10.0.8.0/120"}, "IPv4-mapped"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Gateway6: "fd00:9::1"}, "gateway6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", IPRange6: "fd00:9::/80"}, "ipRange6"},
		{api.NetworkCreate{Name: "d", Driver: "nat", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64"}, "overlay"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64", Gateway6: "fd00:8::1"}, "gateway6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64", IPRange6: "fd00:9::/127"}, "ipRange6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fe80::/64"}, "subnet6"},
		// vxnet's DHCP client is DHCPv4's.
		{api.NetworkCreate{Name: "d", Driver: "transparent", Subnet: "fd18:5f::/64", Options: map[string]string{"uplink": "lo", "dhcp": "true"}}, "DHCPv4"},
	} {
		if _, err := a.CreateNetwork(ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	if _, ok := a.ipam.Subnet("d"); ok {
		t.Error("a refused dual-stack network left its IPv4 claim")
	}
	n, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet != "10.0.9.0/24" || n.Subnet6 != "fd00:9::/64" || n.Gateway != "10.0.9.1" || n.Gateway6 != "fd00:9::1" {
		t.Errorf("network %+v", n)
	}
	// Inspecting it lists the blocks of both sides, each with its holder
	// (this host, the creator, holds them all).
	inspected, _ := a.Network("web")
	a.NetworkBlocks(&inspected)
	var v4, v6 int
	for _, b := range inspected.Blocks {
		p := netip.MustParsePrefix(b.Block)
		switch {
		case b.Host != "t1":
			t.Errorf("block %s held by %q, want t1", b.Block, b.Host)
		case netip.MustParsePrefix("10.0.9.0/24").Contains(p.Addr()):
			v4++
		case netip.MustParsePrefix("fd00:9::/64").Contains(p.Addr()):
			v6++
		}
	}
	if v4 == 0 || v6 == 0 || inspected.OtherBlocks == 0 {
		t.Errorf("inspect lists %d IPv4 and %d IPv6 blocks, %d others: %+v", v4, v6, inspected.OtherBlocks, inspected.Blocks)
	}
	// The test agent's endpoints are HNS endpoints (Windows), which carry
	// one address: their IPv4 one. (Endpoints in namespaces, with both,
	// are tested end to end.)
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Addresses) != 1 || !strings.HasPrefix(ep.Addresses[0], "10.0.9.") {
		t.Errorf("HNS endpoint addresses %v, want its IPv4 one", ep.Addresses)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "b", IP6: "fd00:9::50"}); err == nil || !strings.Contains(err.Error(), "ip6") {
		t.Errorf("ip6 on an HNS endpoint: %v", err)
	}
	// Docker's way: an address of each family reserved, the IPv6 one by
	// asking for ::, each from its side, and released to it.
	r4, err := a.ReserveAddress(ctx, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	r6, err := a.ReserveAddress(ctx, "web", netip.IPv6Unspecified())
	if err != nil || !r6.Addr().Is6() || r6.Bits() != 64 {
		t.Fatalf("reserving an IPv6 address: %v %v", r6, err)
	}
	s6, err := a.ReserveAddress(ctx, "web", netip.MustParseAddr("fd00:9::50"))
	if err != nil || s6.String() != "fd00:9::50/64" {
		t.Fatalf("reserving fd00:9::50: %v %v", s6, err)
	}
	if _, err := a.ReserveAddress(ctx, "web", netip.MustParseAddr("fd00:9::50")); err == nil {
		t.Error("an IPv6 address reserved twice")
	}
	if l := a.ipam.Leases("web" + ipam.V6Suffix); len(l) != 2 {
		t.Errorf("IPv6 side leases %v, want the two reservations", l)
	}
	// At start the agent releases leases nothing holds: reservations of
	// network web hold those of its IPv6 side.
	a.releaseOrphanLeases()
	if l := a.ipam.Leases("web" + ipam.V6Suffix); len(l) != 2 {
		t.Errorf("IPv6 leases %v after releasing orphans, want the two reservations", l)
	}
	if err := a.RemoveEndpoint("web", "a"); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []netip.Addr{r4.Addr(), r6.Addr(), s6.Addr()} {
		if err := a.ReleaseAddress("web", ip); err != nil {
			t.Fatal(err)
		}
	}
	if l4, l6 := a.ipam.Leases("web"), a.ipam.Leases("web"+ipam.V6Suffix); len(l4)+len(l6) != 0 {
		t.Errorf("leases left: %v %v", l4, l6)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "plain", Name: "x", IP6: "fd00:9::9"}); err == nil {
		t.Error("ip6 on a network that does not exist")
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "plain", Subnet: "10.0.7.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "plain", Name: "x", IP6: "fd00:9::9"}); err == nil || !strings.Contains(err.Error(), "no IPv6 subnet") {
		t.Errorf("ip6 on a single-stack network: %v", err)
	}
	if _, err := a.ReserveAddress(ctx, "plain", netip.IPv6Unspecified()); err == nil {
		t.Error("an IPv6 reservation on a single-stack network")
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "six", Subnet: "fd00:5::/125", AuxAddresses: map[string]string{"r": "fd00:5::2"}}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if p, err := a.ReserveAddress(ctx, "six", netip.Addr{}); err != nil || p.Addr() == netip.MustParseAddr("fd00:5::2") {
			t.Errorf("IPv6-only network: reserved %v %v, never its aux address", p, err)
		}
	}
	// An IPv6-only network's address may be asked for as ip6, as runtimes
	// ask for any IPv6 one: it is the network's ip.
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "six2", Subnet: "fd00:6::/120"}); err != nil {
		t.Fatal(err)
	}
	if ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "six2", Name: "v6", IP6: "fd00:6::6"}); err != nil || len(ep.Addresses) != 1 || ep.Addresses[0] != "fd00:6::6/120" {
		t.Errorf("ip6 on an IPv6-only network: %+v %v", ep, err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "six2", Name: "v7", IP: "fd00:6::7", IP6: "fd00:6::5"}); err == nil || !strings.Contains(err.Error(), `ip6 "fd00:6::5"`) {
		t.Errorf("ip and ip6 on an IPv6-only network: %v", err)
	}
	if err := a.RemoveNetwork("web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.ipam.Subnet("web" + ipam.V6Suffix); ok {
		t.Error("the IPv6 side's claim outlived the network")
	}
	if st := a.store.Snapshot(); len(st.Leases["web"+ipam.V6Suffix]) > 0 {
		t.Errorf("state keeps IPv6 leases %v", st.Leases)
	}
}
