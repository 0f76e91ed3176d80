package hns

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the builders' output")

// goldenNetworkID stands for the ID HNS gave the network.
const goldenNetworkID = "0A1B2C3D-0000-4000-8000-000000000001"

// goldenCase is one driver's network and endpoints, written to
// testdata/<driver>.golden.json.
type goldenCase struct {
	spec NetworkSpec
	eps  []EndpointSpec
}

// golden is a golden file's content.
type golden struct {
	Network   Network
	Endpoints []Endpoint
}

var (
	subnet9 = netip.MustParsePrefix("10.0.9.0/24")
	gw9     = netip.MustParseAddr("10.0.9.1")
	vtep1   = netip.MustParseAddr("198.18.0.1")
	vtep2   = netip.MustParseAddr("198.18.0.2")
)

func goldenCases() map[string]goldenCase {
	local := EndpointSpec{Name: "api", Addr: netip.MustParsePrefix("10.0.9.2/24"), MAC: "02-42-0a-00-09-02"}
	with := func(f func(*EndpointSpec)) EndpointSpec { e := local; f(&e); return e }
	return map[string]goldenCase{
		"nat": {
			spec: NetworkSpec{Name: "web", Type: NAT, Subnet: subnet9, Gateway: gw9},
			eps: []EndpointSpec{with(func(e *EndpointSpec) {
				e.Publish = []PortMap{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostPort: 53, ContainerPort: 53, Proto: "udp"}}
			})},
		},
		"transparent": {
			spec: NetworkSpec{Name: "lan", Type: Transparent, Subnet: subnet9, Gateway: gw9, Adapter: "Ethernet 2", Persistent: true},
			eps:  []EndpointSpec{local},
		},
		"l2bridge": {
			spec: NetworkSpec{Name: "pods", Type: L2Bridge, Subnet: subnet9, Gateway: gw9, Adapter: "Ethernet"},
			eps:  []EndpointSpec{with(func(e *EndpointSpec) { e.MAC = "02:42:0a:00:09:02" })},
		},
		"l2tunnel": {
			spec: NetworkSpec{Name: "sdn", Type: L2Tunnel, VNI: 5001, Subnet: subnet9, Gateway: gw9, Adapter: "Ethernet"},
			eps: []EndpointSpec{with(func(e *EndpointSpec) {
				e.ACL = []ACLRule{
					{Allow: true, Remote: netip.MustParsePrefix("10.0.9.3/32"), Port: 5201, Proto: "tcp"},
					{Allow: false, Remote: netip.MustParsePrefix("10.0.8.0/24"), Port: 53},
					{Allow: true, Remote: netip.MustParsePrefix("0.0.0.0/0")},
				}
			})},
		},
		"overlay": {
			spec: NetworkSpec{Name: "ov", Type: Overlay, VNI: 4097, Subnet: subnet9, Gateway: gw9, VTEP: vtep1},
			eps: []EndpointSpec{local, {Name: "db", Addr: netip.MustParsePrefix("10.0.9.3/24"), MAC: "02-42-0A-00-09-03",
				Remote: true, VTEP: vtep2}},
		},
	}
}

// build runs the builders on c.
func (c goldenCase) build(t testing.TB) golden {
	t.Helper()
	n, err := BuildNetwork(c.spec)
	if err != nil {
		t.Fatalf("BuildNetwork(%+v): %v", c.spec, err)
	}
	g := golden{Network: n}
	for _, e := range c.eps {
		ep, err := BuildEndpoint(c.spec, goldenNetworkID, e)
		if err != nil {
			t.Fatalf("BuildEndpoint(%s, %+v): %v", c.spec.Name, e, err)
		}
		g.Endpoints = append(g.Endpoints, ep)
	}
	return g
}

func TestBuild_golden(t *testing.T) {
	for driver, c := range goldenCases() {
		t.Run(driver, func(t *testing.T) {
			got, err := json.MarshalIndent(c.build(t), "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", driver+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the builders' output (go test -update rewrites it):\n%s", path, got)
			}
			// The golden document reads back into the model unchanged.
			var back golden
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.MarshalIndent(back, "", "\t")
			if !bytes.Equal(append(again, '\n'), want) {
				t.Errorf("%s does not round-trip through the model:\n%s", path, again)
			}
		})
	}
}

func TestBuildNetwork_errors(t *testing.T) {
	ov := NetworkSpec{Name: "ov", Type: Overlay, VNI: 4096, Subnet: subnet9, Gateway: gw9, VTEP: vtep1}
	tests := map[string]struct {
		mod  func(*NetworkSpec)
		want string
	}{
		"overlay VNI 100":          {func(s *NetworkSpec) { s.VNI = 100 }, `network "ov": VNI 100 out of range 4096-65535`},
		"overlay VNI 70000":        {func(s *NetworkSpec) { s.VNI = 70000 }, `network "ov": VNI 70000 out of range 4096-65535`},
		"l2tunnel VNI 100":         {func(s *NetworkSpec) { s.Type, s.Adapter, s.VNI = L2Tunnel, "eth", 100 }, "VNI 100 out of range 4096-16777215"},
		"transparent no adapter":   {func(s *NetworkSpec) { s.Type = Transparent }, `network "ov": adapter is required for type Transparent`},
		"l2bridge no adapter":      {func(s *NetworkSpec) { s.Type = L2Bridge }, "adapter is required for type L2Bridge"},
		"gateway outside subnet":   {func(s *NetworkSpec) { s.Gateway = netip.MustParseAddr("10.1.0.1") }, "gateway 10.1.0.1 outside subnet 10.0.9.0/24"},
		"gateway other family":     {func(s *NetworkSpec) { s.Gateway = netip.MustParseAddr("fd00::1") }, "gateway fd00::1 outside subnet 10.0.9.0/24"},
		"gateway is subnet":        {func(s *NetworkSpec) { s.Gateway = netip.MustParseAddr("10.0.9.0") }, "gateway 10.0.9.0 is the address of subnet"},
		"no gateway":               {func(s *NetworkSpec) { s.Gateway = netip.Addr{} }, "gateway is required"},
		"unknown type":             {func(s *NetworkSpec) { s.Type = "Bridge" }, `unknown type "Bridge": want L2Bridge, L2Tunnel, NAT, Overlay, Transparent`},
		"invalid subnet":           {func(s *NetworkSpec) { s.Subnet = netip.Prefix{} }, `invalid subnet "invalid Prefix"`},
		"no name":                  {func(s *NetworkSpec) { s.Name = "" }, "network name is empty"},
		"overlay without VTEP":     {func(s *NetworkSpec) { s.VTEP = netip.Addr{} }, `VTEP "invalid IP"`},
		"overlay VTEP unspecified": {func(s *NetworkSpec) { s.VTEP = netip.IPv4Unspecified() }, `VTEP "0.0.0.0"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := ov
			tt.mod(&s)
			if _, err := BuildNetwork(s); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildNetwork(%+v) error = %v, want containing %q", s, err, tt.want)
			}
		})
	}
}

func TestBuildNetwork_normalises(t *testing.T) {
	n, err := BuildNetwork(NetworkSpec{Name: "v6", Type: NAT, Subnet: netip.MustParsePrefix("fd00:9::5/64"),
		Gateway: netip.MustParseAddr("fd00:9::1"), Adapter: "ignored", VNI: 7})
	if err != nil {
		t.Fatal(err)
	}
	s := n.Ipams[0].Subnets[0]
	if s.IpAddressPrefix != "fd00:9::/64" || s.Routes[0] != (Route{NextHop: "fd00:9::1", DestinationPrefix: "::/0"}) {
		t.Errorf("subnet %+v", s)
	}
	if len(n.Policies) != 0 || len(s.Policies) != 0 || n.Persistent() {
		t.Errorf("nat takes no adapter or VSID and is not persistent by default: %+v", n)
	}
	mapped := netip.AddrFrom16(gw9.As16())
	if _, err := BuildNetwork(NetworkSpec{Name: "m", Type: NAT, Subnet: subnet9, Gateway: mapped}); err != nil {
		t.Errorf("an IPv4-mapped gateway: %v", err)
	}
}

func TestBuildEndpoint_errors(t *testing.T) {
	nat := NetworkSpec{Name: "web", Type: NAT, Subnet: subnet9, Gateway: gw9}
	ov := NetworkSpec{Name: "ov", Type: Overlay, VNI: 4097, Subnet: subnet9, Gateway: gw9, VTEP: vtep1}
	l2t := NetworkSpec{Name: "sdn", Type: L2Tunnel, Subnet: subnet9, Gateway: gw9, Adapter: "Ethernet"}
	ep := EndpointSpec{Name: "api", Addr: netip.MustParsePrefix("10.0.9.2/24"), MAC: "02-42-0a-00-09-02"}
	tests := map[string]struct {
		net  NetworkSpec
		mod  func(*EndpointSpec)
		want string
	}{
		"bad MAC":            {nat, func(e *EndpointSpec) { e.MAC = "02-42-0a-00-09" }, `endpoint "api" on network "web": MAC "02-42-0a-00-09": want six bytes`},
		"MAC EUI-64":         {nat, func(e *EndpointSpec) { e.MAC = "02:42:0a:00:09:02:03:04" }, `MAC "02:42:0a:00:09:02:03:04"`},
		"MAC dotted":         {nat, func(e *EndpointSpec) { e.MAC = "0242.0a00.0902" }, `MAC "0242.0a00.0902"`},
		"MAC multicast":      {nat, func(e *EndpointSpec) { e.MAC = "01:00:5e:00:00:01" }, `MAC "01:00:5e:00:00:01" is a multicast address`},
		"MAC zero":           {nat, func(e *EndpointSpec) { e.MAC = "00:00:00:00:00:00" }, "is all zeros"},
		"port-map protocol":  {nat, func(e *EndpointSpec) { e.Publish = []PortMap{{80, 80, "sctp"}} }, `publish 80:80: protocol "sctp": want tcp or udp`},
		"port-map zero":      {nat, func(e *EndpointSpec) { e.Publish = []PortMap{{0, 80, "tcp"}} }, "publish 0:80/tcp: ports must be 1-65535"},
		"publish on overlay": {ov, func(e *EndpointSpec) { e.Publish = []PortMap{{80, 80, "tcp"}} }, "publish: type Overlay publishes no ports"},
		"address outside":    {nat, func(e *EndpointSpec) { e.Addr = netip.MustParsePrefix("10.0.8.2/24") }, "address 10.0.8.2/24 outside subnet 10.0.9.0/24"},
		"address gateway":    {nat, func(e *EndpointSpec) { e.Addr = netip.MustParsePrefix("10.0.9.1/24") }, "address 10.0.9.1/24 is the gateway"},
		"address invalid":    {nat, func(e *EndpointSpec) { e.Addr = netip.Prefix{} }, `invalid address "invalid Prefix"`},
		"no name":            {nat, func(e *EndpointSpec) { e.Name = "" }, `network "web": endpoint name is empty`},
		"remote on nat":      {nat, func(e *EndpointSpec) { e.Remote, e.VTEP = true, vtep2 }, "remote endpoints need type Overlay, not NAT"},
		"remote no VTEP":     {ov, func(e *EndpointSpec) { e.Remote = true }, `VTEP "invalid IP"`},
		"remote no MAC":      {ov, func(e *EndpointSpec) { e.Remote, e.VTEP, e.MAC = true, vtep2, "" }, "MAC is required for a remote endpoint"},
		"ACL on nat":         {nat, func(e *EndpointSpec) { e.ACL = []ACLRule{{Remote: subnet9}} }, "acl: type NAT takes no ACL rules"},
		"ACL protocol":       {l2t, func(e *EndpointSpec) { e.ACL = []ACLRule{{Remote: subnet9, Proto: "icmp"}} }, `acl rule 0: protocol "icmp"`},
		"ACL remote":         {l2t, func(e *EndpointSpec) { e.ACL = []ACLRule{{Remote: subnet9}, {}} }, `acl rule 1: invalid remote`},
		"ACL too many":       {l2t, func(e *EndpointSpec) { e.ACL = make([]ACLRule, MaxACLRules+1) }, "acl: 1001 rules, more than 1000"},
		"bad network":        {NetworkSpec{Name: "x", Type: NAT}, func(*EndpointSpec) {}, `network "x": invalid subnet`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := ep
			tt.mod(&e)
			if _, err := BuildEndpoint(tt.net, goldenNetworkID, e); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildEndpoint(%+v) error = %v, want containing %q", e, err, tt.want)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"02-42-0a-00-09-02": "02-42-0A-00-09-02",
		"02:42:0A:00:09:02": "02-42-0A-00-09-02",
	} {
		if got, err := normalizeMAC(in); err != nil || got != want {
			t.Errorf("normalizeMAC(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
