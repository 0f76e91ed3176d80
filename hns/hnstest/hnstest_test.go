package hnstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vxnet/vxnet/hns"
)

func network(t *testing.T, driver string, persistent bool) hns.Network {
	t.Helper()
	s := hns.NetworkSpec{Name: driver, Type: map[string]hns.NetworkType{"nat": hns.NAT, "overlay": hns.Overlay, "transparent": hns.Transparent, "l2bridge": hns.L2Bridge, "l2tunnel": hns.L2Tunnel}[driver], Subnet: netip.MustParsePrefix("10.0.9.0/24"),
		Gateway: netip.MustParseAddr("10.0.9.1"), Adapter: "Ethernet", VNI: 4097,
		VTEP: netip.MustParseAddr("198.18.0.1"), Persistent: persistent}
	n, err := hns.BuildNetwork(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// vxlanPort is the index of n's VxlanPort policy.
func vxlanPort(n *hns.Network) int {
	return slices.IndexFunc(n.Policies, func(p hns.NetworkPolicy) bool { return p.Type == hns.NetworkPolicyVxlanPort })
}

func endpoint(name, id, addr string) hns.Endpoint {
	return hns.Endpoint{Name: name, HostComputeNetwork: id, IpConfigurations: []hns.IpConfig{{IpAddress: addr, PrefixLength: 24}}}
}

func TestFake_ids(t *testing.T) {
	var f Fake
	guid := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
	n, err := f.CreateNetwork(network(t, "nat", false))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.CreateEndpoint(endpoint("e", n.ID, "10.0.9.2"))
	if err != nil {
		t.Fatal(err)
	}
	if !guid.MatchString(n.ID) || !guid.MatchString(e.ID) || n.ID == e.ID {
		t.Errorf("IDs %q %q, want distinct GUIDs", n.ID, e.ID)
	}
}

func TestFake_CreateNetwork_rejects(t *testing.T) {
	tests := map[string]struct {
		driver string
		mod    func(*hns.Network)
		want   string
	}{
		"route without next hop": {"nat", func(n *hns.Network) { n.Ipams[0].Subnets[0].Routes[0].NextHop = "" },
			`subnet "10.0.9.0/24": route to "0.0.0.0/0" has no next hop`},
		"no routes": {"l2bridge", func(n *hns.Network) { n.Ipams[0].Subnets[0].Routes = nil },
			`subnet "10.0.9.0/24": no route with a next hop`},
		"VSID 100": {"overlay", func(n *hns.Network) {
			n.Ipams[0].Subnets[0].Policies[0].Settings = json.RawMessage(`{"IsolationId":100}`)
		}, "VSID 100 out of range 4096-65535"},
		"VSID 70000": {"overlay", func(n *hns.Network) {
			n.Ipams[0].Subnets[0].Policies[0].Settings = json.RawMessage(`{"IsolationId":70000}`)
		}, "VSID 70000 out of range"},
		"overlay without VSID": {"overlay", func(n *hns.Network) { n.Ipams[0].Subnets[0].Policies = nil }, "no VSID policy"},
		"VxlanPort 8472": {"overlay", func(n *hns.Network) {
			n.Policies[vxlanPort(n)].Settings = json.RawMessage(`{"Port":8472}`)
		}, "VxlanPort 8472: want 4789"},
		"no VxlanPort": {"overlay", func(n *hns.Network) {
			n.Policies = slices.Delete(n.Policies, vxlanPort(n), vxlanPort(n)+1)
		}, "no VxlanPort policy"},
		"settings not JSON":  {"transparent", func(n *hns.Network) { n.Policies[0].Settings = json.RawMessage(`"x"`) }, "not a JSON object"},
		"unknown type":       {"nat", func(n *hns.Network) { n.Type = "Bridge" }, `unknown network type "Bridge"`},
		"no name":            {"nat", func(n *hns.Network) { n.Name = "" }, "network name is empty"},
		"bad subnet":         {"nat", func(n *hns.Network) { n.Ipams[0].Subnets[0].IpAddressPrefix = "10.0.9.0" }, "invalid prefix"},
		"policy without one": {"nat", func(n *hns.Network) { n.Policies = []hns.NetworkPolicy{{}} }, "policy without a type"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var f Fake
			n := network(t, tt.driver, false)
			tt.mod(&n)
			if _, err := f.CreateNetwork(n); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CreateNetwork error %v, want one containing %q", err, tt.want)
			}
			if nets, _ := f.Networks(); len(nets) != 0 {
				t.Errorf("a refused network was kept: %+v", nets)
			}
		})
	}
}

func TestFake_CreateEndpoint_rejects(t *testing.T) {
	var f Fake
	ov, err := f.CreateNetwork(network(t, "overlay", false))
	if err != nil {
		t.Fatal(err)
	}
	nat, err := f.CreateNetwork(network(t, "nat", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreateEndpoint(endpoint("a", ov.ID, "10.0.9.2")); err != nil {
		t.Fatal(err)
	}
	remote := endpoint("r", ov.ID, "10.0.9.3")
	remote.Flags = hns.EndpointFlagsRemoteEndpoint
	tests := map[string]struct {
		e    hns.Endpoint
		want string
	}{
		"no network":        {endpoint("x", "0000", "10.0.9.5"), `network "0000" does not exist`},
		"address taken":     {endpoint("b", ov.ID, "10.0.9.2"), `address 10.0.9.2 already taken by endpoint "a"`},
		"outside subnet":    {endpoint("b", ov.ID, "10.0.8.2"), "outside the subnets"},
		"bad address":       {endpoint("b", ov.ID, "ten"), `address "ten"`},
		"remote without PA": {remote, "without a ProviderAddress policy"},
		"namespace set":     {func() hns.Endpoint { e := endpoint("b", ov.ID, "10.0.9.4"); e.HostComputeNamespace = "ns"; return e }(), "read-only"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := f.CreateEndpoint(tt.e); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CreateEndpoint error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// The same address on another network is fine.
	if _, err := f.CreateEndpoint(endpoint("a", nat.ID, "10.0.9.2")); err != nil {
		t.Errorf("the same address on another network: %v", err)
	}
}

func TestFake_remoteFlagKept(t *testing.T) {
	var f Fake
	s := hns.NetworkSpec{Name: "ov", Type: hns.Overlay, VNI: 5000, Subnet: netip.MustParsePrefix("10.0.9.0/24"),
		Gateway: netip.MustParseAddr("10.0.9.1"), VTEP: netip.MustParseAddr("198.18.0.1")}
	n, _ := hns.BuildNetwork(s)
	n, err := f.CreateNetwork(n)
	if err != nil {
		t.Fatal(err)
	}
	e, err := hns.BuildEndpoint(s, n.ID, hns.EndpointSpec{Name: "r", Addr: netip.MustParsePrefix("10.0.9.3/24"),
		MAC: "02:42:0a:00:09:03", Remote: true, VTEP: netip.MustParseAddr("198.18.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreateEndpoint(e); err != nil {
		t.Fatal(err)
	}
	eps, _ := f.Endpoints()
	if len(eps) != 1 || !eps[0].Remote() || eps[0].MacAddress != "02-42-0A-00-09-03" {
		t.Errorf("endpoints %+v", eps)
	}
}

func TestFake_delete(t *testing.T) {
	var f Fake
	n, _ := f.CreateNetwork(network(t, "nat", false))
	e, _ := f.CreateEndpoint(endpoint("a", n.ID, "10.0.9.2"))
	if err := f.DeleteNetwork(n.ID); err == nil || !strings.Contains(err.Error(), "has 1 endpoints") {
		t.Errorf("deleting a network with endpoints: %v", err)
	}
	if err := f.DeleteEndpoint(e.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteEndpoint(e.ID); !errors.Is(err, hns.ErrNotFound) {
		t.Errorf("deleting a missing endpoint: %v, want ErrNotFound", err)
	}
	if err := f.DeleteNetwork(n.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteNetwork(n.ID); !errors.Is(err, hns.ErrNotFound) {
		t.Errorf("deleting a missing network: %v, want ErrNotFound", err)
	}
}

func TestFake_Restart(t *testing.T) {
	var f Fake
	gone, _ := f.CreateNetwork(network(t, "nat", false))
	kept, _ := f.CreateNetwork(network(t, "transparent", true))
	f.CreateEndpoint(endpoint("a", gone.ID, "10.0.9.2"))
	f.CreateEndpoint(endpoint("b", kept.ID, "10.0.9.2"))
	f.Restart()
	nets, _ := f.Networks()
	eps, _ := f.Endpoints()
	if len(nets) != 1 || nets[0].ID != kept.ID || len(eps) != 1 || eps[0].Name != "b" {
		t.Errorf("after Restart: networks %+v endpoints %+v", nets, eps)
	}
}

func TestFake_Fail(t *testing.T) {
	var f Fake
	boom := errors.New("boom")
	f.Fail(OpNetworks, boom)
	f.Fail(OpNetworks, boom)
	for i, want := range []error{boom, boom, nil} {
		if _, err := f.Networks(); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("call %d: %v, want %v", i, err, want)
		}
	}
	if got := f.Calls(OpNetworks); got != 3 {
		t.Errorf("Calls = %d, want 3", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Fail of an unknown operation did not panic")
		}
	}()
	f.Fail("Nope", boom)
}

// TestFake_copies: what a caller gave or got back can change without the
// fake's state changing.
func TestFake_copies(t *testing.T) {
	var f Fake
	in := network(t, "transparent", false)
	want := string(in.Policies[0].Settings)
	n, err := f.CreateNetwork(in)
	if err != nil {
		t.Fatal(err)
	}
	clear(in.Policies[0].Settings) // the caller's buffer
	clear(n.Policies[0].Settings)  // what it got back
	got, _ := f.Networks()
	clear(got[0].Policies[0].Settings) // a listing's
	again, _ := f.Networks()
	if s := string(again[0].Policies[0].Settings); s != want {
		t.Errorf("the fake shares memory with its callers: policy settings %q, want %q", s, want)
	}
}

// TestFake_concurrent runs every operation from several goroutines; with
// -race it checks the locking.
func TestFake_concurrent(t *testing.T) {
	var f Fake
	n, err := f.CreateNetwork(network(t, "nat", false))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				e, err := f.CreateEndpoint(endpoint(fmt.Sprint(g, "-", i), n.ID, fmt.Sprintf("10.0.9.%d", 2+g*25+i)))
				if err != nil {
					t.Error(err)
					return
				}
				f.Networks()
				f.Endpoints()
				if i%2 == 0 {
					if err := f.DeleteEndpoint(e.ID); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if eps, _ := f.Endpoints(); len(eps) != 8*10 {
		t.Errorf("%d endpoints, want 80", len(eps))
	}
}
