package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/names"
	"github.com/vxnet/vxnet/internal/testutil"
)

// IDs as Docker makes them: 64 hex digits.
const (
	netID      = "5d3f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829304a5b6c7"
	netIDb     = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
	epID       = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	ctrID      = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123"
	sandboxKey = "/var/run/docker/netns/abc"
	ctrName    = "my_app.1"
	waitLong   = 10 * time.Second
)

// The bodies dockerd 20.10 sends, in the order it sends them for
// docker network create -d vxnet --ipam-driver vxnet --subnet 10.0.9.0/24
// -o vxnet.driver=overlay web, then docker run --network web.
const (
	bodyRequestPool    = `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"","Options":{},"V6":false}`
	bodyRequestGateway = `{"PoolID":"10.0.9.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}`
	bodyCreateNetwork  = `{"NetworkID":"` + netID + `","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"vxnet.driver":"overlay"},"com.docker.network.internal":false},"IPv4Data":[{"AddressSpace":"vxnet","Gateway":"10.0.9.1/24","Pool":"10.0.9.0/24"}],"IPv6Data":[]}`
	bodyRequestAddress = `{"PoolID":"10.0.9.0/24","Address":"","Options":null}`
	bodyCreateEndpoint = `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `","Interface":{"Address":"10.0.9.2/24","AddressIPv6":"","MacAddress":""},"Options":{}}`
	bodyJoin           = `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `","SandboxKey":"` + sandboxKey + `","Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}`
	bodyEndpoint       = `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `"}`
	bodyReleaseAddress = `{"PoolID":"10.0.9.0/24","Address":"10.0.9.2"}`
	bodyNetwork        = `{"NetworkID":"` + netID + `"}`
	bodyReleaseGateway = `{"PoolID":"10.0.9.0/24","Address":"10.0.9.1"}`
	bodyReleasePool    = `{"PoolID":"10.0.9.0/24"}`
)

var webOptions = map[string]string{OptDriver: "overlay"}

// TestFlow_dockerRun goes through what Docker asks of the plugin for a
// network and a container on it, and checks what the agent was asked.
func TestFlow_dockerRun(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)

	var act activateResponse
	e.ok("/Plugin.Activate", "", &act)
	if !reflect.DeepEqual(act.Implements, []string{"NetworkDriver", "IpamDriver"}) {
		t.Errorf("Activate: Implements %v", act.Implements)
	}
	// Activate looks for endpoints Docker no longer has: wait for it to
	// have looked (none yet), so that it is not under way later.
	testutil.WaitFor(t, "collect to list the endpoints", waitLong, func() bool { return e.b.lists.Load() >= 1 })

	var caps capabilitiesResponse
	e.ok("/NetworkDriver.GetCapabilities", "", &caps)
	if caps != (capabilitiesResponse{Scope: "local", ConnectivityScope: "global"}) {
		t.Errorf("NetworkDriver.GetCapabilities: %+v", caps)
	}
	var icaps ipamCapabilitiesResponse
	e.ok("/IpamDriver.GetCapabilities", "", &icaps)
	if icaps.RequiresMACAddress || icaps.RequiresRequestReplay {
		t.Errorf("IpamDriver.GetCapabilities: %+v", icaps)
	}
	var spaces addressSpacesResponse
	e.ok("/IpamDriver.GetDefaultAddressSpaces", "", &spaces)
	if spaces.LocalDefaultAddressSpace != "vxnet" || spaces.GlobalDefaultAddressSpace != "vxnet-swarm" {
		t.Errorf("GetDefaultAddressSpaces: %+v", spaces)
	}

	// docker network create
	var pool requestPoolResponse
	e.ok("/IpamDriver.RequestPool", bodyRequestPool, &pool)
	if pool.PoolID != "10.0.9.0/24" || pool.Pool != "10.0.9.0/24" {
		t.Errorf("RequestPool: %+v", pool)
	}
	var gw requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", bodyRequestGateway, &gw)
	if gw.Address != "10.0.9.1/24" {
		t.Errorf("RequestAddress of the gateway: %q, want 10.0.9.1/24", gw.Address)
	}
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("the gateway was reserved: %v", r)
	}
	e.ok("/NetworkDriver.CreateNetwork", bodyCreateNetwork, nil)
	// Docker has not stored the network: its name is unknown, no vxnet
	// network yet.
	if n := e.b.Networks(); len(n) != 0 {
		t.Fatalf("a vxnet network before Docker stored its network: %v", n)
	}
	e.eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
	testutil.WaitFor(t, "the vxnet network web", waitLong, func() bool { _, ok := e.c.network("web"); return ok })
	n, _ := e.c.network("web")
	if n.Subnet != "10.0.9.0/24" || n.Gateway != "10.0.9.1" || n.Driver != "overlay" || n.Internal || n.Options != nil || n.Creator != "host-a" {
		t.Errorf("vxnet network: %+v", n)
	}

	// docker run --network web --name my_app.1 --network-alias db
	var addr requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", bodyRequestAddress, &addr)
	if addr.Address != "10.0.9.2/24" {
		t.Errorf("RequestAddress: %q, want 10.0.9.2/24", addr.Address)
	}
	if r := e.c.reservations(); !reflect.DeepEqual(r, []string{"web 10.0.9.2"}) {
		t.Errorf("reservations after RequestAddress: %v", r)
	}
	e.ok("/NetworkDriver.CreateEndpoint", bodyCreateEndpoint, nil)
	if k := e.c.numEndpoints(); k != 0 {
		t.Errorf("%d endpoints after CreateEndpoint, want none before Join", k)
	}
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/24")
	e.eng.runContainer(t, ctrID, ctrName, "web", []string{"db", ctrID[:12], ctrName, "DB"})
	var join joinResponse
	e.ok("/NetworkDriver.Join", bodyJoin, &join)
	want := joinResponse{InterfaceName: interfaceName{SrcName: "vxd" + epID[:12], DstPrefix: "eth"}, Gateway: "10.0.9.1", DisableGatewayService: true}
	if join != want {
		t.Errorf("Join: %+v, want %+v", join, want)
	}
	reqs := e.c.endpointRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d EndpointCreate, want 1", len(reqs))
	}
	wantReq := api.EndpointCreate{Network: "web", Name: "my-app-1", Netns: sandboxKey, Ifname: "vxd" + epID[:12], IP: "10.0.9.2",
		Handover: true, Reserved: true,
		Labels: map[string]string{LabelEndpoint: epID, LabelNetwork: netID, LabelContainer: ctrName}}
	if !reflect.DeepEqual(reqs[0], wantReq) {
		t.Errorf("EndpointCreate:\n got %+v\nwant %+v", reqs[0], wantReq)
	}
	ep, ok := e.c.endpoint("web", "my-app-1")
	if !ok || ep.Host != "host-a" || !reflect.DeepEqual(ep.Addresses, []string{"10.0.9.2/24"}) {
		t.Errorf("endpoint: %+v %v", ep, ok)
	}
	// The aliases Docker's own DNS answers, once the container runs: not
	// its name, nor what is no DNS label, nor one twice.
	testutil.WaitFor(t, "the container's aliases", waitLong, func() bool { return len(e.c.aliasesOf("web", "my-app-1")) > 0 })
	if got := e.c.aliasesOf("web", "my-app-1"); !reflect.DeepEqual(got, []string{"db", ctrID[:12]}) {
		t.Errorf("aliases %v, want [db %s]", got, ctrID[:12])
	}

	var info operInfoResponse
	e.ok("/NetworkDriver.EndpointOperInfo", bodyEndpoint, &info)
	if want := map[string]string{"vxnet.endpoint": "my-app-1", "vxnet.network": "web", "vxnet.host": "host-a"}; !reflect.DeepEqual(info.Value, want) {
		t.Errorf("EndpointOperInfo: %v, want %v", info.Value, want)
	}

	// docker rm -f
	e.ok("/NetworkDriver.Leave", bodyEndpoint, nil)
	if _, ok := e.c.endpoint("web", "my-app-1"); !ok {
		t.Errorf("endpoint gone at Leave; Docker removes it with DeleteEndpoint")
	}
	e.eng.leave(netID, epID)
	e.ok("/NetworkDriver.DeleteEndpoint", bodyEndpoint, nil)
	if _, ok := e.c.endpoint("web", "my-app-1"); ok {
		t.Errorf("endpoint still there after DeleteEndpoint")
	}
	if r := e.c.reservations(); !reflect.DeepEqual(r, []string{"web 10.0.9.2"}) {
		t.Errorf("reservations after DeleteEndpoint: %v, want it kept until ReleaseAddress", r)
	}
	e.ok("/IpamDriver.ReleaseAddress", bodyReleaseAddress, nil)
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("reservations after ReleaseAddress: %v", r)
	}
	e.ok("/NetworkDriver.DeleteEndpoint", bodyEndpoint, nil) // again: Docker may

	// docker network rm: the vxnet network stays, the cluster's.
	e.ok("/NetworkDriver.DeleteNetwork", bodyNetwork, nil)
	e.ok("/IpamDriver.ReleaseAddress", bodyReleaseGateway, nil)
	e.ok("/IpamDriver.ReleasePool", bodyReleasePool, nil)

	e.close()
	if k := e.c.numEndpoints(); k != 0 {
		t.Errorf("%d endpoints left", k)
	}
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("reservations left: %v", r)
	}
	if creates, _ := e.c.counts(); creates != 1 || len(e.b.Networks()) != 1 {
		t.Errorf("%d networks created, %d there; want the one, kept", creates, len(e.b.Networks()))
	}
}

// routes are the plugin's calls (Handler), and whether each reads its
// body; Docker sends the others an empty one.
var routes = []struct {
	path      string
	readsBody bool
}{
	{"/Plugin.Activate", false},
	{"/NetworkDriver.GetCapabilities", false},
	{"/NetworkDriver.CreateNetwork", true},
	{"/NetworkDriver.DeleteNetwork", true},
	{"/NetworkDriver.CreateEndpoint", true},
	{"/NetworkDriver.DeleteEndpoint", true},
	{"/NetworkDriver.EndpointOperInfo", true},
	{"/NetworkDriver.Join", true},
	{"/NetworkDriver.Leave", false},
	{"/NetworkDriver.DiscoverNew", false},
	{"/NetworkDriver.DiscoverDelete", false},
	{"/NetworkDriver.ProgramExternalConnectivity", true},
	{"/NetworkDriver.RevokeExternalConnectivity", true},
	{"/NetworkDriver.AllocateNetwork", true},
	{"/NetworkDriver.FreeNetwork", true},
	{"/IpamDriver.GetCapabilities", false},
	{"/IpamDriver.GetDefaultAddressSpaces", false},
	{"/IpamDriver.RequestPool", true},
	{"/IpamDriver.ReleasePool", true},
	{"/IpamDriver.RequestAddress", true},
	{"/IpamDriver.ReleaseAddress", true},
}

// TestRoutes_listed keeps the tests' list of routes that of plugin.go.
func TestRoutes_listed(t *testing.T) {
	src, err := os.ReadFile("plugin.go")
	if err != nil {
		t.Fatal(err)
	}
	var inSource []string
	for _, m := range regexp.MustCompile(`(?m)^\s*"(/[A-Za-z]+\.[A-Za-z]+)":`).FindAllStringSubmatch(string(src), -1) {
		inSource = append(inSource, m[1])
	}
	var listed []string
	for _, r := range routes {
		listed = append(listed, r.path)
	}
	sort.Strings(inSource)
	sort.Strings(listed)
	if !reflect.DeepEqual(inSource, listed) {
		t.Errorf("routes of plugin.go:\n%v\nlisted in the tests:\n%v", inSource, listed)
	}
	e := newEnv(t, nil, "host-a", nil)
	for _, r := range routes {
		if status, ans := e.post(r.path, ""); status != http.StatusOK {
			t.Errorf("POST %s: %d %v", r.path, status, ans)
		}
	}
}

// withWeb makes network web in the cluster and in Docker (stored, as
// after docker network create).
func withWeb(e *env) {
	e.c.addNetwork(e.t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"})
	e.eng.storeNetwork(e.t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
}

// withContainer adds to withWeb the container joining, with its address
// reserved.
func withContainer(e *env) {
	withWeb(e)
	if _, err := e.b.ReserveAddress(context.Background(), "web", netip.MustParseAddr("10.0.9.2")); err != nil {
		e.t.Fatal(err)
	}
	e.eng.join(e.t, netID, epID, ctrName, "10.0.9.2/24")
}

// withExisting makes network web of subnet 10.0.9.0/24 in the cluster,
// as req asks, not in Docker.
func withExisting(req api.NetworkCreate) func(*env) {
	return func(e *env) {
		req.Name, req.Subnet = "web", "10.0.9.0/24"
		e.c.addNetwork(e.t, req)
	}
}

func createNetworkBody(generic string, extraOpts string, ipv4, ipv6 string) string {
	opts := `"com.docker.network.enable_ipv6":false,"com.docker.network.generic":` + generic + `,"com.docker.network.internal":false`
	if extraOpts != "" {
		opts = extraOpts
	}
	return `{"NetworkID":"` + netID + `","Options":{` + opts + `},"IPv4Data":` + ipv4 + `,"IPv6Data":` + ipv6 + `}`
}

const ipv4Data = `[{"AddressSpace":"vxnet","Gateway":"10.0.9.1/24","Pool":"10.0.9.0/24"}]`

func joinBody(portmap string) string {
	return `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `","SandboxKey":"` + sandboxKey + `","Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":` + portmap + `}}`
}

func externalBody(portmap string) string {
	return `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `","Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":` + portmap + `}}`
}

func endpointBody(iface string) string {
	return `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `",` + iface + `"Options":{}}`
}

// TestHandler_badInput: what Docker may send that vxnet refuses. Each
// refusal is an Err naming the flag, option or field at fault, and leaves
// the cluster as it was.
func TestHandler_badInput(t *testing.T) {
	type row struct {
		name   string
		path   string
		body   string
		setup  func(*env)
		status int      // 200 by default
		want   []string // in Err; none: no Err
	}
	var rows []row
	for _, r := range routes {
		malformed, empty := row{name: "malformed" + r.path, path: r.path, body: `{"NetworkID":`, setup: withContainer},
			row{name: "empty" + r.path, path: r.path, body: " \n", setup: withContainer}
		if r.readsBody {
			malformed.want = []string{"malformed request", "JSON"}
			empty.want = []string{"malformed request: empty body"}
		}
		rows = append(rows, malformed, empty)
	}
	rows = append(rows, []row{
		{name: "RequestPool/no pool", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"","SubPool":"","Options":{},"V6":false}`, want: []string{"--subnet is required"}},
		{name: "RequestPool/host address", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"10.0.9.1/24","SubPool":"","Options":{},"V6":false}`, want: []string{"--subnet", `"10.0.9.1/24"`, "did you mean 10.0.9.0/24?"}},
		{name: "RequestPool/not a prefix", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"web","SubPool":"","Options":{},"V6":false}`, want: []string{"--subnet", `"web"`}},
		{name: "RequestPool/IPv6 pool", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"fd00::/64","SubPool":"","Options":{},"V6":false}`, want: []string{"--subnet", "IPv4"}},
		{name: "RequestPool/ipam-opt", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"","Options":{"foo":"bar"},"V6":false}`, want: []string{"--ipam-opt foo=bar"}},
		{name: "RequestPool/ip-range outside", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"10.0.10.0/25","Options":{},"V6":false}`, want: []string{"--ip-range", "10.0.10.0/25", "10.0.9.0/24"}},
		{name: "RequestPool/ip-range wider", path: "/IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"10.0.9.0/23","Options":{},"V6":false}`, want: []string{"--ip-range", "10.0.9.0/23"}},

		{name: "RequestAddress/outside the pool", path: "/IpamDriver.RequestAddress", setup: withWeb,
			body: `{"PoolID":"10.0.9.0/24","Address":"10.0.10.5","Options":null}`, want: []string{`"10.0.10.5"`, "10.0.9.0/24"}},
		{name: "RequestAddress/bad PoolID", path: "/IpamDriver.RequestAddress", setup: withWeb,
			body: `{"PoolID":"default","Address":"","Options":null}`, want: []string{`pool "default"`}},
		{name: "RequestAddress/no Docker network, no address", path: "/IpamDriver.RequestAddress",
			setup: withExisting(api.NetworkCreate{}),
			body:  bodyRequestAddress, want: []string{"no Docker network", "10.0.9.0/24"}},
		{name: "RequestAddress/in use", path: "/IpamDriver.RequestAddress", setup: withContainer,
			body: `{"PoolID":"10.0.9.0/24","Address":"10.0.9.2","Options":null}`, want: []string{"--ip:", "10.0.9.2", "in use"}},
		{name: "RequestAddress/pool exhausted", path: "/IpamDriver.RequestAddress",
			setup: func(e *env) {
				withWeb(e)
				e.c.setReserveFn(func(string) error {
					return &api.Error{Code: api.CodeConflict, Field: "network", Message: "no free address"}
				})
			},
			body: bodyRequestAddress, want: []string{"vxnet: no free address"}},

		{name: "CreateNetwork/unknown option", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{"foo":""}`, "", ipv4Data, "[]"), want: []string{"-o foo:", "vxnet.driver"}},
		{name: "CreateNetwork/mtu over the agent's", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{"com.docker.network.driver.mtu":"9000"}`, "", ipv4Data, "[]"), want: []string{"-o com.docker.network.driver.mtu=9000", "576 to 1450"}},
		{name: "CreateNetwork/mtu not a number", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{"com.docker.network.driver.mtu":"abc"}`, "", ipv4Data, "[]"), want: []string{"-o com.docker.network.driver.mtu=abc"}},
		{name: "CreateNetwork/mtu too small", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{"com.docker.network.driver.mtu":"500"}`, "", ipv4Data, "[]"), want: []string{"-o com.docker.network.driver.mtu=500"}},
		{name: "CreateNetwork/unknown vxnet driver", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{"vxnet.driver":"bogus"}`, "", ipv4Data, "[]"), want: []string{"driver", `"bogus"`}},
		{name: "CreateNetwork/enable_ipv6", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody("", `"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{},"com.docker.network.internal":false`, ipv4Data, "[]"), want: []string{"--ipv6"}},
		{name: "CreateNetwork/IPv6Data", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", ipv4Data, `[{"AddressSpace":"vxnet","Gateway":"fd00:0:0:7e57::1/64","Pool":"`+unusedV6Pool+`"}]`), want: []string{"--ipv6 needs an IPv6 --subnet"}},
		{name: "CreateNetwork/IPv6Data IPv4", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", ipv4Data, `[{"AddressSpace":"vxnet","Gateway":"10.0.10.1/24","Pool":"10.0.10.0/24"}]`), want: []string{"IPv6", `"10.0.10.0/24"`}},
		{name: "CreateNetwork/IPv6 subnet without --ipv6", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", ipv4Data, `[{"AddressSpace":"vxnet","Gateway":"fd00:9::1/64","Pool":"fd00:9::/64"}]`), want: []string{"--subnet fd00:9::/64 is IPv6", "needs --ipv6"}},
		{name: "CreateNetwork/two subnets", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", `[{"AddressSpace":"vxnet","Gateway":"10.0.9.1/24","Pool":"10.0.9.0/24"},{"AddressSpace":"vxnet","Gateway":"10.0.10.1/24","Pool":"10.0.10.0/24"}]`, "[]"),
			want: []string{"one subnet", "has 2"}},
		{name: "CreateNetwork/no subnet", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", `[]`, "[]"), want: []string{"one subnet", "has 0"}},
		{name: "CreateNetwork/default IPAM", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", `[{"AddressSpace":"LocalDefault","Gateway":"172.18.0.1/16","Pool":"172.18.0.0/16"}]`, "[]"), want: []string{"--ipam-driver vxnet"}},
		{name: "CreateNetwork/bad aux address", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody(`{}`, "", `[{"AddressSpace":"vxnet","Gateway":"10.0.9.1/24","Pool":"10.0.9.0/24","AuxAddresses":{"router":"x"}}]`, "[]"), want: []string{"--aux-address router=x"}},
		{name: "CreateNetwork/internal not a bool", path: "/NetworkDriver.CreateNetwork",
			body: createNetworkBody("", `"com.docker.network.internal":"yes"`, ipv4Data, "[]"), want: []string{"malformed request", "com.docker.network.internal"}},
		{name: "CreateNetwork/no NetworkID", path: "/NetworkDriver.CreateNetwork",
			body: `{"NetworkID":"","Options":{},"IPv4Data":` + ipv4Data + `,"IPv6Data":[]}`, want: []string{"NetworkID"}},
		{name: "CreateNetwork/exists with another driver", path: "/NetworkDriver.CreateNetwork", setup: withExisting(api.NetworkCreate{Driver: "nat"}),
			body: bodyCreateNetwork, want: []string{"-o vxnet.driver", "nat", "overlay"}},
		{name: "CreateNetwork/exists internal", path: "/NetworkDriver.CreateNetwork", setup: withExisting(api.NetworkCreate{Internal: true}),
			body: bodyCreateNetwork, want: []string{"--internal", "true", "false"}},
		{name: "CreateNetwork/exists with an option", path: "/NetworkDriver.CreateNetwork", setup: withExisting(api.NetworkCreate{Options: map[string]string{"encrypt": "true"}}),
			body: bodyCreateNetwork, want: []string{"-o vxnet.encrypt", "true", "(none)"}},
		{name: "CreateNetwork/exists without the option", path: "/NetworkDriver.CreateNetwork", setup: withExisting(api.NetworkCreate{}),
			body: createNetworkBody(`{"vxnet.encrypt":"true"}`, "", ipv4Data, "[]"), want: []string{"-o vxnet.encrypt", "(none)"}},
		{name: "CreateNetwork/exists with another gateway", path: "/NetworkDriver.CreateNetwork", setup: withExisting(api.NetworkCreate{Gateway: "10.0.9.254"}),
			body: bodyCreateNetwork, want: []string{"--gateway", "10.0.9.254", "10.0.9.1"}},

		{name: "CreateEndpoint/no Interface", path: "/NetworkDriver.CreateEndpoint", setup: withContainer,
			body: endpointBody(""), want: []string{"no address", "--ipam-driver vxnet"}},
		{name: "CreateEndpoint/no address", path: "/NetworkDriver.CreateEndpoint", setup: withContainer,
			body: endpointBody(`"Interface":{"Address":"","AddressIPv6":"","MacAddress":""},`), want: []string{"no address", "--ipam-driver vxnet"}},
		{name: "CreateEndpoint/MacAddress", path: "/NetworkDriver.CreateEndpoint", setup: withContainer,
			body: endpointBody(`"Interface":{"Address":"10.0.9.2/24","AddressIPv6":"","MacAddress":"02:42:0a:00:09:02"},`), want: []string{"--mac-address"}},
		{name: "CreateEndpoint/address without prefix", path: "/NetworkDriver.CreateEndpoint", setup: withContainer,
			body: endpointBody(`"Interface":{"Address":"10.0.9.2","AddressIPv6":"","MacAddress":""},`), want: []string{`"10.0.9.2"`, "prefix length"}},
		{name: "CreateEndpoint/no EndpointID", path: "/NetworkDriver.CreateEndpoint", setup: withContainer,
			body: `{"NetworkID":"` + netID + `","EndpointID":"","Interface":{"Address":"10.0.9.2/24"},"Options":{}}`, want: []string{"EndpointID"}},

		{name: "Program/protocol 1", path: "/NetworkDriver.ProgramExternalConnectivity", setup: withContainer,
			body: externalBody(`[{"Proto":1,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]`), want: []string{"-p 80", "protocol 1", "tcp and udp"}},
		{name: "Program/host address", path: "/NetworkDriver.ProgramExternalConnectivity", setup: withContainer,
			body: externalBody(`[{"Proto":6,"IP":"","Port":80,"HostIP":"192.0.2.7","HostPort":8080,"HostPortEnd":8080}]`), want: []string{"-p 192.0.2.7:8080:80"}},
		{name: "Program/no host port", path: "/NetworkDriver.ProgramExternalConnectivity", setup: withContainer,
			body: externalBody(`[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":0,"HostPortEnd":0}]`), want: []string{"-p 80", "HOSTPORT:80"}},
		{name: "Program/portmap not a list", path: "/NetworkDriver.ProgramExternalConnectivity", setup: withContainer,
			body: externalBody(`{}`), want: []string{"malformed request", "com.docker.network.portmap"}},
		{name: "Program/no endpoint", path: "/NetworkDriver.ProgramExternalConnectivity", setup: withContainer,
			body: externalBody(`[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]`), want: []string{"no vxnet endpoint", epID[:12]}},
		{name: "Join/endpoint not in Docker", path: "/NetworkDriver.Join", setup: withWeb,
			body: bodyJoin, want: []string{"does not show endpoint " + epID[:12], `"web"`}},
		{name: "Join/network not in Docker", path: "/NetworkDriver.Join", setup: withExisting(api.NetworkCreate{}),
			body: bodyJoin, want: []string{"reading network " + netID[:12], "not found"}},
		{name: "Join/short EndpointID", path: "/NetworkDriver.Join", setup: withContainer,
			body: `{"NetworkID":"` + netID + `","EndpointID":"c0ffee","SandboxKey":"` + sandboxKey + `"}`, want: []string{`EndpointID "c0ffee"`}},
		{name: "Join/no SandboxKey", path: "/NetworkDriver.Join", setup: withContainer,
			body: `{"NetworkID":"` + netID + `","EndpointID":"` + epID + `","SandboxKey":""}`, want: []string{"SandboxKey"}},

		{name: "ReleaseAddress/not an address", path: "/IpamDriver.ReleaseAddress", setup: withContainer,
			body: `{"PoolID":"10.0.9.0/24","Address":"10.0.9.2/24"}`, want: []string{`"10.0.9.2/24"`}},
		{name: "ReleaseAddress/bad PoolID", path: "/IpamDriver.ReleaseAddress", setup: withContainer,
			body: `{"PoolID":"x","Address":"10.0.9.2"}`, want: []string{`pool "x"`}},

		{name: "unknown call", path: "/NetworkDriver.Nope", body: "{}", setup: withContainer, status: http.StatusNotFound,
			want: []string{"no call POST /NetworkDriver.Nope"}},
	}...)

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e := newEnv(t, nil, "host-a", nil)
			if r.setup != nil {
				r.setup(e)
			}
			before := e.c.dump()
			status, ans := e.post(r.path, r.body)
			e.close() // whatever the call left running has run
			want := r.status
			if want == 0 {
				want = http.StatusOK
			}
			if status != want {
				t.Errorf("status %d, want %d", status, want)
			}
			msg := errOf(ans)
			switch {
			case len(r.want) == 0 && msg != "":
				t.Errorf("Err %q, want none", msg)
			case len(r.want) > 0 && msg == "":
				t.Errorf("no Err; answer %v", ans)
			}
			for _, w := range r.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Err %q does not say %q", msg, w)
				}
			}
			if after := e.c.dump(); after != before {
				t.Errorf("the cluster changed:\nbefore\n%s\nafter\n%s", before, after)
			}
		})
	}
}

// TestHandler_getIsNotACall: the calls are POSTs.
func TestHandler_getIsNotACall(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	resp, err := http.Get(e.srv.URL + "/Plugin.Activate")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ans, err := jsonObject(raw)
	if resp.StatusCode != http.StatusNotFound || err != nil || !strings.Contains(errOf(ans), "no call GET /Plugin.Activate") {
		t.Errorf("GET /Plugin.Activate: %d %s", resp.StatusCode, raw)
	}
}

// TestHandler_bodyTooLarge: a body over the limit is refused, not read.
func TestHandler_bodyTooLarge(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	body := `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","Options":{"x":"` + strings.Repeat("a", maxBody) + `"}}`
	if msg := e.fails("/IpamDriver.RequestPool", body); !strings.Contains(msg, "over 1048576 bytes") {
		t.Errorf("Err %q", msg)
	}
}

// TestRequestAddress_auxBeforeStored: before Docker stores its network, a
// requested address (--aux-address) is granted without a reservation: the
// vxnet network keeps it out of use itself.
func TestRequestAddress_auxBeforeStored(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	var a requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", `{"PoolID":"10.0.9.0/24","Address":"10.0.9.200","Options":null}`, &a)
	if a.Address != "10.0.9.200/24" {
		t.Errorf("aux address %q", a.Address)
	}
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("reserved: %v", r)
	}
}

// TestRequestAddress_gatewayOfExisting: the gateway Docker is told is the
// vxnet network's, when it has one already.
func TestRequestAddress_gatewayOfExisting(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.c.addNetwork(t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24", Gateway: "10.0.9.254"})
	var a requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", bodyRequestGateway, &a)
	if a.Address != "10.0.9.254/24" {
		t.Errorf("gateway %q, want the network's 10.0.9.254/24", a.Address)
	}
}

// TestRequestPool_ipRange: the pool ID carries the range.
func TestRequestPool_ipRange(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	var p requestPoolResponse
	e.ok("/IpamDriver.RequestPool", `{"AddressSpace":"vxnet","Pool":"10.0.9.0/24","SubPool":"10.0.9.128/25","Options":{},"V6":false}`, &p)
	if p.PoolID != "10.0.9.0/24,10.0.9.128/25" || p.Pool != "10.0.9.0/24" {
		t.Errorf("RequestPool: %+v", p)
	}
}

// TestJoin_publishAndMTU: the mtu option reaches the endpoint at Join, -p
// at ProgramExternalConnectivity (Docker publishes through the network of
// the container's gateway only), and Revoke withdraws it; an
// internal network gives Docker its gateway too (the way to vxnet's DNS,
// the host refusing the rest).
func TestJoin_publishAndMTU(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.c.addNetwork(t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24", Internal: true})
	e.eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", true, map[string]string{optMTU: "1400"})
	if _, err := e.b.ReserveAddress(context.Background(), "web", netip.MustParseAddr("10.0.9.2")); err != nil {
		t.Fatal(err)
	}
	e.eng.join(t, netID, epID, "/api", "10.0.9.2/24")
	var j joinResponse
	// Docker binds both families: 0.0.0.0 and :: are one publish.
	ports := `[{"Proto":6,"IP":"","Port":80,"HostIP":"0.0.0.0","HostPort":8080,"HostPortEnd":8080},{"Proto":6,"IP":"","Port":80,"HostIP":"::","HostPort":8080,"HostPortEnd":8080},{"Proto":17,"IP":"","Port":53,"HostIP":"","HostPort":5353,"HostPortEnd":5353}]`
	e.ok("/NetworkDriver.Join", joinBody(ports), &j)
	if j.Gateway != "10.0.9.1" || !j.DisableGatewayService {
		t.Errorf("Join on an internal network: %+v", j)
	}
	reqs := e.c.endpointRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d EndpointCreate", len(reqs))
	}
	if got := reqs[0]; got.MTU != 1400 || len(got.Publish) != 0 || got.Name != "api" {
		t.Errorf("EndpointCreate: %+v (no ports before ProgramExternalConnectivity)", got)
	}
	e.ok("/NetworkDriver.ProgramExternalConnectivity", externalBody(ports), nil)
	if ep, _ := e.c.endpoint("web", "api"); !reflect.DeepEqual(ep.Publish, []string{"8080:80/tcp", "5353:53/udp"}) {
		t.Errorf("published after ProgramExternalConnectivity: %v", ep.Publish)
	}
	e.ok("/NetworkDriver.RevokeExternalConnectivity", bodyEndpoint, nil)
	if ep, _ := e.c.endpoint("web", "api"); len(ep.Publish) != 0 {
		t.Errorf("published after RevokeExternalConnectivity: %v", ep.Publish)
	}
}

// TestDeleteEndpoint_otherHosts: DeleteEndpoint removes this host's
// endpoint of the Docker endpoint only.
func TestDeleteEndpoint_otherHosts(t *testing.T) {
	c := newFakeCluster()
	a, b := newEnv(t, c, "host-a", nil), newEnv(t, c, "host-b", nil)
	withContainer(a)
	a.ok("/NetworkDriver.Join", bodyJoin, nil)
	b.ok("/NetworkDriver.DeleteEndpoint", bodyEndpoint, nil)
	if _, ok := c.endpoint("web", "my-app-1"); !ok {
		t.Errorf("host-b's DeleteEndpoint removed host-a's endpoint")
	}
	a.ok("/NetworkDriver.DeleteEndpoint", bodyEndpoint, nil)
	if _, ok := c.endpoint("web", "my-app-1"); ok {
		t.Errorf("host-a's DeleteEndpoint left its endpoint")
	}
}

// TestSecondHost: another host's Docker makes the network of the same
// name: the same options tie it to the vxnet network there is; another
// subnet is refused, naming --subnet.
func TestSecondHost(t *testing.T) {
	c := newFakeCluster()
	a := newEnv(t, c, "host-a", nil)
	a.ok("/IpamDriver.RequestPool", bodyRequestPool, nil)
	a.ok("/IpamDriver.RequestAddress", bodyRequestGateway, nil)
	a.ok("/NetworkDriver.CreateNetwork", bodyCreateNetwork, nil)
	a.eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
	testutil.WaitFor(t, "host-a's network", waitLong, func() bool { _, ok := c.network("web"); return ok })
	var got requestAddressResponse
	a.ok("/IpamDriver.RequestAddress", bodyRequestAddress, &got)
	if got.Address != "10.0.9.2/24" {
		t.Fatalf("host-a's address %q", got.Address)
	}
	a.close()
	if creates, attempts := c.counts(); creates != 1 || attempts != 1 {
		t.Fatalf("host-a: %d networks created in %d attempts", creates, attempts)
	}

	t.Run("same options", func(t *testing.T) {
		b := newEnv(t, c, "host-b", nil)
		b.ok("/IpamDriver.RequestPool", bodyRequestPool, nil)
		var gw requestAddressResponse
		b.ok("/IpamDriver.RequestAddress", bodyRequestGateway, &gw)
		if gw.Address != "10.0.9.1/24" {
			t.Errorf("gateway %q", gw.Address)
		}
		b.ok("/NetworkDriver.CreateNetwork", strings.Replace(bodyCreateNetwork, netID, netIDb, 1), nil)
		b.eng.storeNetwork(t, netIDb, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
		testutil.WaitFor(t, "host-b to tie its network", waitLong, func() bool {
			b.p.mu.Lock()
			defer b.p.mu.Unlock()
			return b.p.tied[netIDb] == "web"
		})
		var addr requestAddressResponse
		b.ok("/IpamDriver.RequestAddress", bodyRequestAddress, &addr)
		if addr.Address != "10.0.9.3/24" {
			t.Errorf("host-b's address %q, want the next free one 10.0.9.3/24", addr.Address)
		}
		b.close()
		if creates, attempts := c.counts(); creates != 1 || attempts != 1 {
			t.Errorf("%d networks created in %d attempts; want host-b to make none", creates, attempts)
		}
		if r := c.reservations(); !reflect.DeepEqual(r, []string{"web 10.0.9.2", "web 10.0.9.3"}) {
			t.Errorf("reservations %v", r)
		}
	})

	t.Run("another subnet", func(t *testing.T) {
		b := newEnv(t, c, "host-c", nil)
		before := c.dump()
		const pool = `{"AddressSpace":"vxnet","Pool":"10.0.10.0/24","SubPool":"","Options":{},"V6":false}`
		b.ok("/IpamDriver.RequestPool", pool, nil)
		b.ok("/IpamDriver.RequestAddress", `{"PoolID":"10.0.10.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}`, nil)
		// CreateNetwork cannot see it: Docker does not give the name.
		body := strings.NewReplacer(netID, netIDb, "10.0.9.", "10.0.10.").Replace(bodyCreateNetwork)
		b.ok("/NetworkDriver.CreateNetwork", body, nil)
		b.eng.storeNetwork(t, netIDb, "web", "10.0.10.0/24", "10.0.10.1", false, webOptions)
		// The first container's address is refused.
		msg := b.fails("/IpamDriver.RequestAddress", `{"PoolID":"10.0.10.0/24","Address":"","Options":null}`)
		for _, w := range []string{"--subnet", "10.0.9.0/24", "10.0.10.0/24", `"web"`} {
			if !strings.Contains(msg, w) {
				t.Errorf("RequestAddress: Err %q does not say %q", msg, w)
			}
		}
		// So would its Join be.
		b.eng.join(t, netIDb, epID, ctrName, "10.0.10.2/24")
		if msg := b.fails("/NetworkDriver.Join", strings.Replace(bodyJoin, netID, netIDb, 1)); !strings.Contains(msg, "--subnet") {
			t.Errorf("Join: Err %q does not name --subnet", msg)
		}
		b.close()
		if after := c.dump(); after != before {
			t.Errorf("the cluster changed:\nbefore\n%s\nafter\n%s", before, after)
		}
	})
}

// bodySignal is a request body that says when it was read to its end.
type bodySignal struct {
	r    io.Reader
	read chan struct{}
	done bool
}

func (b *bodySignal) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		close(b.read)
	}
	return n, err
}

// callAsync serves a call on h in the background: it returns when the
// handler has read the body, with a channel that gives the answer.
func callAsync(t *testing.T, ctx context.Context, h http.Handler, path, body string) <-chan *httptest.ResponseRecorder {
	t.Helper()
	sig := &bodySignal{r: strings.NewReader(body), read: make(chan struct{})}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, sig)
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out <- rec
	}()
	select {
	case <-sig.read:
	case <-time.After(waitLong):
		t.Fatalf("%s: the body was not read", path)
	}
	return out
}

func answer(t *testing.T, path string, ch <-chan *httptest.ResponseRecorder) (int, map[string]json.RawMessage) {
	t.Helper()
	select {
	case rec := <-ch:
		ans, err := jsonObject(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("%s: answer %q: %v", path, rec.Body.String(), err)
		}
		return rec.Code, ans
	case <-time.After(waitLong):
		t.Fatalf("%s: no answer", path)
	}
	return 0, nil
}

// TestReady: calls wait until the agent is ready; Activate does not (so
// that Docker finds the plugin while the agent starts).
func TestReady(t *testing.T) {
	ready := make(chan struct{})
	e := newEnv(t, nil, "host-a", func(c *Config) { c.Ready = ready })
	h := e.p.Handler()

	var act activateResponse
	e.ok("/Plugin.Activate", "", &act)
	if len(act.Implements) != 2 {
		t.Errorf("Activate: %+v", act)
	}

	// Every other call waits: given up (Docker's request cancelled), it
	// says the agent is starting rather than answering.
	for _, r := range routes {
		if r.path == "/Plugin.Activate" {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := callAsync(t, ctx, h, r.path, "{}")
		select {
		case rec := <-ch:
			t.Fatalf("%s answered before the agent was ready: %s", r.path, rec.Body.String())
		default:
		}
		cancel()
		status, ans := answer(t, r.path, ch)
		if msg := errOf(ans); status != http.StatusOK || !strings.Contains(msg, "starting and not ready") {
			t.Errorf("%s given up: %d Err %q", r.path, status, msg)
		}
	}

	// A call waiting goes on once the agent is ready.
	ch := callAsync(t, context.Background(), h, "/IpamDriver.RequestPool", bodyRequestPool)
	select {
	case rec := <-ch:
		t.Fatalf("RequestPool answered before the agent was ready: %s", rec.Body.String())
	default:
	}
	close(ready)
	status, ans := answer(t, "RequestPool", ch)
	if status != http.StatusOK || errOf(ans) != "" || string(ans["PoolID"]) != `"10.0.9.0/24"` {
		t.Errorf("RequestPool once ready: %d %v", status, ans)
	}
}

func TestEndpointName(t *testing.T) {
	long := strings.Repeat("a", 62) + "_" + strings.Repeat("b", 7) // 70: byte 63 is '_'
	for _, c := range []struct{ in, want string }{
		{"api", "api"},
		{"/api", "api"},
		{"my_app.1", "my-app-1"},
		{"Web.Front_2", "Web-Front-2"},
		{"app-", "app"},
		// Cut, with the hash of the whole: names alike to byte 63 differ.
		{long, names.ShortenOf(strings.Repeat("a", 62)+"-"+strings.Repeat("b", 7), long)},
		{strings.Repeat("x", 70), names.Shorten(strings.Repeat("x", 70))},
	} {
		got := EndpointName(c.in)
		if got != c.want {
			t.Errorf("EndpointName(%q) = %q, want %q", c.in, got, c.want)
		}
		if err := names.Endpoint(got); err != nil {
			t.Errorf("EndpointName(%q) = %q: not an endpoint name: %v", c.in, got, err)
		}
	}
	for _, pair := range [][2]string{{"_one", "_two"}, {"_a.b", "_a_b"}} {
		if a, b := EndpointName(strings.Repeat("x", 63)+pair[0]), EndpointName(strings.Repeat("x", 63)+pair[1]); a == b || len(a) != names.MaxLabel {
			t.Errorf("two long names alike to byte 63 (%s, %s): %q and %q, want two of 63 characters", pair[0], pair[1], a, b)
		}
	}
	if len(long) != 70 {
		t.Fatalf("the long name has %d characters", len(long))
	}
}

// TestCollect_removesGoneContainers: at Activate, the endpoints of this
// host's containers that Docker no longer has are removed; those it has,
// other hosts' and other runtimes' stay.
func TestCollect_removesGoneContainers(t *testing.T) {
	c := newFakeCluster()
	e := newEnv(t, c, "host-a", nil)
	withWeb(e)
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/24")
	other := &fakeBackend{c: c, host: "host-b"}
	mk := func(b *fakeBackend, name, ip string, labels map[string]string) {
		t.Helper()
		if _, err := b.CreateEndpoint(context.Background(), api.EndpointCreate{Network: "web", Name: name, Netns: "x", IP: ip, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	mk(e.b, "live", "10.0.9.2", map[string]string{LabelEndpoint: epID})
	mk(e.b, "gone", "10.0.9.3", map[string]string{LabelEndpoint: "dead0123456789"})
	mk(e.b, "cli", "10.0.9.4", nil)
	mk(other, "elsewhere", "10.0.9.5", map[string]string{LabelEndpoint: "dead9876543210"})

	e.ok("/Plugin.Activate", "", nil)
	testutil.WaitFor(t, "collect to remove endpoint gone", waitLong, func() bool { _, ok := c.endpoint("web", "gone"); return !ok })
	e.close()
	for _, name := range []string{"live", "cli", "elsewhere"} {
		if _, ok := c.endpoint("web", name); !ok {
			t.Errorf("endpoint %s removed", name)
		}
	}
}

// TestCollect_releasesForgottenReservations: a reservation no endpoint
// holds and no container of Docker's has is released, if it is from
// before the agent started or older than the grace; a young one, one
// Docker shows, and one an endpoint holds stay.
func TestCollect_releasesForgottenReservations(t *testing.T) {
	c := newFakeCluster()
	e := newEnv(t, c, "host-a", nil)
	withWeb(e)
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/24") // Docker shows .2
	for _, ip := range []string{"10.0.9.2", "10.0.9.7", "10.0.9.8", "10.0.9.9"} {
		if _, err := e.b.ReserveAddress(context.Background(), "web", netip.MustParseAddr(ip)); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	c.since["web/10.0.9.2"], c.since["web/10.0.9.7"] = time.Time{}, time.Time{} // from before a restart
	c.reserved["web"][netip.MustParseAddr("10.0.9.9")] = "web/holder"
	c.since["web/10.0.9.9"] = time.Time{}
	c.mu.Unlock()
	e.ok("/Plugin.Activate", "", nil)
	testutil.WaitFor(t, "collect to release 10.0.9.7", waitLong, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.reserved["web"][netip.MustParseAddr("10.0.9.7")]
		return !ok
	})
	e.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ip := range []string{"10.0.9.2", "10.0.9.8", "10.0.9.9"} {
		if _, ok := c.reserved["web"][netip.MustParseAddr(ip)]; !ok {
			t.Errorf("reservation of %s released", ip)
		}
	}
}

// TestCreateNetwork_subnetOfAnotherDockerNetwork: one Docker network per
// subnet on a host (a pool is known by its subnet).
func TestCreateNetwork_subnetOfAnotherDockerNetwork(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.eng.storeNetwork(t, "other0123456789", "other", "10.0.9.0/24", "10.0.9.1", false, nil)
	msg := e.fails("/NetworkDriver.CreateNetwork", createNetworkBody(`{}`, "", ipv4Data, "[]"))
	if !strings.Contains(msg, "--subnet 10.0.9.0/24") || !strings.Contains(msg, `"other"`) {
		t.Errorf("Err %q: want --subnet and the other network's name", msg)
	}
}

// holdCollect activates the plugin and returns once its collect is held
// in its read of Docker's network, until release is called (at the
// latest before the plugin's Close, should the test stop early).
func holdCollect(t *testing.T, e *env) (release func()) {
	t.Helper()
	read, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(release)
	e.eng.setOnNetwork(func(EngineNetwork) { close(read); <-proceed })
	e.ok("/Plugin.Activate", "", nil)
	select {
	case <-read:
	case <-time.After(waitLong):
		t.Fatal("collect did not read Docker's network")
	}
	return release
}

// TestCollect_keepsEndpointJoinedMeanwhile: a container that joins while
// collect runs (after it read Docker's containers, before it listed the
// agent's endpoints) keeps its endpoint.
func TestCollect_keepsEndpointJoinedMeanwhile(t *testing.T) {
	c := newFakeCluster()
	e := newEnv(t, c, "host-a", nil)
	withWeb(e)
	if _, err := e.b.ReserveAddress(context.Background(), "web", netip.MustParseAddr("10.0.9.2")); err != nil {
		t.Fatal(err)
	}
	release := holdCollect(t, e)
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/24")
	e.ok("/NetworkDriver.Join", bodyJoin, nil)
	release()
	e.close() // collect has run to its end
	if _, ok := c.endpoint("web", "my-app-1"); !ok {
		t.Error("collect removed the endpoint of a container that joined while it ran")
	}
}

// TestCollect_keepsEndpointMadeAgain: a container restarted while collect
// runs (its endpoint, listed with its old Docker endpoint, removed and
// made again for a new one before collect removes the stale ones) keeps
// its new endpoint.
func TestCollect_keepsEndpointMadeAgain(t *testing.T) {
	c := newFakeCluster()
	e := newEnv(t, c, "host-a", nil)
	withWeb(e)
	if _, err := e.b.CreateEndpoint(context.Background(), api.EndpointCreate{Network: "web", Name: "my-app-1", Netns: "x", IP: "10.0.9.2",
		Labels: map[string]string{LabelEndpoint: "01d0123456789abcdef"}}); err != nil {
		t.Fatal(err)
	}
	release := holdCollect(t, e)
	// The restart: the old endpoint goes, Docker joins the container
	// again under a new endpoint ID (epID).
	if err := e.b.RemoveEndpoint("web", "my-app-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.ReserveAddress(context.Background(), "web", netip.MustParseAddr("10.0.9.2")); err != nil {
		t.Fatal(err)
	}
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/24")
	e.ok("/NetworkDriver.Join", bodyJoin, nil)
	release()
	e.close() // collect has run to its end
	if ep, ok := c.endpoint("web", "my-app-1"); !ok || ep.Labels[LabelEndpoint] != epID {
		t.Errorf("after collect: endpoint %+v (%v), want the one made again for %s", ep, ok, epID[:12])
	}
}

// TestCreateNetwork_backendFieldAsDockerOption: the agent's refusal of a
// field is said in Docker's terms: the driver is -o vxnet.driver there.
func TestCreateNetwork_backendFieldAsDockerOption(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	msg := e.fails("/NetworkDriver.CreateNetwork", createNetworkBody(`{"vxnet.driver":"bogus"}`, "", ipv4Data, "[]"))
	if !strings.Contains(msg, "vxnet.driver") {
		t.Errorf("Err %q does not name -o vxnet.driver (a Docker user reads \"driver\" as -d)", msg)
	}
}

// TestRequestPool_tooSmall: a subnet with no room for a gateway and a
// container is refused at docker network create, naming --subnet.
func TestRequestPool_tooSmall(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	var bugs []string
	for _, pool := range []string{"10.0.9.4/31", "10.0.9.5/32"} {
		status, ans := e.post("/IpamDriver.RequestPool", `{"AddressSpace":"vxnet","Pool":"`+pool+`","SubPool":"","Options":{},"V6":false}`)
		msg := errOf(ans)
		if status != http.StatusOK {
			t.Fatalf("RequestPool %s: %d", pool, status)
		}
		if msg != "" {
			if !strings.Contains(msg, "--subnet") {
				t.Errorf("RequestPool %s: Err %q does not name --subnet", pool, msg)
			}
			continue
		}
		var gw requestAddressResponse
		e.ok("/IpamDriver.RequestAddress", `{"PoolID":"`+pool+`","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}`, &gw)
		bugs = append(bugs, fmt.Sprintf("%s accepted, gateway %s", pool, gw.Address))
	}
	if len(bugs) > 0 {
		t.Errorf("RequestPool accepts subnets vxnet's IPAM refuses as too small: %s", strings.Join(bugs, "; "))
	}
}

// staleList is an agent whose list of endpoints is older than its
// endpoints: one may be gone, or changed, by the time the plugin acts.
type staleList struct {
	*fakeBackend
	list []api.Endpoint
}

func (s staleList) Endpoints() []api.Endpoint { return s.list }

// call serves one call on h.
func call(t *testing.T, h http.Handler, path, body string) map[string]json.RawMessage {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	ans, err := jsonObject(rec.Body.Bytes())
	if rec.Code != http.StatusOK || err != nil {
		t.Fatalf("POST %s: %d %q %v", path, rec.Code, rec.Body.String(), err)
	}
	return ans
}

// TestDeleteEndpoint_goneMeanwhile: an endpoint removed between the list
// and its removal is gone, as asked; any other refusal is Docker's error.
func TestDeleteEndpoint_goneMeanwhile(t *testing.T) {
	c := newFakeCluster()
	c.addNetwork(t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"})
	listed := []api.Endpoint{{Name: "my-app-1", Network: "web", Host: "host-a", Labels: map[string]string{LabelEndpoint: epID}}}
	p := New(Config{Backend: staleList{&fakeBackend{c: c, host: "host-a"}, listed}, Engine: newFakeEngine(), MTU: testMTU})
	t.Cleanup(p.Close)
	h := p.Handler()

	if msg := errOf(call(t, h, "/NetworkDriver.DeleteEndpoint", bodyEndpoint)); msg != "" {
		t.Errorf("DeleteEndpoint of an endpoint gone meanwhile: Err %q", msg)
	}

	// Now an endpoint of that name is host-b's: the agent refuses.
	if _, err := (&fakeBackend{c: c, host: "host-b"}).CreateEndpoint(context.Background(),
		api.EndpointCreate{Network: "web", Name: "my-app-1", Netns: "x", IP: "10.0.9.9"}); err != nil {
		t.Fatal(err)
	}
	if msg := errOf(call(t, h, "/NetworkDriver.DeleteEndpoint", bodyEndpoint)); !strings.Contains(msg, "host-b") {
		t.Errorf("DeleteEndpoint refused by the agent: Err %q, want its reason", msg)
	}
	if _, ok := c.endpoint("web", "my-app-1"); !ok {
		t.Errorf("host-b's endpoint removed")
	}
}

// TestIPv6_dualStack: docker network create --ipv6 with an IPv4 and an
// IPv6 subnet makes a dual-stack vxnet network; a container gets an
// address of each (both reserved, the IPv6 one from the IPv6 pool), and
// its endpoint both; --ipv6 without an IPv6 subnet is refused, naming it.
func TestIPv6_dualStack(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	for _, pool := range []string{"fd00:9::/64", ""} {
		var p requestPoolResponse
		e.ok("/IpamDriver.RequestPool", `{"AddressSpace":"vxnet","Pool":"`+pool+`","SubPool":"","Options":{},"V6":true}`, &p)
		if _, err := netip.ParsePrefix(p.Pool); err != nil || p.PoolID == "" {
			t.Errorf("RequestPool V6 %q: pool %q id %q", pool, p.Pool, p.PoolID)
		}
	}
	const v6 = `"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{},"com.docker.network.internal":false`
	if msg := e.fails("/NetworkDriver.CreateNetwork", createNetworkBody("", v6, ipv4Data, "[]")); !strings.Contains(msg, "--ipv6") {
		t.Errorf("--ipv6 without IPv6 data: %q", msg)
	}
	e.ok("/NetworkDriver.CreateNetwork", createNetworkBody("", v6, ipv4Data, `[{"AddressSpace":"vxnet","Gateway":"fd00:9::1/64","Pool":"fd00:9::/64"}]`), nil)
	e.eng.storeDualNetwork(t, netID, "web", "10.0.9.0/24", "fd00:9::/64")
	testutil.WaitFor(t, "the vxnet network web", waitLong, func() bool { _, ok := e.c.network("web"); return ok })
	if n, _ := e.c.network("web"); n.Subnet != "10.0.9.0/24" || n.Subnet6 != "fd00:9::/64" {
		t.Errorf("vxnet network %+v", n)
	}
	var a4, a6 requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", bodyRequestAddress, &a4)
	e.ok("/IpamDriver.RequestAddress", `{"PoolID":"fd00:9::/64","Address":"","Options":null}`, &a6)
	if a4.Address != "10.0.9.2/24" || !strings.HasPrefix(a6.Address, "fd00:9::") || !strings.HasSuffix(a6.Address, "/64") {
		t.Fatalf("addresses %q %q", a4.Address, a6.Address)
	}
	e.eng.join(t, netID, epID, ctrName, a4.Address+","+a6.Address)
	e.eng.runContainer(t, ctrID, ctrName, "web", nil)
	e.ok("/NetworkDriver.Join", bodyJoin, nil)
	reqs := e.c.endpointRequests()
	if len(reqs) != 1 || reqs[0].IP != "10.0.9.2" || reqs[0].IP6+"/64" != a6.Address || !reqs[0].Reserved {
		t.Errorf("EndpointCreate %+v, want both addresses, reserved", reqs)
	}
	e.ok("/IpamDriver.ReleaseAddress", `{"PoolID":"fd00:9::/64","Address":"`+strings.TrimSuffix(a6.Address, "/64")+`"}`, nil)
}

// TestJoin_serviceLabel: docker run --label vxnet.service=NAME puts the
// endpoint in service NAME; a NAME DNS cannot take is refused, naming the
// label, and nothing is made.
func TestJoin_serviceLabel(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	withContainer(e)
	e.eng.label(ctrName, LabelService, "front")
	e.ok("/NetworkDriver.Join", bodyJoin, nil)
	if reqs := e.c.endpointRequests(); len(reqs) != 1 || reqs[0].Service != "front" {
		t.Errorf("EndpointCreate %+v, want service front", reqs)
	}

	e2 := newEnv(t, nil, "host-a", nil)
	withContainer(e2)
	e2.eng.label(ctrName, LabelService, "no_such")
	msg := e2.fails("/NetworkDriver.Join", bodyJoin)
	if !strings.Contains(msg, "--label vxnet.service=no_such") {
		t.Errorf("Err %q, want the label named", msg)
	}
	if reqs := e2.c.endpointRequests(); len(reqs) != 0 {
		t.Errorf("an endpoint was asked for: %+v", reqs)
	}
}

// The bodies dockerd 20.10 sends in a swarm: its manager's allocator
// first (the global space, with the serial option), then the host's own
// Docker (the local space) for the address the manager chose.
const (
	bodySwarmPool     = `{"AddressSpace":"vxnet-swarm","Pool":"10.0.9.0/29","SubPool":"","Options":null,"V6":false}`
	bodySwarmGateway  = `{"PoolID":"swarm:10.0.9.0/29","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway","com.docker.network.ipam.serial":"true"}}`
	bodySwarmAddress  = `{"PoolID":"swarm:10.0.9.0/29","Address":"","Options":{"com.docker.network.ipam.serial":"true"}}`
	bodySwarmAllocate = `{"NetworkID":"v20kysaxjsdvk330i3nnvemhq","Options":{},"IPv4Data":[{"AddressSpace":"","Gateway":"10.0.9.1/29","Pool":"10.0.9.0/29"}],"IPv6Data":null}`
	bodyLocalPool     = `{"AddressSpace":"vxnet","Pool":"10.0.9.0/29","SubPool":"","Options":null,"V6":false}`
	bodyLocalGateway  = `{"PoolID":"10.0.9.0/29","Address":"10.0.9.1","Options":{"RequestAddressType":"com.docker.network.gateway"}}`
	bodySwarmNetwork  = `{"NetworkID":"` + netID + `","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"vxnet","Gateway":"10.0.9.1/29","Pool":"10.0.9.0/29"}],"IPv6Data":[]}`
)

func swarmAddress(ip string) string {
	return `{"PoolID":"swarm:10.0.9.0/29","Address":"` + ip + `","Options":{"com.docker.network.ipam.serial":"true"}}`
}

// TestSwarm_managerHandsOut: the manager's allocator gets every address
// of the range once (the gateway first, then next-fit, never an address a
// vxnet endpoint holds, an address asked for twice refused), a leader
// that starts again (a new pool, then its addresses) gets what it had, a
// release frees the address, and a pool the plugin does not know (it
// restarted) is made again; the host's Docker asks for the manager's
// address and reserves nothing; the vxnet network's addresses are the
// swarm's, and the endpoint comes with its address assigned.
func TestSwarm_managerHandsOut(t *testing.T) {
	e := newEnv(t, nil, "host-a", func(c *Config) { c.Scope = "global" })
	var caps capabilitiesResponse
	e.ok("/NetworkDriver.GetCapabilities", "", &caps)
	if caps.Scope != "global" {
		t.Errorf("scope %q", caps.Scope)
	}
	newPool := func(body string) string {
		var pool requestPoolResponse
		e.ok("/IpamDriver.RequestPool", body, &pool)
		if !strings.HasPrefix(pool.PoolID, "swarm:") || !strings.HasSuffix(pool.PoolID, ":10.0.9.0/29") || pool.Pool != "10.0.9.0/29" {
			t.Fatalf("RequestPool in the swarm's space: %+v", pool)
		}
		return pool.PoolID
	}
	id := newPool(bodySwarmPool)
	req := func(id, ip string, gateway bool) string {
		opts := `{"com.docker.network.ipam.serial":"true"}`
		if gateway {
			opts = `{"RequestAddressType":"com.docker.network.gateway","com.docker.network.ipam.serial":"true"}`
		}
		return `{"PoolID":"` + id + `","Address":"` + ip + `","Options":` + opts + `}`
	}
	addr := func(body string) string {
		var r requestAddressResponse
		e.ok("/IpamDriver.RequestAddress", body, &r)
		return r.Address
	}
	if got := addr(req(id, "", true)); got != "10.0.9.1/29" {
		t.Errorf("gateway %s", got)
	}
	e.ok("/NetworkDriver.AllocateNetwork", bodySwarmAllocate, nil)
	// A vxnet endpoint holds .3: never handed out.
	e.c.addNetwork(t, api.NetworkCreate{Name: "other", Subnet: "10.0.9.0/29", AssignedBy: api.AssignedBySwarm})
	e.c.mu.Lock()
	e.c.endpoints["other/x"] = &fakeEndpoint{ep: api.Endpoint{Name: "x", Network: "other", Host: "host-b", Addresses: []string{"10.0.9.3/29"}}}
	e.c.mu.Unlock()
	var got []string
	for range 4 {
		got = append(got, addr(req(id, "", false)))
	}
	if want := []string{"10.0.9.2/29", "10.0.9.4/29", "10.0.9.5/29", "10.0.9.6/29"}; !reflect.DeepEqual(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
	if msg := e.fails("/IpamDriver.RequestAddress", req(id, "", false)); !strings.Contains(msg, "no address left") {
		t.Errorf("exhausted: %q", msg)
	}
	if msg := e.fails("/IpamDriver.RequestAddress", req(id, "10.0.9.5", false)); !strings.Contains(msg, "10.0.9.5 is in use") {
		t.Errorf("an address asked for twice: %q", msg)
	}
	e.ok("/IpamDriver.ReleaseAddress", `{"PoolID":"`+id+`","Address":"10.0.9.4"}`, nil)
	if got := addr(req(id, "", false)); got != "10.0.9.4/29" {
		t.Errorf("after a release: %s", got)
	}
	// A leader starting: a new pool, then the addresses it had.
	id2 := newPool(bodySwarmPool)
	if id2 == id {
		t.Errorf("a pool asked for again has the same ID %s", id)
	}
	if got := addr(req(id2, "10.0.9.1", true)); got != "10.0.9.1/29" {
		t.Errorf("gateway asked again: %s", got)
	}
	for _, ip := range []string{"10.0.9.2", "10.0.9.5"} {
		if got := addr(req(id2, ip, false)); got != ip+"/29" {
			t.Errorf("asked again for %s: %s", ip, got)
		}
	}
	// .3 is the endpoint's, .4 was not asked for again: free.
	if got := addr(req(id2, "", false)); got != "10.0.9.4/29" {
		t.Errorf("after the restart the next is %s, want 10.0.9.4/29", got)
	}
	// A pool the plugin does not know (it restarted under a leader that
	// did not): made again from its ID, the gateway kept clear.
	if got := addr(`{"PoolID":"swarm:1-1:10.0.8.0/29","Address":"","Options":{}}`); got != "10.0.8.2/29" {
		t.Errorf("a pool not known: %s, want 10.0.8.2/29", got)
	}
	for _, bad := range []string{"swarm:1-1:10.0.8.0/33", "swarm:web", "swarm:1-1:10.0.8.0/29,10.0.7.0/30", "swarm:10.0.8.0/31"} {
		if msg := e.fails("/IpamDriver.RequestAddress", `{"PoolID":"`+bad+`","Address":"","Options":{}}`); !strings.Contains(msg, "not one of vxnet's") {
			t.Errorf("pool %s: %q", bad, msg)
		}
	}
	for _, rng := range []string{"10.0.7.0/32", "10.0.7.7/32"} {
		body := `{"AddressSpace":"vxnet-swarm","Pool":"10.0.7.0/29","SubPool":"` + rng + `","Options":null,"V6":false}`
		if msg := e.fails("/IpamDriver.RequestPool", body); !strings.Contains(msg, "--ip-range "+rng) {
			t.Errorf("a range of the network or broadcast address alone: %q", msg)
		}
	}

	// The host's own Docker, for a task of the manager's.
	var pool requestPoolResponse
	e.ok("/IpamDriver.RequestPool", bodyLocalPool, &pool)
	if pool.PoolID != "10.0.9.0/29" {
		t.Errorf("local RequestPool: %+v", pool)
	}
	if got := addr(bodyLocalGateway); got != "10.0.9.1/29" {
		t.Errorf("local gateway %s", got)
	}
	if msg := e.fails("/IpamDriver.RequestAddress", `{"PoolID":"10.0.9.0/29","Address":"","Options":null}`); !strings.Contains(msg, "manager hands out") {
		t.Errorf("a host's own request without an address: %q", msg)
	}
	if got := addr(`{"PoolID":"10.0.9.0/29","Address":"10.0.9.2","Options":null}`); got != "10.0.9.2/29" {
		t.Errorf("the manager's address: %s", got)
	}
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("reservations in a swarm: %v", r)
	}
	e.c.mu.Lock()
	delete(e.c.endpoints, "other/x")
	delete(e.c.networks, "other")
	e.c.mu.Unlock()
	e.ok("/NetworkDriver.CreateNetwork", bodySwarmNetwork, nil)
	e.eng.storeNetwork(t, netID, "web", "10.0.9.0/29", "10.0.9.1", false, nil)
	testutil.WaitFor(t, "the vxnet network web", waitLong, func() bool { _, ok := e.c.network("web"); return ok })
	if n, _ := e.c.network("web"); n.AssignedBy != api.AssignedBySwarm {
		t.Errorf("vxnet network assignedBy %q", n.AssignedBy)
	}
	e.ok("/NetworkDriver.CreateEndpoint", strings.ReplaceAll(bodyCreateEndpoint, "/24", "/29"), nil)
	e.eng.join(t, netID, epID, ctrName, "10.0.9.2/29")
	e.eng.runContainer(t, ctrID, ctrName, "web", nil)
	e.ok("/NetworkDriver.Join", bodyJoin, nil)
	reqs := e.c.endpointRequests()
	if len(reqs) != 1 || !reqs[0].Assigned || reqs[0].Reserved || reqs[0].IP != "10.0.9.2" {
		t.Errorf("EndpointCreate %+v, want the address assigned", reqs)
	}
	e.ok("/IpamDriver.ReleaseAddress", `{"PoolID":"10.0.9.0/29","Address":"10.0.9.2"}`, nil)
	e.ok("/IpamDriver.ReleasePool", `{"PoolID":"`+id2+`"}`, nil)
	// Released, then asked for (a plugin that restarted): the endpoint's
	// address and the gateway are kept clear.
	if got := addr(req(id2, "", false)); got != "10.0.9.3/29" {
		t.Errorf("after ReleasePool: %s, want 10.0.9.3/29", got)
	}
}

// TestSwarm_allocateChecks: the manager making a network is refused, by
// option name, what no host could make.
func TestSwarm_allocateChecks(t *testing.T) {
	e := newEnv(t, nil, "host-a", func(c *Config) { c.Scope = "global" })
	for body, want := range map[string]string{
		`{"NetworkID":"n1","Options":{"vxnet.driver":"bogus"},"IPv4Data":[{"Pool":"10.0.9.0/24"}]}`: "unknown driver",
		`{"NetworkID":"n1","Options":{"colour":"red"},"IPv4Data":[{"Pool":"10.0.9.0/24"}]}`:         "-o colour",
		`{"NetworkID":"n1","Options":{},"IPv4Data":[],"IPv6Data":[{"Pool":"fd00::/64"}]}`:           "--ipv6",
	} {
		if msg := e.fails("/NetworkDriver.AllocateNetwork", body); !strings.Contains(msg, want) {
			t.Errorf("%s: %q, want %q", body, msg, want)
		}
	}
	var got struct{ Options map[string]string }
	e.ok("/NetworkDriver.AllocateNetwork", `{"NetworkID":"n1","Options":{"vxnet.driver":"overlay","com.docker.network.driver.mtu":"1400","com.docker.network.whatever":"x"},"IPv4Data":[{"Pool":"10.0.9.0/24"}]}`, &got)
	// The nodes get these options, and no others: vxnet's must be there.
	if want := map[string]string{"vxnet.driver": "overlay", "com.docker.network.driver.mtu": "1400"}; !reflect.DeepEqual(got.Options, want) {
		t.Errorf("AllocateNetwork answered options %v, want %v", got.Options, want)
	}
	if msg := e.fails("/NetworkDriver.AllocateNetwork", `{"NetworkID":"n2","Options":{},"IPv4Data":[{"Pool":"10.0.9.0/24"}]}`); !strings.Contains(msg, "swarm network n1's") {
		t.Errorf("a second swarm network on a subnet: %q", msg)
	}
	e.ok("/NetworkDriver.FreeNetwork", `{"NetworkID":"n1"}`, nil)
	e.ok("/NetworkDriver.AllocateNetwork", `{"NetworkID":"n2","Options":{},"IPv4Data":[{"Pool":"10.0.9.0/24"}]}`, nil)
	e.ok("/NetworkDriver.FreeNetwork", `{"NetworkID":"n2"}`, nil)
}

// TestCreateNetwork_encryptedAsDockerTakesIt: --opt encrypted, as Docker's
// overlay takes it, makes an encrypted vxnet network.
func TestCreateNetwork_encryptedAsDockerTakesIt(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.ok("/NetworkDriver.CreateNetwork", createNetworkBody(`{"encrypted":""}`, "", ipv4Data, "[]"), nil)
	e.eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, map[string]string{OptDriver: "overlay", "encrypted": ""})
	testutil.WaitFor(t, "the vxnet network web", waitLong, func() bool { _, ok := e.c.network("web"); return ok })
	if n, _ := e.c.network("web"); n.Options["encrypted"] != "true" {
		t.Fatalf("vxnet network options %v, want encrypted=true", n.Options)
	}
}

// TestSpecOf_optionAloneIsTrue: --opt vxnet.KEY with no value is KEY=true,
// as the CLI's -o KEY; a network that exists with the option stored as
// true, or empty by an older version, agrees with it; one without it does
// not.
func TestSpecOf_optionAloneIsTrue(t *testing.T) {
	p := &Plugin{}
	s, err := p.specOf(map[string]string{"vxnet.mss-clamp": "", "encrypted": ""}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.req.Options["mss-clamp"] != "true" || s.req.Options["encrypted"] != "true" {
		t.Fatalf("options %v, want mss-clamp and encrypted true", s.req.Options)
	}
	s.req.Subnet = "10.0.9.0/24"
	for stored, ok := range map[string]bool{"true": true, "": true, "false": false} {
		n := api.Network{Name: "n", Driver: "overlay", Subnet: "10.0.9.0/24", Options: map[string]string{"mss-clamp": stored, "encrypted": "true"}}
		if err := agrees(n, s.req); (err == nil) != ok {
			t.Errorf("stored mss-clamp %q: %v, want agreeing %v", stored, err, ok)
		}
	}
	n := api.Network{Name: "n", Driver: "overlay", Subnet: "10.0.9.0/24", Options: map[string]string{"encrypted": "true"}}
	if err := agrees(n, s.req); err == nil || !strings.Contains(err.Error(), "mss-clamp") {
		t.Errorf("a network without mss-clamp: %v, want the option named", err)
	}
}

// TestOptionErrors_nameWhatDockerTakes: an option Docker passes without
// vxnet's prefix suggests it; a backend's refusal of a vxnet option names
// the option and how Docker spells such options, with no placeholder as
// its flag.
func TestOptionErrors_nameWhatDockerTakes(t *testing.T) {
	_, err := (&Plugin{}).specOf(map[string]string{"mss-clamp": "1300"}, false, false)
	if err == nil || !strings.Contains(err.Error(), "did you mean -o vxnet.mss-clamp?") {
		t.Errorf("-o mss-clamp: %v", err)
	}
	err = describe(&api.Error{Code: api.CodeBadRequest, Field: "options", Message: `option "mss-clmap": unknown`})
	if err == nil || !strings.Contains(err.Error(), `option "mss-clmap": unknown`) || !strings.Contains(err.Error(), "-o vxnet.KEY=VALUE") || strings.Contains(err.Error(), "vxnet.KEY:") {
		t.Errorf("an unknown vxnet option: %v", err)
	}
}

// TestCreateNetwork_mtuOfEncrypted: an encrypted network's containers
// have less room (NetworkMTU), so its MTU option is bounded lower, in
// whichever order the options come; a plain network keeps the agent's.
func TestCreateNetwork_mtuOfEncrypted(t *testing.T) {
	const overhead = 28
	e := newEnv(t, nil, "host-a", func(c *Config) {
		c.NetworkMTU = func(o map[string]string) int {
			if o["encrypted"] == "true" {
				return testMTU - overhead
			}
			return testMTU
		}
	})
	over := fmt.Sprint(testMTU - overhead + 1)
	for _, generic := range []string{
		`{"encrypted":"","com.docker.network.driver.mtu":"` + over + `"}`,
		`{"vxnet.encrypted":"true","com.docker.network.driver.mtu":"` + over + `"}`,
	} {
		msg := e.fails("/NetworkDriver.CreateNetwork", createNetworkBody(generic, "", ipv4Data, "[]"))
		for _, want := range []string{"com.docker.network.driver.mtu=" + over, fmt.Sprint("576 to ", testMTU-overhead), "encrypt"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", generic, msg, want)
			}
		}
	}
	e.ok("/NetworkDriver.CreateNetwork", createNetworkBody(`{"encrypted":"","com.docker.network.driver.mtu":"`+fmt.Sprint(testMTU-overhead)+`"}`, "", ipv4Data, "[]"), nil)
	e2 := newEnv(t, nil, "host-a", func(c *Config) { c.NetworkMTU = e.p.cfg.NetworkMTU })
	e2.ok("/NetworkDriver.CreateNetwork", createNetworkBody(`{"com.docker.network.driver.mtu":"`+fmt.Sprint(testMTU)+`"}`, "", ipv4Data, "[]"), nil)
}

// TestEngineAway_restartsRefused: while Docker's API does not answer (as
// while dockerd restores its containers, calling the plugin first), a call
// that needs it is refused, saying so, and the calls after it at once;
// once the API answers, the containers with a restart policy (always,
// unless-stopped) on vxnet's networks that were refused so are started,
// and no other.
func TestEngineAway_restartsRefused(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.eng.storeNetwork(t, netID, "web", "10.0.9.0/24", "10.0.9.1", false, webOptions)
	e.eng.storeNetwork(t, "bridge0id", "bridge", "172.17.0.0/16", "172.17.0.1", false, nil)
	e.eng.mu.Lock()
	n := e.eng.networks["bridge0id"]
	n.Driver = "bridge"
	e.eng.networks["bridge0id"] = n
	e.eng.mu.Unlock()

	e.eng.away.Store(true)
	for i, path := range []string{"/IpamDriver.RequestAddress", "/NetworkDriver.Join", "/IpamDriver.RequestAddress"} {
		body := bodyRequestAddress
		if path == "/NetworkDriver.Join" {
			body = bodyJoin
		}
		if msg := e.fails(path, body); !strings.Contains(msg, "Docker's API does not answer") || !strings.Contains(msg, "vxnet starts a container with a restart policy") {
			t.Errorf("call %d, %s while the API is away: %q", i, path, msg)
		}
	}
	if r := e.c.reservations(); len(r) != 0 {
		t.Errorf("reserved while the API was away: %v", r)
	}
	refused := "failed to create endpoint keeper on network web: remote: " + errEngineAway.Error()
	e.eng.stopped(t, "id-keeper", "keeper", "web", "always", refused)
	e.eng.stopped(t, "id-unless", "unless", netID, "unless-stopped", refused) // named by the network's ID
	e.eng.stopped(t, "id-once", "once", "web", "no", refused)
	e.eng.stopped(t, "id-broken", "broken", "web", "always", "exec: \"nope\": executable file not found")
	e.eng.stopped(t, "id-bridged", "bridged", "bridge", "always", refused)
	e.eng.away.Store(false)
	testutil.WaitFor(t, "the refused containers to be started", waitLong, func() bool { return len(e.eng.startedIDs()) >= 2 })
	e.close() // the sweep is over
	if got := e.eng.startedIDs(); !reflect.DeepEqual(got, []string{"id-keeper", "id-unless"}) {
		t.Errorf("started %v, want id-keeper and id-unless alone", got)
	}
}

// TestTie_bySubnet: a Docker network whose subnet is a vxnet network's of
// another name is that network, as its create took it (Docker's names are
// each host's own): its containers get that network's addresses; one
// whose options differ is refused at create, naming the vxnet network.
func TestTie_bySubnet(t *testing.T) {
	e := newEnv(t, nil, "host-a", nil)
	e.c.addNetwork(t, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24", Driver: "overlay"})
	msg := e.fails("/NetworkDriver.CreateNetwork", createNetworkBody(`{}`, `"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{},"com.docker.network.internal":true`, ipv4Data, "[]"))
	if !strings.Contains(msg, `--subnet 10.0.9.0/24 is vxnet network "web"'s`) || !strings.Contains(msg, "--internal") {
		t.Errorf("an --internal Docker network on web's subnet: %q", msg)
	}
	e.ok("/NetworkDriver.CreateNetwork", bodyCreateNetwork, nil)
	e.eng.storeNetwork(t, netID, "web-here", "10.0.9.0/24", "10.0.9.1", false, webOptions)
	var addr requestAddressResponse
	e.ok("/IpamDriver.RequestAddress", bodyRequestAddress, &addr)
	if r := e.c.reservations(); len(r) != 1 || !strings.HasPrefix(r[0], "web ") {
		t.Errorf("reservations %v, want one on web", r)
	}
	if _, ok := e.c.network("web-here"); ok {
		t.Error("a vxnet network web-here was made beside web")
	}
}

// TestDescribe_options: an option error points at Docker's spelling of a
// vxnet option, but for encrypted, which Docker takes as it is.
func TestDescribe_options(t *testing.T) {
	enc := describe(&api.Error{Code: api.CodeBadRequest, Field: "options", Message: "option encrypted: needs an encrypted cluster"}).Error()
	blk := describe(&api.Error{Code: api.CodeBadRequest, Field: "options", Message: `option "block-size": invalid`}).Error()
	if strings.Contains(enc, "-o vxnet.KEY") || !strings.Contains(blk, "-o vxnet.KEY=VALUE") {
		t.Errorf("encrypted: %q (want no -o vxnet.KEY hint); block-size: %q (want it)", enc, blk)
	}
}
