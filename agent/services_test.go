package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/testutil"
	"github.com/vxnet/vxnet/tables"
)

// TestServices_createAndRemove: a vip service leases its VIP (auto or
// asked for) for as long as it lives, DNS answers its name with the VIP
// and tasks.NAME with its endpoints, and bad requests name the field;
// a row removed by another host, or one this host lost (state), moves
// the leases to match.
func TestServices_createAndRemove(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	leased := func(ip string) bool { return slices.Contains(a.ipam.Leases("web"), netip.MustParseAddr(ip)) }
	for _, c := range []struct {
		req         api.ServiceCreate
		field, want string
	}{
		{api.ServiceCreate{Name: "Bad_Name", Network: "web"}, "name", ""},
		{api.ServiceCreate{Name: "api", Network: "web", EndpointMode: "ipvs"}, "endpointMode", `endpoint mode "ipvs"`},
		{api.ServiceCreate{Name: "api", Network: "nope"}, "network", `no network "nope"`},
		{api.ServiceCreate{Name: "api"}, "network", "network is required"},
		{api.ServiceCreate{Name: "api", Network: "web", EndpointMode: "dnsrr", VIP: "10.0.9.9"}, "vip", "a dnsrr service has no VIP"},
		{api.ServiceCreate{Name: "api", Network: "web", EndpointMode: "dnsrr", VIP6: "fd00::9"}, "vip6", "leave out --vip6"},
		{api.ServiceCreate{Name: "api", Network: "web", VIP: "10.0.10.9"}, "vip", `vip "10.0.10.9": want auto or an address of the network's subnet 10.0.9.0/24`},
		{api.ServiceCreate{Name: "api", Network: "web", VIP6: "fd00::9"}, "vip6", "has no IPv6 subnet"},
		{api.ServiceCreate{Name: "api", Network: "web", Publish: []string{"8080:80"}, EndpointMode: "dnsrr"}, "publish", "need endpoint mode vip"},
		{api.ServiceCreate{Name: "api", Network: "web", Publish: []string{"x"}}, "publish", `port "x"`},
	} {
		_, err := a.CreateService(ctx, c.req)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != c.field || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%+v: %v, want field %s saying %q", c.req, err, c.field, c.want)
		}
	}
	s, err := a.CreateService(ctx, api.ServiceCreate{Name: "api", Network: "web", VIP: "10.0.9.50"})
	if err != nil || s.EndpointMode != "vip" || !slices.Equal(s.VIPs, []string{"10.0.9.50"}) || !leased("10.0.9.50") {
		t.Fatalf("create api: %+v %v (leased %v)", s, err, leased("10.0.9.50"))
	}
	if _, err := a.CreateService(ctx, api.ServiceCreate{Name: "api", Network: "web"}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second api: %v", err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "x", IP: "10.0.9.50"}); err == nil {
		t.Error("an endpoint took the VIP")
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "t1", Service: "api", IP: "10.0.9.7"}); err != nil {
		t.Fatal(err)
	}
	answers := func(name string) []string {
		var out []string
		if m := resolve(a, "web", name, mdns.TypeA); m != nil {
			for _, rr := range m.Answer {
				if r, ok := rr.(*mdns.A); ok {
					out = append(out, r.A.String())
				}
			}
		}
		return out
	}
	testutil.WaitFor(t, "api to answer with its VIP", 5*time.Second, func() bool {
		return slices.Equal(answers("api."), []string{"10.0.9.50"}) && slices.Equal(answers("tasks.api."), []string{"10.0.9.7"})
	})
	if err := a.RemoveNetwork("web"); err == nil || !strings.Contains(err.Error(), "has services: api") {
		t.Errorf("network rm with a service: %v", err)
	}

	// Removed: the VIP goes back, the name answers with the endpoint.
	if err := a.RemoveService("web", "api"); err != nil {
		t.Fatal(err)
	}
	if leased("10.0.9.50") {
		t.Error("the VIP of a removed service is still leased")
	}
	testutil.WaitFor(t, "api to answer with its endpoint", 5*time.Second, func() bool {
		return slices.Equal(answers("api."), []string{"10.0.9.7"})
	})
	if err := a.RemoveService("web", "api"); err == nil || !strings.Contains(err.Error(), "was never created: it is the name its endpoints joined (t1@") {
		t.Errorf("removing it again (its endpoint still joins the name): %v", err)
	}
	if err := a.RemoveService("web", "nothing"); err == nil || !strings.Contains(err.Error(), `no service "nothing"`) {
		t.Errorf("removing a service no one made: %v", err)
	}

	// A row this host is VIP host of, its leases lost: taken back. The
	// row deleted (as by another host): given back.
	row := tables.Service{Name: "db", Network: "web", Mode: tables.ModeVIP, VIPs: []netip.Addr{netip.MustParseAddr("10.0.9.60")},
		VIPHost: a.cfg.Name, Creator: a.cfg.Name, Created: time.Now()}
	if err := a.put(tables.Services, row.Key(), row.Encode()); err != nil {
		t.Fatal(err)
	}
	a.kickReconcile()
	testutil.WaitFor(t, "the lost VIP taken back", 5*time.Second, func() bool { return leased("10.0.9.60") })
	if err := a.del(tables.Services, row.Key()); err != nil {
		t.Fatal(err)
	}
	a.kickReconcile()
	testutil.WaitFor(t, "the VIP of a deleted row given back", 5*time.Second, func() bool { return !leased("10.0.9.60") })
}

// TestServices_sharedNamesAndPorts: a network's services and endpoints
// share DNS names, in any case and in either order; an endpoint may not
// publish a host port that a service publishes on every host, nor one
// the cluster listens on itself (gossip, VXLAN, and join where this host
// runs the join service), whichever path publishes it.
func TestServices_sharedNamesAndPorts(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	www, err := a.CreateService(ctx, api.ServiceCreate{Name: "www", Network: "web", Publish: []string{"8080:80"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e1", IP: "10.0.9.10"}); err != nil {
		t.Fatal(err)
	}
	wantErr := func(what string, err error, field, want string) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != field || !strings.Contains(ae.Message, want) {
			t.Errorf("%s: %v, want field %s saying %q", what, err, field, want)
		}
	}
	for _, name := range []string{"www", "WWW"} {
		_, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: name})
		wantErr("endpoint "+name, err, "name", `network "web" has a service "www"`)
	}
	for _, name := range []string{"e1", "E1"} {
		_, err := a.CreateService(ctx, api.ServiceCreate{Name: name, Network: "web"})
		wantErr("service "+name, err, "name", `network "web" has an endpoint "e1"`)
	}
	// Aliases are DNS names too.
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e5", Aliases: []string{"Www"}})
	wantErr("an endpoint aliased as the service", err, "aliases", `alias "Www": network "web" has a service "www"`)
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e6", IP: "10.0.9.11", Aliases: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateService(ctx, api.ServiceCreate{Name: "db", Network: "web"})
	wantErr("a service named as an alias", err, "name", "with the alias db")
	// So are the names endpoints join with no service made (--service).
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "j1", Service: "E1"})
	wantErr("joining a name an endpoint has", err, "service", `service "E1": network "web" has an endpoint "e1"`)
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "t7", IP: "10.0.9.12", Service: "impl"}); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "IMPL"})
	wantErr("an endpoint named as a joined name", err, "name", `has a service "impl"`)
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e2", Publish: []string{"8080:80"}})
	wantErr("endpoint publishing the service's port", err, "publish", "published on every host by service www on network web")
	c := a.cfg
	for _, port := range []string{fmt.Sprintf("%d:80", c.GossipPort), fmt.Sprintf("%d:80/udp", c.GossipPort), fmt.Sprintf("%d:80/udp", c.VXLANPort)} {
		_, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e2", Publish: []string{port}})
		wantErr("endpoint publishing "+port, err, "publish", "the cluster's own")
		_, err = a.CreateService(ctx, api.ServiceCreate{Name: "s2", Network: "web", Publish: []string{port}})
		wantErr("service publishing "+port, err, "publish", "the cluster's own")
	}
	_, err = a.CreateService(ctx, api.ServiceCreate{Name: "s3", Network: "web", VIP: "10.0.9.10"})
	wantErr("a VIP an endpoint holds", err, "vip", "(by endpoint e1 on host "+a.cfg.Name+")")
	_, err = a.CreateService(ctx, api.ServiceCreate{Name: "s3", Network: "web", VIP: www.VIPs[0]})
	wantErr("another service's VIP", err, "vip", "(the VIP of service www)")
	err = a.SetPublish("web", "e1", []string{"8080:80"})
	wantErr("e1 publishing the service's port later", err, "publish", "by service www")
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e2", Publish: []string{fmt.Sprintf("%d:80", c.VXLANPort)}}); err != nil {
		t.Errorf("4789/tcp is not the cluster's: %v", err)
	}
	// The join port is the cluster's only where the join service runs.
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e3", Publish: []string{fmt.Sprintf("%d:80", c.JoinPort)}}); err != nil {
		t.Errorf("the join port with no join service here: %v", err)
	}
	withJoin := &Agent{cfg: a.cfg, join: &joinService{}}
	err = withJoin.clusterPortErr("x", uint16(c.JoinPort), "tcp")
	wantErr("the join port with a join service", err, "publish", fmt.Sprintf("join %d/tcp", c.JoinPort))
	// --vip6 auto on a network without IPv6: no IPv6 VIP.
	if s, err := a.CreateService(ctx, api.ServiceCreate{Name: "s4", Network: "web", VIP6: "auto"}); err != nil || len(s.VIPs) != 1 {
		t.Errorf("vip6 auto on an IPv4 network: %+v %v", s, err)
	}
	// An IPv6-only network's VIP may be asked for as vip6: it is its vip.
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "six", Subnet: "fd00:6::/120"}); err != nil {
		t.Fatal(err)
	}
	if s, err := a.CreateService(ctx, api.ServiceCreate{Name: "s6", Network: "six", VIP6: "fd00:6::60"}); err != nil || len(s.VIPs) != 1 || s.VIPs[0] != "fd00:6::60" {
		t.Errorf("vip6 on an IPv6-only network: %+v %v", s, err)
	}
	_, err = a.CreateService(ctx, api.ServiceCreate{Name: "s7", Network: "six", VIP: "fd00:6::70", VIP6: "fd00:6::71"})
	wantErr("vip and vip6 on an IPv6-only network", err, "vip6", "names the VIP already")
}

// TestServices_meshRowOnIPv6Network: the routing mesh's row on a network
// whose one subnet is IPv6 is one every host decodes (its address with
// the subnet's length), as on IPv4 and dual-stack networks.
func TestServices_meshRowOnIPv6Network(t *testing.T) {
	a := startTestAgent(t, nil)
	for _, c := range []struct {
		n     tables.Network
		addrs []string
	}{
		{tables.Network{Name: "v4", Subnet: netip.MustParsePrefix("10.62.0.0/24")}, []string{"10.62.0.9"}},
		{tables.Network{Name: "v6", Subnet: netip.MustParsePrefix("fd00:62::/64")}, []string{"fd00:62::9"}},
		{tables.Network{Name: "dual", Subnet: netip.MustParsePrefix("10.63.0.0/24"), Subnet6: netip.MustParsePrefix("fd00:63::/120")}, []string{"10.63.0.9", "fd00:63::9"}},
	} {
		var addrs []netip.Addr
		for _, s := range c.addrs {
			addrs = append(addrs, netip.MustParseAddr(s))
		}
		row := a.meshRow(c.n, addrs)
		got, err := tables.DecodeEndpoint(row.Key(), a.cfg.Name, row.Encode())
		if err != nil {
			t.Fatalf("mesh row of %s: %v", c.n.Name, err)
		}
		want := []netip.Prefix{c.n.Subnet, c.n.Subnet6}
		for i, p := range got.Addrs {
			if p.Addr() != addrs[i] || p.Bits() != want[i].Bits() {
				t.Errorf("mesh row of %s: address %s, want %s with %s's length", c.n.Name, p, addrs[i], want[i])
			}
		}
	}
}
