package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/internal/testutil"
	"github.com/vxnet/vxnet/kvs"
	"github.com/vxnet/vxnet/tables"
)

func wantAPIError(t *testing.T, what string, err error, code, field, contains string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != code || ae.Field != field || !strings.Contains(ae.Message, contains) {
		t.Errorf("%s: error %v, want %s on field %s saying %q", what, err, code, field, contains)
	}
}

// TestCreateNetwork_refusesNamesLaterStagesRefuse: a network name DNS
// cannot take (an empty label, a trailing dot, a 64-character label) is
// refused at the door, with the field and the value, and never reaches
// the table.
func TestCreateNetwork_refusesNamesLaterStagesRefuse(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	for _, name := range []string{"a..", "trail.", strings.Repeat("n", 64), "a..b", "-x", "a b"} {
		_, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: name, Subnet: "10.0.3.0/24"})
		wantAPIError(t, name, err, api.CodeBadRequest, "name", `network name "`+name+`"`)
		if _, ok := a.network(name); ok {
			t.Errorf("network %q is in the table", name)
		}
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "dotted.name", Subnet: "10.0.3.0/24"}); err != nil {
		t.Errorf("a name of two labels: %v", err)
	}
	// Options that would not fit the network's row are refused before
	// the subnet is claimed.
	long := strings.Repeat("10.0.0.0/8,", 6000)
	_, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "big", Driver: "l2tunnel", Subnet: "10.0.5.0/24", Options: map[string]string{"policy-host": "127.0.0.1", "policy-allow": long}})
	wantAPIError(t, "long options", err, api.CodeBadRequest, "options", "at most 57344")
	if _, ok := a.ipam.Subnet("big"); ok {
		t.Error("a refused network holds its subnet")
	}
	// An l2tunnel network sends every packet to its policy host: one no
	// member has is refused, naming the members.
	_, err = a.CreateNetwork(ctx, api.NetworkCreate{Name: "tun", Driver: "l2tunnel", Subnet: "10.0.6.0/24", Options: map[string]string{"policy-host": "198.18.179.77"}})
	wantAPIError(t, "policy host no member has", err, api.CodeBadRequest, "options", "members: t1 127.0.0.1")
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "tun", Driver: "l2tunnel", Subnet: "10.0.6.0/24", Options: map[string]string{"policy-host": "127.0.0.1"}}); err != nil {
		t.Errorf("l2tunnel with this host as its policy host: %v", err)
	}
}

// TestCreateEndpoint_checksEveryName: aliases, services, the interface
// name and SRV ports are checked too, each error naming its field.
func TestCreateEndpoint_checksEveryName(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.4.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "v6", Subnet: "fd00:14::/64"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req             api.EndpointCreate
		field, contains string
	}{
		{api.EndpointCreate{Name: "a.b"}, "name", `endpoint name "a.b"`},
		{api.EndpointCreate{Name: "Tasks"}, "name", "tasks.SERVICE"},
		{api.EndpointCreate{Name: "e", Aliases: []string{"tasks"}}, "aliases", "tasks.SERVICE"},
		{api.EndpointCreate{Name: "e", Aliases: []string{"ok", "x.."}}, "aliases", `alias "x.."`},
		{api.EndpointCreate{Name: "e", Aliases: []string{"E"}}, "aliases", "own name"},
		{api.EndpointCreate{Name: "e", Aliases: []string{"x", "y", "X"}}, "aliases", "given twice"},
		{api.EndpointCreate{Name: "e", Service: "E"}, "service", "own name"},
		{api.EndpointCreate{Name: "e", Aliases: []string{"s"}, Service: "S"}, "service", `alias "s"`},
		{api.EndpointCreate{Name: "e", Ifname: "e%d"}, "ifname", `'%'`},
		{api.EndpointCreate{Name: "e", Service: "-s"}, "service", `service "-s"`},
		{api.EndpointCreate{Name: "e", Ifname: "a/b"}, "ifname", `interface name "a/b"`},
		{api.EndpointCreate{Name: "e", Ifname: ".."}, "ifname", `interface name ".."`},
		{api.EndpointCreate{Name: "e", SRVPorts: []string{"80/tcp"}}, "srvPorts", `"80/tcp"`},
		{api.EndpointCreate{Name: "e", SRVPorts: []string{"http=0"}}, "srvPorts", `port "0"`},
		{api.EndpointCreate{Name: "e", SRVPorts: []string{"http=80/sctp"}}, "srvPorts", `protocol "sctp"`},
		{api.EndpointCreate{Name: "e", SRVPorts: []string{"_http=80"}}, "srvPorts", `port name "_http"`},
		{api.EndpointCreate{Name: "e", SRVPorts: []string{"http=80", "HTTP=81/tcp"}}, "srvPorts", "twice"},
		{api.EndpointCreate{Name: "e", Publish: []string{"9090:80", "9090:81"}}, "publish", "published twice"},
		{api.EndpointCreate{Name: "e", Network: "v6", MTU: 1000}, "mtu", "want 1280"},
		{api.EndpointCreate{Name: "e", MAC: "02:42:0a:00:04:16"}, "mac", "address 10.0.4.22"},
		{api.EndpointCreate{Name: "e", MAC: "zz:zz"}, "mac", "six hex bytes"},
		{api.EndpointCreate{Name: "e", Labels: map[string]string{"": "x"}}, "labels", "not empty"},
		{api.EndpointCreate{Name: "e", Labels: map[string]string{"k": "a\x00b"}}, "labels", "control characters"},
		{api.EndpointCreate{Name: "vxmesh-t1"}, "name", "routing mesh"},
		{api.EndpointCreate{Name: "e", Network: "-"}, "network", "network is required"},
		{api.EndpointCreate{Name: "e", Labels: map[string]string{"note": strings.Repeat("x", 70000)}}, "labels", "labels 70011 of them"},
		{api.EndpointCreate{Name: "e", Labels: map[string]string{"note": strings.Repeat("<", 10000)}}, "labels", "at most 57344"},
		{api.EndpointCreate{Name: "e", Aliases: manyAliases(1000)}, "aliases", "at most"},
		{api.EndpointCreate{Name: "VXMesh-x"}, "name", "routing mesh"},
	} {
		switch tc.req.Network {
		case "":
			tc.req.Network = "ov"
		case "-":
			tc.req.Network = ""
		}
		_, err := a.CreateEndpoint(ctx, tc.req)
		wantAPIError(t, tc.contains, err, api.CodeBadRequest, tc.field, tc.contains)
	}
	if eps := a.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints were made: %+v", eps)
	}
}

// TestNames_uniqueInAnyCase: DNS answers Web and web alike, so a network
// or an endpoint (on one network) named like another but for case is a
// conflict naming the one that exists; names are kept as given.
func TestNames_uniqueInAnyCase(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	n, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "Web", Subnet: "10.0.5.0/24"})
	if err != nil || n.Name != "Web" {
		t.Fatalf("network %+v, %v", n, err)
	}
	_, err = a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.6.0/24"})
	wantAPIError(t, "network web", err, api.CodeConflict, "name", `network "Web" exists`)
	_, err = a.CreateNetwork(ctx, api.NetworkCreate{Name: "Web", Subnet: "10.0.6.0/24"})
	wantAPIError(t, "network Web again", err, api.CodeConflict, "name", `network "Web" exists`)
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "other", Subnet: "10.0.7.0/24"}); err != nil {
		t.Fatal(err)
	}

	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "Web", Name: "Api"})
	if err != nil || ep.Name != "Api" {
		t.Fatalf("endpoint %+v, %v", ep, err)
	}
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "Web", Name: "API"})
	wantAPIError(t, "endpoint API", err, api.CodeConflict, "name", `endpoint "Api" exists on network "Web", and names that differ only in case are one name in DNS (host `+a.cfg.Name+`'s): give this one another name`)
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "other", Name: "api"}); err != nil {
		t.Errorf("the same name on another network: %v", err)
	}
	// Once the first is gone, the name is free in any case.
	if err := a.RemoveEndpoint("Web", "Api"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the endpoint to leave the table", 5*time.Second, func() bool {
		_, ok := a.kv.Get(tables.Endpoints, "Web/Api")
		return !ok
	})
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "Web", Name: "api"}); err != nil {
		t.Errorf("after removal: %v", err)
	}
}

// TestNames_oneContainerPerName: an alias asked for is never another
// endpoint's name (a name answers for one container), while endpoints may
// share an alias, and a container may be named like another's alias, as
// on Docker; aliases learned later (SetAliases) leave out such a name and
// keep the rest; a service joined in another case than the one it has is
// refused, naming it.
func TestNames_oneContainerPerName(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []api.EndpointCreate{
		{Name: "api"},
		{Name: "b1", Aliases: []string{"backend"}, Service: "svc"},
		{Name: "b2", Aliases: []string{"Backend"}, Service: "svc"},
	} {
		req.Network = "web"
		if _, err := a.CreateEndpoint(ctx, req); err != nil {
			t.Fatalf("%s: %v", req.Name, err)
		}
	}
	_, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "q1", Aliases: []string{"Api"}})
	wantAPIError(t, "alias Api", err, api.CodeConflict, "aliases", `endpoint "api"`)
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "backend"}); err != nil {
		t.Errorf("an endpoint named like others' alias: %v", err)
	}
	if err := a.SetAliases("web", "b1", []string{"api", "front"}); err != nil {
		t.Fatalf("SetAliases: %v", err)
	}
	for _, e := range a.Endpoints() {
		if e.Name == "b1" && strings.Join(e.Aliases, ",") != "front" {
			t.Errorf("b1's aliases after SetAliases(api, front): %q, want front alone", e.Aliases)
		}
	}
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "q2", Service: "Svc"})
	wantAPIError(t, "service Svc", err, api.CodeConflict, "service", `join it as "svc"`)
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "q3", Service: "svc"}); err != nil {
		t.Errorf("joining svc as it is named: %v", err)
	}
	// An address taken names its holder.
	held := strings.Split(a.Endpoints()[0].Addresses[0], "/")[0]
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "q4", IP: held})
	wantAPIError(t, "ip "+held, err, api.CodeConflict, "ip", "(by endpoint ")
	// Removing from a network that does not exist says so.
	wantAPIError(t, "endpoint rm on no network", a.RemoveEndpoint("nonet", "x"), api.CodeNotFound, "network", `no network "nonet"`)
}

// TestCreateEndpoint_srvPorts: an endpoint's SRV ports are kept in
// canonical form and DNS answers them under its service.
func TestCreateEndpoint_srvPorts(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.8.0/24"}); err != nil {
		t.Fatal(err)
	}
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "web1", Service: "front", SRVPorts: []string{"http=8080", "dns=53/udp"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ep.SRVPorts, ",") != "http=8080/tcp,dns=53/udp" {
		t.Errorf("srv ports %q, want canonical forms", ep.SRVPorts)
	}
	srv := func(name string) string {
		m := resolve(a, "ov", name, mdns.TypeSRV)
		if m == nil || len(m.Answer) != 1 {
			return ""
		}
		s, ok := m.Answer[0].(*mdns.SRV)
		if !ok {
			return ""
		}
		return s.Target + " " + strconv.Itoa(int(s.Port))
	}
	testutil.WaitFor(t, "the SRV record of http", 5*time.Second, func() bool { return srv("_http._tcp.front.") == "web1.ov. 8080" })
	if got := srv("_dns._udp.front.ov."); got != "web1.ov. 53" {
		t.Errorf("_dns._udp.front.ov.: %q, want web1.ov. 53", got)
	}
}

// FuzzNames_acceptedEverywhere: names the API takes are taken by every
// later stage: DNS indexes them (nothing left out) and HNS builds them.
func FuzzNames_acceptedEverywhere(f *testing.F) {
	f.Add("web", "api", "db", "front", "http")
	f.Add("a.b_c-d", "X-1", "y", "Z", "ldap-s")
	f.Add(strings.Repeat("n", 62)+".x", strings.Repeat("e", 63), "a", "s", "p")
	f.Fuzz(func(t *testing.T, network, endpoint, alias, service, port string) {
		if names.Network(network) != nil || names.Endpoint(endpoint) != nil || names.Alias(alias) != nil ||
			names.Service(service) != nil || names.PortName(port) != nil {
			return
		}
		addr := netip.MustParseAddr("10.0.9.2")
		_, err := dns.NewTable([]dns.Network{{Name: network, Scope: dns.ScopeGlobal}}, []dns.Endpoint{{Name: endpoint,
			Aliases: []string{alias}, Service: service, Network: network, Addrs: []netip.Addr{addr},
			Ports: []dns.Port{{Name: port, Proto: "tcp", Port: 80}}}}, 0)
		if err != nil {
			t.Fatalf("DNS leaves out what the API takes: %v", err)
		}
		ns := hns.NetworkSpec{Name: network, Type: hns.Overlay, Subnet: netip.MustParsePrefix("10.0.9.0/24"),
			Gateway: netip.MustParseAddr("10.0.9.1"), VNI: 4242, VTEP: netip.MustParseAddr("198.18.0.1")}
		if _, err := hns.BuildNetwork(ns); err != nil {
			t.Fatalf("HNS refuses network %q: %v", network, err)
		}
		if _, err := hns.BuildEndpoint(ns, "id", hns.EndpointSpec{Name: endpoint, Addr: netip.PrefixFrom(addr, 24), MAC: "02-42-0a-00-09-02"}); err != nil {
			t.Fatalf("HNS refuses endpoint %q: %v", endpoint, err)
		}
	})
}

// TestLeave: refused while the host has an endpoint, naming it; forced,
// the endpoint is removed (so a later start does not bring it back), no
// endpoint is made any more, and Run returns.
func TestLeave(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.19.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e1"}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Leave(api.ClusterLeave{})
	wantAPIError(t, "leave with an endpoint", err, api.CodeConflict, "force", "web/e1")
	res, err := a.Leave(api.ClusterLeave{Force: true})
	if err != nil || strings.Join(res.Endpoints, ",") != "web/e1" {
		t.Fatalf("forced leave: %+v %v", res, err)
	}
	if eps := a.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after the leave: %+v", eps)
	}
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e2"})
	wantAPIError(t, "create after the leave", err, api.CodeConflict, "network", "leaving")
	testutil.WaitFor(t, "Run to take the leave and stop", 10*time.Second, func() bool { return len(a.leaving) == 0 })
}

// TestRemoveEndpoint_downTakesItsResolvConf: removing an endpoint that is
// down (restored down: its network went while its host was away) removes
// the resolv.conf an earlier run wrote for its namespace.
func TestRemoveEndpoint_downTakesItsResolvConf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: writes under /etc/netns")
	}
	a := startTestAgent(t, nil)
	ns := "vxtest-down-" + strconv.Itoa(os.Getpid())
	path := dns.NetnsResolvConfPath(ns)
	t.Cleanup(func() { os.Remove(path); os.Remove(filepath.Dir(path)) })
	if err := dns.WriteResolvConf(path, nil); err != nil {
		t.Fatal(err)
	}
	ep := tables.Endpoint{Name: "gone", Network: "net2", Host: a.cfg.Name, Netns: ns, State: tables.StateDown, Reason: "no network"}
	a.mu.Lock()
	a.down[ep.Key()] = ep
	a.mu.Unlock()
	if err := a.RemoveEndpoint("net2", "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s after endpoint rm: %v, want it gone", path, err)
	}
	if eps := a.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints after the rm: %+v", eps)
	}
}

// TestEndpoints_downNameFreeAgain: an endpoint down because another host
// took its name says so while that host holds it, and that the name is
// free again once no other host does.
func TestEndpoints_downNameFreeAgain(t *testing.T) {
	a := startTestAgent(t, nil)
	select { // its start re-reads the tables whole (syncView) before it is ready
	case <-a.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not get ready")
	}
	ep := tables.Endpoint{Name: "db", Network: "web", Host: a.cfg.Name, State: tables.StateDown,
		Reason: nameTakenPrefix + "host h3 holds an endpoint of this name on this network, claimed first"}
	a.mu.Lock()
	a.down[ep.Key()] = ep
	a.owners[ep.Key()] = "h3"
	a.mu.Unlock()
	reason := func() string {
		for _, e := range a.Endpoints() {
			if e.Name == "db" {
				return e.Reason
			}
		}
		return "(not listed)"
	}
	if r := reason(); strings.Contains(r, "free again") {
		t.Errorf("while h3 holds the name: %q", r)
	}
	a.mu.Lock()
	delete(a.owners, ep.Key())
	a.mu.Unlock()
	if r := reason(); !strings.HasSuffix(r, "the name is free again: endpoint rm, then create it anew") {
		t.Errorf("once h3 let it go: %q", r)
	}
}

// TestRemoveEndpoint_namesTheCaseVariant: endpoint rm of a name that is an
// endpoint's in another letter case says which one there is.
func TestRemoveEndpoint_namesTheCaseVariant(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.21.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "DB"}); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "rm Db", a.RemoveEndpoint("web", "Db"), api.CodeNotFound, "name", `there is "DB"`)
	wantAPIError(t, "rm cache", a.RemoveEndpoint("web", "cache"), api.CodeNotFound, "name", `no endpoint "cache" on network "web"`)
	if err := a.RemoveEndpoint("web", "DB"); err != nil {
		t.Fatal(err)
	}
}

// TestNamespaceLives: a saved endpoint row keeps its claim only while its
// namespace is there (or it has none).
func TestNamespaceLives(t *testing.T) {
	row := func(netns string) kvs.Row {
		ep := tables.Endpoint{Name: "e", Network: "web", Host: "h1", Netns: netns, MAC: vxlan.MAC{2, 0, 0, 0, 0, 1}}
		return kvs.Row{Table: tables.Endpoints, Key: ep.Key(), Value: ep.Encode(), Claim: 7}
	}
	for netns, want := range map[string]bool{"": true, "/proc/self/ns/net": true, "vxtest-no-such-namespace": false, "/nonexistent/ns": false} {
		if got := namespaceLives(row(netns), "h1"); got != want {
			t.Errorf("netns %q: lives %v, want %v", netns, got, want)
		}
	}
	if !namespaceLives(kvs.Row{Table: tables.Endpoints, Key: "web/x", Value: []byte("{")}, "h1") {
		t.Error("a row that does not decode: want it kept as it is")
	}
}

// manyAliases is n distinct aliases of 60 characters.
func manyAliases(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("a%059d", i)
	}
	return out
}

// TestUnderlayApart: a subnet holding a member's underlay address, or an
// address of this host's interfaces, is refused, naming the field, the member and the address (a default pool's
// pick says to give --subnet); networks on a host's own segment may share
// its subnet.
func TestUnderlayApart(t *testing.T) {
	members := []api.Member{{Name: "h1", VTEP: "198.18.70.1"}, {Name: "h2", VTEP: "fd18:70::2"}, {Name: "odd", VTEP: "?"}}
	overlay, _ := driver.Get("overlay")
	transparent, _ := driver.Get("transparent")
	l2tunnel, _ := driver.Get("l2tunnel")
	net4 := tables.Network{Name: "n", Subnet: netip.MustParsePrefix("198.18.70.0/24")}
	for _, c := range []struct {
		d     driver.Driver
		req   api.NetworkCreate
		n     tables.Network
		field string
		says  string
	}{
		{overlay, api.NetworkCreate{Subnet: "198.18.70.0/24"}, net4, "subnet", `subnet "198.18.70.0/24" holds member h1's underlay address 198.18.70.1`},
		{overlay, api.NetworkCreate{}, net4, "subnet", "default address pools gave network \"n\" subnet 198.18.70.0/24"},
		{overlay, api.NetworkCreate{Subnet: "10.0.9.0/24", Subnet6: "fd18:70::/64"},
			tables.Network{Name: "n", Subnet: netip.MustParsePrefix("10.0.9.0/24"), Subnet6: netip.MustParsePrefix("fd18:70::/64")}, "subnet6", "member h2's"},
		{overlay, api.NetworkCreate{Subnet: "10.0.9.0/24"}, tables.Network{Name: "n", Subnet: netip.MustParsePrefix("10.0.9.0/24")}, "", ""},
		{transparent, api.NetworkCreate{Subnet: "198.18.70.0/24"}, net4, "", ""},
		{l2tunnel, api.NetworkCreate{Subnet: "198.18.70.0/24", Options: map[string]string{"uplink": "eth0"}}, net4, "subnet", "member h1's"}, // Linux takes no uplink for l2tunnel
		{l2tunnel, api.NetworkCreate{Subnet: "198.18.70.0/24"}, net4, "subnet", "member h1's"},
	} {
		err := underlayApart(c.d, c.req, c.n, members, false, nil)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s %+v: %v", c.d.Name(), c.req, err)
			}
			continue
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Field != c.field || !strings.Contains(ae.Message, c.says) {
			t.Errorf("%s %+v: %v, want field %s saying %q", c.d.Name(), c.req, err, c.field, c.says)
		}
	}
	// This host's own addresses (its IPv6 LAN, say), which no member
	// advertises: refused too, but on the host's segment.
	local := []hostAddr{{"eth1", netip.MustParseAddr("fd18:137::1")}}
	dual := tables.Network{Name: "n", Subnet: netip.MustParsePrefix("10.0.9.0/24"), Subnet6: netip.MustParsePrefix("fd18:137::/64")}
	var ae *api.Error
	if err := underlayApart(overlay, api.NetworkCreate{Subnet: "10.0.9.0/24", Subnet6: "fd18:137::/64"}, dual, members, false, local); !errors.As(err, &ae) || ae.Field != "subnet6" ||
		!strings.Contains(ae.Message, `subnet6 "fd18:137::/64" holds fd18:137::1, an address of this host's interface eth1`) {
		t.Errorf("a subnet holding this host's address: %v", err)
	}
	if err := underlayApart(transparent, api.NetworkCreate{Subnet: "fd18:137::/64"}, tables.Network{Name: "n", Subnet: netip.MustParsePrefix("fd18:137::/64")}, members, false, local); err != nil {
		t.Errorf("transparent on this host's segment: %v", err)
	}
	// With HNS, an l2tunnel network with an uplink is on the host's segment.
	if err := underlayApart(l2tunnel, api.NetworkCreate{Subnet: "198.18.70.0/24", Options: map[string]string{"uplink": "eth0"}}, net4, members, true, nil); err != nil {
		t.Errorf("HNS l2tunnel with an uplink: %v", err)
	}
}

// TestKeepMembersOut: on a network on the hosts' own segment, members'
// underlay addresses in its subnet are kept out of use (aux addresses),
// and a default gateway that is one is refused; the user's own gateway or
// aux address, DHCP networks and other drivers are left as they are.
func TestKeepMembersOut(t *testing.T) {
	members := []api.Member{{Name: "h1", VTEP: "198.18.70.1"}, {Name: "h2", VTEP: "198.18.70.2"}, {Name: "far", VTEP: "198.18.9.9"}}
	transparent, _ := driver.Get("transparent")
	overlay, _ := driver.Get("overlay")
	req := api.NetworkCreate{Subnet: "198.18.70.0/24", Gateway: "198.18.70.254", AuxAddresses: map[string]string{"mine": "198.18.70.2"}}
	if err := keepMembersOut(transparent, &req, members); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"mine": "198.18.70.2", "host-h1": "198.18.70.1"}; !maps.Equal(req.AuxAddresses, want) {
		t.Errorf("aux addresses %v, want %v", req.AuxAddresses, want)
	}
	req = api.NetworkCreate{Subnet: "198.18.70.0/24"}
	err := keepMembersOut(transparent, &req, members)
	wantAPIError(t, "default gateway", err, api.CodeBadRequest, "gateway", "member h1's underlay address: give the segment's router with --gateway")
	req = api.NetworkCreate{Subnet: "198.18.70.0/24", Gateway: "198.18.70.1"}
	if err := keepMembersOut(transparent, &req, members); err != nil || req.AuxAddresses["host-h2"] != "198.18.70.2" || req.AuxAddresses["host-h1"] != "" {
		t.Errorf("a gateway the user gave that is h1's: %v %v", req.AuxAddresses, err)
	}
	for _, c := range []struct {
		d   driver.Driver
		req api.NetworkCreate
	}{
		{transparent, api.NetworkCreate{Subnet: "198.18.70.0/24", Options: map[string]string{"dhcp": "true"}}},
		{overlay, api.NetworkCreate{Subnet: "198.18.70.0/24"}},
	} {
		if err := keepMembersOut(c.d, &c.req, members); err != nil || c.req.AuxAddresses != nil {
			t.Errorf("%s %v: %v %v, want it left as it is", c.d.Name(), c.req.Options, c.req.AuxAddresses, err)
		}
	}
}
