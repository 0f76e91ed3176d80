package hns_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hns/hnstest"
)

var (
	vtep1 = netip.MustParseAddr("198.18.0.1")
	vtep2 = netip.MustParseAddr("198.18.0.2")
	vtep3 = netip.MustParseAddr("198.18.0.3")
)

// typeOf is the HNS type each driver's networks take.
var typeOf = map[string]hns.NetworkType{"nat": hns.NAT, "transparent": hns.Transparent, "l2bridge": hns.L2Bridge,
	"l2tunnel": hns.L2Tunnel, "overlay": hns.Overlay}

// spec returns a network of driver on 10.0.N.0/24.
func spec(name, driver string, n int) hns.NetworkSpec {
	s := hns.NetworkSpec{Name: name, Type: typeOf[driver],
		Subnet:  netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/24", n)),
		Gateway: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", n))}
	switch driver {
	case "overlay":
		s.VNI, s.VTEP = uint32(4096+n), vtep1
	case "l2tunnel":
		s.VNI, s.Adapter = uint32(4096+n), "Ethernet"
	case "transparent", "l2bridge":
		s.Adapter = "Ethernet"
	}
	return s
}

// local returns a local endpoint at 10.0.N.host.
func local(name string, n, host int) hns.EndpointSpec {
	return hns.EndpointSpec{Name: name, Addr: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", n, host)),
		MAC: fmt.Sprintf("02-42-0a-00-%02x-%02x", n, host)}
}

// remote returns a remote endpoint at 10.0.N.host behind vtep.
func remote(name string, n, host int, vtep netip.Addr) hns.EndpointSpec {
	e := local(name, n, host)
	e.Remote, e.VTEP = true, vtep
	return e
}

// state is what the fake holds, as "network: endpoint endpoint ..." lines
// sorted, with a '*' after remote endpoints.
func state(t *testing.T, f *hnstest.Fake) []string {
	t.Helper()
	nets, err := f.Networks()
	if err != nil {
		t.Fatal(err)
	}
	eps, err := f.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nets {
		line := n.Name + " " + string(n.Type) + ":"
		var names []string
		for _, e := range eps {
			if e.HostComputeNetwork == n.ID {
				name := e.Name
				if e.Remote() {
					name += "*"
				}
				names = append(names, name)
			}
		}
		slices.Sort(names)
		out = append(out, line+" "+strings.Join(names, " "))
	}
	slices.Sort(out)
	return out
}

func wantState(t *testing.T, f *hnstest.Fake, want ...string) {
	t.Helper()
	if got := state(t, f); !slices.Equal(got, want) {
		t.Errorf("HNS holds\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// mutations counts the calls that change HNS.
func mutations(f *hnstest.Fake) int {
	return f.Calls(hnstest.OpCreateNetwork) + f.Calls(hnstest.OpDeleteNetwork) +
		f.Calls(hnstest.OpCreateEndpoint) + f.Calls(hnstest.OpDeleteEndpoint)
}

func TestProgrammer_Sync_eachDriver(t *testing.T) {
	tests := map[string]struct {
		driver string
		typ    hns.NetworkType
		eps    []hns.EndpointSpec
		want   string
	}{
		"nat": {"nat", hns.NAT, []hns.EndpointSpec{func() hns.EndpointSpec {
			e := local("api", 1, 2)
			e.Publish = []hns.PortMap{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
			return e
		}()}, "vxnet-n NAT: vxnet-n-api"},
		"transparent": {"transparent", hns.Transparent, []hns.EndpointSpec{local("api", 1, 2)}, "vxnet-n Transparent: vxnet-n-api"},
		"l2bridge":    {"l2bridge", hns.L2Bridge, []hns.EndpointSpec{local("api", 1, 2)}, "vxnet-n L2Bridge: vxnet-n-api"},
		"l2tunnel": {"l2tunnel", hns.L2Tunnel, []hns.EndpointSpec{func() hns.EndpointSpec {
			e := local("api", 1, 2)
			e.ACL = []hns.ACLRule{{Allow: false, Remote: netip.MustParsePrefix("10.0.1.3/32"), Port: 22, Proto: "tcp"}}
			return e
		}()}, "vxnet-n L2Tunnel: vxnet-n-api"},
		"overlay": {"overlay", hns.Overlay, []hns.EndpointSpec{local("api", 1, 2), remote("db", 1, 3, vtep2)},
			"vxnet-n Overlay: vxnet-n-api vxnet-n-db*"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := &hnstest.Fake{}
			p := hns.NewProgrammer(f, nil)
			if err := p.Sync([]hns.NetworkSpec{spec("n", tt.driver, 1)}, map[string][]hns.EndpointSpec{"n": tt.eps}); err != nil {
				t.Fatal(err)
			}
			wantState(t, f, tt.want)
		})
	}
}

func TestProgrammer_Sync_twiceIsNoOp(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("a", "nat", 1), spec("b", "overlay", 2), spec("c", "l2bridge", 3), spec("d", "l2tunnel", 4), spec("e", "transparent", 5)}
	eps := map[string][]hns.EndpointSpec{
		"a": {local("x", 1, 2)},
		"b": {local("x", 2, 2), remote("y", 2, 3, vtep2), remote("z", 2, 4, vtep3)},
		"c": {local("x", 3, 2)},
	}
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	if got := mutations(f); got != 5+5 {
		t.Errorf("first Sync made %d changes, want 10 (5 networks, 5 endpoints)", got)
	}
	before, lists := mutations(f), f.Calls(hnstest.OpNetworks)
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	if got := mutations(f) - before; got != 0 {
		t.Errorf("second Sync made %d changes, want none", got)
	}
	if got := f.Calls(hnstest.OpNetworks) - lists; got != 1 {
		t.Errorf("second Sync listed networks %d times, want once", got)
	}
}

func TestProgrammer_Sync_remoteEndpointsFollowGossip(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("ov", "overlay", 9)}
	steps := []struct {
		name string
		eps  []hns.EndpointSpec
		want string
	}{
		{"one remote", []hns.EndpointSpec{local("a", 9, 2), remote("b", 9, 3, vtep2)}, "vxnet-ov Overlay: vxnet-ov-a vxnet-ov-b*"},
		{"a second host", []hns.EndpointSpec{local("a", 9, 2), remote("b", 9, 3, vtep2), remote("c", 9, 4, vtep3)},
			"vxnet-ov Overlay: vxnet-ov-a vxnet-ov-b* vxnet-ov-c*"},
		// b goes and d takes its address in the same Sync: the delete
		// must come first, or HNS refuses the address.
		{"address reused", []hns.EndpointSpec{local("a", 9, 2), remote("d", 9, 3, vtep3), remote("c", 9, 4, vtep3)},
			"vxnet-ov Overlay: vxnet-ov-a vxnet-ov-c* vxnet-ov-d*"},
		{"c's host moved", []hns.EndpointSpec{local("a", 9, 2), remote("d", 9, 3, vtep3), remote("c", 9, 4, vtep2)},
			"vxnet-ov Overlay: vxnet-ov-a vxnet-ov-c* vxnet-ov-d*"},
		{"all remotes gone", []hns.EndpointSpec{local("a", 9, 2)}, "vxnet-ov Overlay: vxnet-ov-a"},
	}
	for _, st := range steps {
		if err := p.Sync(nets, map[string][]hns.EndpointSpec{"ov": st.eps}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		wantState(t, f, st.want)
	}
	// Only what changed was touched: a once, b, c twice (its host moved), d.
	if c, d := f.Calls(hnstest.OpCreateEndpoint), f.Calls(hnstest.OpDeleteEndpoint); c != 5 || d != 4 {
		t.Errorf("%d endpoints created, %d deleted; want 5 and 4", c, d)
	}
}

func TestProgrammer_Sync_providerAddressFollowsHost(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("ov", "overlay", 9)}
	for _, vtep := range []netip.Addr{vtep2, vtep3} {
		if err := p.Sync(nets, map[string][]hns.EndpointSpec{"ov": {remote("b", 9, 3, vtep)}}); err != nil {
			t.Fatal(err)
		}
		eps, _ := f.Endpoints()
		if len(eps) != 1 || !strings.Contains(string(eps[0].Policies[0].Settings), vtep.String()) {
			t.Errorf("after moving to %s: %+v", vtep, eps)
		}
	}
}

func TestProgrammer_Sync_afterRestart(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	keep := spec("lan", "transparent", 2)
	keep.Persistent = true
	nets := []hns.NetworkSpec{spec("ov", "overlay", 1), keep}
	eps := map[string][]hns.EndpointSpec{"ov": {local("a", 1, 2), remote("b", 1, 3, vtep2)}, "lan": {local("a", 2, 2)}}
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	f.Restart()
	wantState(t, f, "vxnet-lan Transparent: vxnet-lan-a")
	created := f.Calls(hnstest.OpCreateNetwork)
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, "vxnet-lan Transparent: vxnet-lan-a", "vxnet-ov Overlay: vxnet-ov-a vxnet-ov-b*")
	if got := f.Calls(hnstest.OpCreateNetwork) - created; got != 1 {
		t.Errorf("Sync after a restart created %d networks, want the one HNS forgot", got)
	}
}

func TestProgrammer_Sync_changes(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nat := spec("web", "nat", 1)
	api := local("api", 1, 2)
	sync := func(s hns.NetworkSpec, e hns.EndpointSpec) {
		t.Helper()
		if err := p.Sync([]hns.NetworkSpec{s}, map[string][]hns.EndpointSpec{"web": {e}}); err != nil {
			t.Fatal(err)
		}
	}
	sync(nat, api)
	steps := []struct {
		name          string
		mod           func(*hns.NetworkSpec, *hns.EndpointSpec)
		nets, eps     int // creations expected
		deletedEps    int
		deletedNets   int
		wantEndpoints int
	}{
		{"port published", func(_ *hns.NetworkSpec, e *hns.EndpointSpec) {
			e.Publish = []hns.PortMap{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
		}, 0, 1, 1, 0, 1},
		{"port unpublished", func(_ *hns.NetworkSpec, e *hns.EndpointSpec) { e.Publish = nil }, 0, 1, 1, 0, 1},
		{"MAC changed", func(_ *hns.NetworkSpec, e *hns.EndpointSpec) { e.MAC = "02:42:0a:00:01:99" }, 0, 1, 1, 0, 1},
		{"MAC written another way", func(_ *hns.NetworkSpec, e *hns.EndpointSpec) { e.MAC = "02-42-0A-00-01-99" }, 0, 0, 0, 0, 1},
		{"made persistent", func(s *hns.NetworkSpec, _ *hns.EndpointSpec) { s.Persistent = true }, 1, 1, 1, 1, 1},
		{"gateway moved", func(s *hns.NetworkSpec, _ *hns.EndpointSpec) { s.Gateway = netip.MustParseAddr("10.0.1.254") }, 1, 1, 1, 1, 1},
		{"driver changed", func(s *hns.NetworkSpec, _ *hns.EndpointSpec) { s.Type, s.Adapter = hns.L2Bridge, "Ethernet" }, 1, 1, 1, 1, 1},
		{"adapter changed", func(s *hns.NetworkSpec, _ *hns.EndpointSpec) { s.Adapter = "Ethernet 2" }, 1, 1, 1, 1, 1},
	}
	s, e := nat, api
	for _, st := range steps {
		st.mod(&s, &e)
		cn, ce := f.Calls(hnstest.OpCreateNetwork), f.Calls(hnstest.OpCreateEndpoint)
		dn, de := f.Calls(hnstest.OpDeleteNetwork), f.Calls(hnstest.OpDeleteEndpoint)
		sync(s, e)
		got := [4]int{f.Calls(hnstest.OpCreateNetwork) - cn, f.Calls(hnstest.OpCreateEndpoint) - ce,
			f.Calls(hnstest.OpDeleteNetwork) - dn, f.Calls(hnstest.OpDeleteEndpoint) - de}
		if want := [4]int{st.nets, st.eps, st.deletedNets, st.deletedEps}; got != want {
			t.Errorf("%s: created networks, endpoints, deleted networks, endpoints = %v, want %v", st.name, got, want)
		}
		if eps, _ := f.Endpoints(); len(eps) != st.wantEndpoints {
			t.Errorf("%s: %d endpoints, want %d", st.name, len(eps), st.wantEndpoints)
		}
	}
}

func TestProgrammer_Sync_removesOnlyVxnet(t *testing.T) {
	f := &hnstest.Fake{}
	foreign, err := f.CreateNetwork(hns.Network{Name: "nat", Type: hns.NAT, Ipams: []hns.Ipam{{Subnets: []hns.Subnet{{
		IpAddressPrefix: "172.20.0.0/16", Routes: []hns.Route{{NextHop: "172.20.0.1", DestinationPrefix: "0.0.0.0/0"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreateEndpoint(hns.Endpoint{Name: "docker-ep", HostComputeNetwork: foreign.ID,
		IpConfigurations: []hns.IpConfig{{IpAddress: "172.20.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("a", "nat", 1), spec("b", "overlay", 2)}
	eps := map[string][]hns.EndpointSpec{"a": {local("x", 1, 2)}, "b": {local("x", 2, 2), remote("y", 2, 3, vtep2)}}
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	// A foreign endpoint on one of ours is left alone too.
	nl, _ := f.Networks()
	if _, err := f.CreateEndpoint(hns.Endpoint{Name: "other", HostComputeNetwork: nl[1].ID,
		IpConfigurations: []hns.IpConfig{{IpAddress: "10.0.1.99"}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(nets[1:], map[string][]hns.EndpointSpec{"b": {local("x", 2, 2)}}); err == nil ||
		!strings.Contains(err.Error(), `network "a": not deleted: endpoints remain`) {
		t.Errorf("network a still has a foreign endpoint: Sync error %v", err)
	}
	wantState(t, f, "nat NAT: docker-ep", "vxnet-a NAT: other", "vxnet-b Overlay: vxnet-b-x")
	if err := p.Sync(nil, nil); err == nil {
		t.Error("want an error for network a, which HNS keeps")
	}
	wantState(t, f, "nat NAT: docker-ep", "vxnet-a NAT: other")
}

func TestProgrammer_Sync_goesOnPastErrors(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("a", "nat", 1), spec("b", "overlay", 2), spec("c", "l2bridge", 3)}
	eps := map[string][]hns.EndpointSpec{"a": {local("x", 1, 2)}, "b": {local("x", 2, 2)}, "c": {local("x", 3, 2)}}
	f.Fail(hnstest.OpCreateNetwork, errors.New("HNS is busy"))
	err := p.Sync(nets, eps)
	if err == nil || !strings.Contains(err.Error(), `hns: network "a": create: HNS is busy`) {
		t.Fatalf("Sync error %v, want one naming network a", err)
	}
	if strings.Contains(err.Error(), `"b"`) || strings.Contains(err.Error(), `"c"`) {
		t.Errorf("only network a failed: %v", err)
	}
	wantState(t, f, "vxnet-b Overlay: vxnet-b-x", "vxnet-c L2Bridge: vxnet-c-x")
	if err := p.Sync(nets, eps); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, "vxnet-a NAT: vxnet-a-x", "vxnet-b Overlay: vxnet-b-x", "vxnet-c L2Bridge: vxnet-c-x")
}

func TestProgrammer_Sync_errors(t *testing.T) {
	bad := spec("bad", "overlay", 4)
	bad.VNI = 100
	tests := map[string]struct {
		fail  string // operation to fail once
		nets  []hns.NetworkSpec
		eps   map[string][]hns.EndpointSpec
		want  []string
		state []string
		spec  bool // every error is a SpecError (else none is)
	}{
		"invalid network spec": {nets: []hns.NetworkSpec{spec("a", "nat", 1), bad}, want: []string{`network "bad": VNI 100`},
			state: []string{"vxnet-a NAT: "}, spec: true},
		"invalid endpoint spec": {nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			eps:   map[string][]hns.EndpointSpec{"a": {local("x", 1, 2), local("y", 2, 2)}},
			want:  []string{`endpoint "y" on network "a": address 10.0.2.2/24 outside subnet`},
			state: []string{"vxnet-a NAT: vxnet-a-x"}, spec: true},
		"endpoint create fails": {fail: hnstest.OpCreateEndpoint, nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			eps:   map[string][]hns.EndpointSpec{"a": {local("x", 1, 2), local("y", 1, 3)}},
			want:  []string{`endpoint "x" on network "a": create: injected`},
			state: []string{"vxnet-a NAT: vxnet-a-y"}},
		"endpoints of an unknown network": {nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			eps:   map[string][]hns.EndpointSpec{"zz": {local("x", 1, 2)}},
			want:  []string{`endpoints for network "zz"`},
			state: []string{"vxnet-a NAT: "}, spec: true},
		"network wanted twice": {nets: []hns.NetworkSpec{spec("a", "nat", 1), spec("a", "nat", 2)},
			want: []string{`network "a": wanted twice`}, state: []string{"vxnet-a NAT: "}, spec: true},
		"endpoint wanted twice": {nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			eps:  map[string][]hns.EndpointSpec{"a": {local("x", 1, 2), local("x", 1, 3)}},
			want: []string{`endpoint "x" on network "a": wanted twice`}, state: []string{"vxnet-a NAT: vxnet-a-x"}, spec: true},
		"list fails": {fail: hnstest.OpNetworks, nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			want: []string{"hns: list networks: injected"}},
		"list endpoints fails": {fail: hnstest.OpEndpoints, nets: []hns.NetworkSpec{spec("a", "nat", 1)},
			want: []string{"hns: list endpoints: injected"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := &hnstest.Fake{}
			if tt.fail != "" {
				f.Fail(tt.fail, errors.New("injected"))
			}
			err := hns.NewProgrammer(f, nil).Sync(tt.nets, tt.eps)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Sync error %v, want one containing %q", err, w)
				}
			}
			wantState(t, f, tt.state...)
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var se *hns.SpecError
				if errors.As(e, &se) != tt.spec {
					t.Errorf("error %q: SpecError %v, want %v", e, !tt.spec, tt.spec)
				}
			}
		})
	}
}

func TestProgrammer_Sync_invalidSpecLeavesNetwork(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	s := spec("ov", "overlay", 1)
	if err := p.Sync([]hns.NetworkSpec{s}, map[string][]hns.EndpointSpec{"ov": {local("a", 1, 2)}}); err != nil {
		t.Fatal(err)
	}
	s.VNI = 70000
	if err := p.Sync([]hns.NetworkSpec{s}, nil); err == nil || !strings.Contains(err.Error(), "VNI 70000") {
		t.Errorf("Sync error %v, want one naming VNI 70000", err)
	}
	wantState(t, f, "vxnet-ov Overlay: vxnet-ov-a")
}

func TestProgrammer_Sync_deleteOfMissingIsNoError(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("a", "nat", 1)}
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"a": {local("x", 1, 2)}}); err != nil {
		t.Fatal(err)
	}
	f.Fail(hnstest.OpDeleteEndpoint, fmt.Errorf("element not found: %w", hns.ErrNotFound))
	if err := p.Sync(nets, nil); err != nil {
		t.Errorf("an endpoint already gone is no error: %v", err)
	}
}

// TestProgrammer_Cleanup: a new run removes the endpoints named vxnet-…
// of a previous one, on its networks and others, and leaves other
// endpoints and every network.
func TestProgrammer_Cleanup(t *testing.T) {
	f := &hnstest.Fake{}
	foreign, err := f.CreateNetwork(hns.Network{Name: "nat", Type: hns.NAT, Ipams: []hns.Ipam{{Subnets: []hns.Subnet{{
		IpAddressPrefix: "172.20.0.0/16", Routes: []hns.Route{{NextHop: "172.20.0.1", DestinationPrefix: "0.0.0.0/0"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"docker-ep", "vxnet-stale"} {
		if _, err := f.CreateEndpoint(hns.Endpoint{Name: name, HostComputeNetwork: foreign.ID,
			IpConfigurations: []hns.IpConfig{{IpAddress: fmt.Sprintf("172.20.0.%d", i+2)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A previous run's networks and endpoints.
	old := hns.NewProgrammer(f, nil)
	if err := old.Sync([]hns.NetworkSpec{spec("a", "nat", 1), spec("b", "overlay", 2)},
		map[string][]hns.EndpointSpec{"a": {local("x", 1, 2)}, "b": {local("x", 2, 2), remote("y", 2, 3, vtep2)}}); err != nil {
		t.Fatal(err)
	}
	if err := hns.NewProgrammer(f, nil).Cleanup(); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, "nat NAT: docker-ep", "vxnet-a NAT: ", "vxnet-b Overlay: ")
}

func TestProgrammer_Cleanup_goesOnPastErrors(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	if err := p.Sync([]hns.NetworkSpec{spec("a", "nat", 1), spec("b", "nat", 2)},
		map[string][]hns.EndpointSpec{"a": {local("x", 1, 2)}, "b": {local("x", 2, 2)}}); err != nil {
		t.Fatal(err)
	}
	f.Fail(hnstest.OpDeleteEndpoint, errors.New("in use"))
	err := p.Cleanup()
	if err == nil || !strings.Contains(err.Error(), `endpoint "vxnet-a-x": delete`) {
		t.Errorf("Cleanup error %v, want one naming endpoint vxnet-a-x", err)
	}
	wantState(t, f, "vxnet-a NAT: vxnet-a-x", "vxnet-b NAT: ")
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, "vxnet-a NAT: ", "vxnet-b NAT: ")
}

// TestProgrammer_Sync_attachesNamespaces: an endpoint with a namespace (a
// CNI runtime's pod) is attached to it once created, one made before it
// got a namespace is attached in place, a second Sync attaches nothing
// again, and one attached to another namespace is made again.
func TestProgrammer_Sync_attachesNamespaces(t *testing.T) {
	f := &hnstest.Fake{}
	p := hns.NewProgrammer(f, nil)
	nets := []hns.NetworkSpec{spec("n", "overlay", 1)}
	a, b := local("a", 1, 2), local("b", 1, 3)
	a.Namespace = "ns-a"
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b}}); err != nil {
		t.Fatal(err)
	}
	nsOf := func() map[string]string {
		eps, _ := f.Endpoints()
		m := map[string]string{}
		for _, e := range eps {
			m[e.Name] = e.HostComputeNamespace
		}
		return m
	}
	if got := nsOf(); got["vxnet-n-a"] != "ns-a" || got["vxnet-n-b"] != "" {
		t.Fatalf("namespaces %v", got)
	}
	b.Namespace = "ns-b"
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b}}); err != nil {
		t.Fatal(err)
	}
	if got := nsOf(); got["vxnet-n-b"] != "ns-b" || f.Calls(hnstest.OpCreateEndpoint) != 2 {
		t.Errorf("b attached in place: namespaces %v, %d creates", got, f.Calls(hnstest.OpCreateEndpoint))
	}
	attaches := f.Calls(hnstest.OpAttachNamespace)
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b}}); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(hnstest.OpAttachNamespace) - attaches; got != 0 {
		t.Errorf("a second Sync attached %d times", got)
	}
	// An endpoint its runtime attached (vxnet attaches none) is kept.
	c := local("c", 1, 4)
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b, c}}); err != nil {
		t.Fatal(err)
	}
	_, byName := f.ByName()
	if err := f.AttachNamespace(byName["vxnet-n-c"].ID, "runtime-ns"); err != nil {
		t.Fatal(err)
	}
	creates := f.Calls(hnstest.OpCreateEndpoint)
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b, c}}); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(hnstest.OpCreateEndpoint) - creates; got != 0 || nsOf()["vxnet-n-c"] != "runtime-ns" {
		t.Errorf("an endpoint its runtime attached: %d creates, namespaces %v", got, nsOf())
	}
	a.Namespace = "ns-a2" // the pod's sandbox made again
	if err := p.Sync(nets, map[string][]hns.EndpointSpec{"n": {a, b, c}}); err != nil {
		t.Fatal(err)
	}
	if got := nsOf(); got["vxnet-n-a"] != "ns-a2" {
		t.Errorf("a moved to a new namespace: %v", got)
	}
}
