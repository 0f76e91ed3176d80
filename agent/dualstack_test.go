package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
)

// TestDualStack_addressOfEach: an endpoint of a dual-stack network gets an
// address of each family, IPv4 first (the next free ones, or ip and ip6);
// Docker's way (both reserved, the IPv6 one by asking for ::) too; removed,
// it gives both back; the network's removal withdraws both subnet claims.
// Requests IPAM could not serve are refused naming the field.
func TestDualStack_addressOfEach(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		req  api.NetworkCreate
		want string
	}{
		{api.NetworkCreate{Name: "d", Subnet6: "fd00:9::/64"}, "IPv4 subnet too"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "10.0.8.0/24"}, "subnet6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::1/64"}, "subnet6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Gateway6: "fd00:9::1"}, "gateway6"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", IPRange6: "fd00:9::/80"}, "ipRange6"},
		{api.NetworkCreate{Name: "d", Driver: "nat", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64"}, "overlay"},
		{api.NetworkCreate{Name: "d", Subnet: "10.0.9.0/24", Subnet6: "fd00:9::/64", Gateway6: "fd00:8::1"}, "gateway6"},
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
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Addresses) != 2 || !strings.HasPrefix(ep.Addresses[0], "10.0.9.") || !strings.HasPrefix(ep.Addresses[1], "fd00:9::") ||
		!strings.HasSuffix(ep.Addresses[1], "/64") {
		t.Errorf("endpoint addresses %v, want one of each, IPv4 first", ep.Addresses)
	}
	// At start the agent releases leases no endpoint holds: an IPv6
	// lease is held by its endpoint of network web, not web#6.
	a.releaseOrphanLeases()
	if l := a.ipam.Leases("web" + ipam.V6Suffix); len(l) != 1 || l[0].String()+"/64" != ep.Addresses[1] {
		t.Errorf("IPv6 leases %v after releasing orphans, want %s", l, ep.Addresses[1])
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "b", IP: "10.0.9.50", IP6: "fd00:9::50"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "c", IP6: "fd00:9::50"}); err == nil || !strings.Contains(err.Error(), "ip6") {
		t.Errorf("an IPv6 address in use: %v", err)
	}
	if l := a.ipam.Leases("web"); len(l) != 2 {
		t.Errorf("IPv4 leases %v after a refused endpoint, want a's and b's", l)
	}
	// Docker's way: both reserved first.
	r4, err := a.ReserveAddress(ctx, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	r6, err := a.ReserveAddress(ctx, "web", netip.IPv6Unspecified())
	if err != nil || !r6.Addr().Is6() || r6.Bits() != 64 {
		t.Fatalf("reserving an IPv6 address: %v %v", r6, err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "d", IP: r4.Addr().String(), IP6: r6.Addr().String(), Reserved: true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "d"} {
		if err := a.RemoveEndpoint("web", name); err != nil {
			t.Fatal(err)
		}
	}
	for _, ip := range []netip.Addr{r4.Addr(), r6.Addr()} {
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
