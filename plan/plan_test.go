package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/driver"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/tables"
)

var (
	vtep1 = netip.MustParseAddr("198.18.0.1") // this host, h1
	vtep2 = netip.MustParseAddr("198.18.0.2")
	vtep3 = netip.MustParseAddr("198.18.0.3")
)

// network is a row of driver on 10.0.N.0/24.
func network(name, driver string, n int, creator string, opts map[string]string) tables.Network {
	return tables.Network{Name: name, Driver: driver, VNI: uint32(4096 + n), Creator: creator, Options: opts,
		Subnet: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/24", n)), Gateway: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", n)),
		Created: time.Unix(int64(n), 0)}
}

// endpoint is a row of network on host (h1 is this host), at address
// 10.0.N.last.
func endpoint(network, name, host string, n, last int) tables.Endpoint {
	vtep := map[string]netip.Addr{"h1": vtep1, "h2": vtep2, "h3": vtep3}[host]
	return tables.Endpoint{Name: name, Network: network, Host: host, VTEP: vtep, MAC: vxlan.MAC{2, 0x42, 10, 0, byte(n), byte(last)},
		Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", n, last))}}
}

// input is h1 with the given rows; local endpoints get a port each.
func input(nets []tables.Network, eps []tables.Endpoint) Input {
	in := Input{Self: "h1", VTEP: vtep1, Networks: nets, Endpoints: eps, Local: map[string]Local{},
		Gateways: map[string]*dataplane.Port{}, Uplinks: map[string]*dataplane.Uplink{}}
	for _, ep := range eps {
		if ep.Host == "h1" {
			in.Local[ep.Key()] = Local{Port: new(dataplane.Port)}
		}
	}
	return in
}

func forwarding(st State, vni uint32) (dataplane.NetworkSpec, bool) {
	for _, s := range st.Forwarding {
		if s.VNI == vni {
			return s, true
		}
	}
	return dataplane.NetworkSpec{}, false
}

// reached describes how the switch reaches each endpoint of a network:
// "port" (local), a VTEP, or absent.
func reached(s dataplane.NetworkSpec) map[string]string {
	out := map[string]string{}
	for _, e := range s.Endpoints {
		how := "port"
		if e.Port == nil {
			how = e.VTEP.String()
		}
		out[e.Addrs[0].String()] = how
	}
	return out
}

func dnsNames(st State) map[string]bool {
	out := map[string]bool{}
	for _, e := range st.DNSEndpoints {
		out[e.Network+"/"+e.Name] = e.Local
	}
	return out
}

// TestMake_eachDriver: for one network of each driver, with an endpoint
// here and one on h2, what the switch, DNS and HNS get.
func TestMake_eachDriver(t *testing.T) {
	gwPort, up := new(dataplane.Port), new(dataplane.Uplink)
	tests := []struct {
		name    string
		net     tables.Network
		here    func(*Input)
		inTable bool              // the network is in the forwarding table
		reached map[string]string // by address: "port" or the VTEP
		dns     map[string]bool   // endpoint key → Local
		check   func(dataplane.NetworkSpec) string
		hnsType hns.NetworkType
		hnsEps  []string // HNS endpoint names, "r:" for remote ones
	}{
		{name: "overlay", net: network("ov", "overlay", 1, "h2", nil), inTable: true,
			reached: map[string]string{"10.0.1.2": "port", "10.0.1.3": "198.18.0.2"},
			dns:     map[string]bool{"ov/a": true, "ov/b": false},
			hnsType: hns.Overlay, hnsEps: []string{"a", "r:b"}},
		{name: "nat here", net: network("nt", "nat", 2, "h1", nil), inTable: true,
			here:    func(in *Input) { in.Gateways["nt"] = gwPort },
			reached: map[string]string{"10.0.2.2": "port", "10.0.2.3": "198.18.0.2"},
			dns:     map[string]bool{"nt/a": true, "nt/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.Gateway != gwPort {
					return "the gateway port is not the network's gateway"
				}
				return ""
			},
			hnsType: hns.NAT, hnsEps: []string{"a"}},
		{name: "nat of another host", net: network("nt", "nat", 2, "h2", nil), inTable: false, dns: map[string]bool{}},
		{name: "l2tunnel, policy elsewhere", net: network("tu", "l2tunnel", 3, "h2", map[string]string{"policy-host": "198.18.0.3", "policy-deny": "10.0.3.9:22/tcp"}), inTable: true,
			reached: map[string]string{"10.0.3.2": "port", "10.0.3.3": "198.18.0.2"},
			dns:     map[string]bool{"tu/a": true, "tu/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.PolicyVTEP != vtep3 || s.Policy != nil {
					return fmt.Sprintf("policy VTEP %v policy %v, want the policy host 198.18.0.3", s.PolicyVTEP, s.Policy)
				}
				return ""
			},
			hnsType: hns.L2Tunnel, hnsEps: []string{"a"}},
		{name: "l2tunnel, policy here", net: network("tu", "l2tunnel", 3, "h2", map[string]string{"policy-host": "198.18.0.1"}), inTable: true,
			reached: map[string]string{"10.0.3.2": "port", "10.0.3.3": "198.18.0.2"},
			dns:     map[string]bool{"tu/a": true, "tu/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.Policy == nil || s.PolicyVTEP.IsValid() {
					return "this host is the policy host but holds no policy"
				}
				return ""
			},
			hnsType: hns.L2Tunnel, hnsEps: []string{"a"}},
		{name: "transparent", net: network("tr", "transparent", 4, "h2", map[string]string{"uplink": "eth1"}), inTable: true,
			here:    func(in *Input) { in.Uplinks["eth1"] = up },
			reached: map[string]string{"10.0.4.2": "port"}, // h2's across the segment
			dns:     map[string]bool{"tr/a": true, "tr/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.Uplink != up || s.L2Bridge || s.Router != netip.MustParseAddr("10.0.4.1") {
					return fmt.Sprintf("uplink %p l2bridge %v router %v", s.Uplink, s.L2Bridge, s.Router)
				}
				return ""
			},
			hnsType: hns.Transparent, hnsEps: []string{"a"}},
		{name: "transparent, uplink missing here", net: network("tr", "transparent", 4, "h2", map[string]string{"uplink": "eth1"}), inTable: true,
			reached: map[string]string{"10.0.4.2": "port", "10.0.4.3": "198.18.0.2"}, // h2's through h2
			dns:     map[string]bool{"tr/a": true, "tr/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.Uplink != nil {
					return "an uplink that is not there"
				}
				return ""
			},
			hnsType: hns.Transparent, hnsEps: []string{"a"}},
		{name: "l2bridge", net: network("lb", "l2bridge", 5, "h2", map[string]string{"uplink": "eth2"}), inTable: true,
			here:    func(in *Input) { in.Uplinks["eth2"] = up },
			reached: map[string]string{"10.0.5.2": "port"},
			dns:     map[string]bool{"lb/a": true, "lb/b": false},
			check: func(s dataplane.NetworkSpec) string {
				if s.Uplink != up || !s.L2Bridge {
					return "not bridged on its uplink with the host's MAC"
				}
				return ""
			},
			hnsType: hns.L2Bridge, hnsEps: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := int(tt.net.VNI - 4096)
			in := input([]tables.Network{tt.net}, []tables.Endpoint{endpoint(tt.net.Name, "a", "h1", n, 2), endpoint(tt.net.Name, "b", "h2", n, 3)})
			in.HNS = true
			if tt.here != nil {
				tt.here(&in)
			}
			st := Make(in)
			s, ok := forwarding(st, tt.net.VNI)
			if ok != tt.inTable {
				t.Fatalf("in the forwarding table: %v, want %v (notes %v)", ok, tt.inTable, st.Notes)
			}
			if !ok {
				if len(st.DNSEndpoints) != 0 || len(st.HNSNetworks) != 0 {
					t.Errorf("a network not served here reached DNS (%v) or HNS (%v)", st.DNSEndpoints, st.HNSNetworks)
				}
				return
			}
			if got := reached(s); !reflect.DeepEqual(got, tt.reached) {
				t.Errorf("switch reaches %v, want %v", got, tt.reached)
			}
			if got := dnsNames(st); !reflect.DeepEqual(got, tt.dns) {
				t.Errorf("DNS endpoints %v, want %v", got, tt.dns)
			}
			if tt.check != nil {
				if msg := tt.check(s); msg != "" {
					t.Error(msg)
				}
			}
			if len(st.HNSNetworks) != 1 || st.HNSNetworks[0].Type != tt.hnsType || st.HNSNetworks[0].VTEP != vtep1 {
				t.Errorf("HNS networks %+v, want one of type %s", st.HNSNetworks, tt.hnsType)
			}
			var names []string
			for _, e := range st.HNSEndpoints[tt.net.Name] {
				if e.Remote {
					names = append(names, "r:"+e.Name)
				} else {
					names = append(names, e.Name)
				}
			}
			if !reflect.DeepEqual(names, tt.hnsEps) {
				t.Errorf("HNS endpoints %v, want %v", names, tt.hnsEps)
			}
		})
	}
}

// TestMake_leavesOut: what the plan leaves out, each with a note, and what
// it keeps of the rest.
func TestMake_leavesOut(t *testing.T) {
	a, b := network("a", "overlay", 1, "h2", nil), network("b", "overlay", 2, "h3", nil)
	b.VNI = a.VNI // created at once on both sides of a partition
	noVNI := network("c", "overlay", 3, "h2", nil)
	noVNI.VNI = 0
	unknown := network("d", "bridge", 4, "h2", nil)
	badOpts := network("e", "l2tunnel", 5, "h2", nil) // no policy-host
	remote := endpoint("a", "remote", "h2", 1, 5)
	mine := endpoint("a", "zlocal", "h1", 1, 5) // the same address, later by key
	stale := endpoint("a", "old", "h2", 1, 6)
	stale.VTEP = vtep1 // a row naming this host's VTEP, not from this host
	in := input([]tables.Network{a, b, noVNI, unknown, badOpts}, []tables.Endpoint{remote, mine, stale, endpoint("b", "x", "h3", 2, 2)})
	in.HNS = true
	st := Make(in)
	if len(st.Forwarding) != 1 || st.Forwarding[0].VNI != a.VNI {
		t.Fatalf("forwarding %+v: want network a only", st.Forwarding)
	}
	if got := reached(st.Forwarding[0]); !reflect.DeepEqual(got, map[string]string{"10.0.1.5": "198.18.0.2"}) {
		t.Errorf("switch reaches %v: want the endpoint first by key only, and no row naming this host's VTEP", got)
	}
	if got := dnsNames(st); !reflect.DeepEqual(got, map[string]bool{"a/remote": false}) {
		t.Errorf("DNS endpoints %v", got)
	}
	if len(st.HNSNetworks) != 1 || len(st.HNSEndpoints["a"]) != 1 || st.HNSEndpoints["a"][0].Name != "remote" {
		t.Errorf("HNS takes what the switch takes: networks %+v endpoints %+v", st.HNSNetworks, st.HNSEndpoints)
	}
	notes := fmt.Sprint(st.Notes)
	for _, want := range []string{"network b: shares VNI 4097 with network a", "network d: unknown driver", "network e: option policy-host is required",
		"endpoint a/zlocal@h1: claims an address endpoint remote@h2 holds"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %s lack %q", notes, want)
		}
	}
}

// TestMake_withoutHNS: nothing for HNS on a host without it.
func TestMake_withoutHNS(t *testing.T) {
	st := Make(input([]tables.Network{network("ov", "overlay", 1, "h2", nil)}, []tables.Endpoint{endpoint("ov", "a", "h1", 1, 2)}))
	if len(st.HNSNetworks) != 0 || len(st.HNSEndpoints) != 0 {
		t.Errorf("HNS specs without HNS: %+v %+v", st.HNSNetworks, st.HNSEndpoints)
	}
}

// TestMake_hnsEndpoints: a local HNS endpoint (no switch port) is in DNS
// and HNS but not the switch; nat's published ports and l2tunnel's policy
// reach HNS.
func TestMake_hnsEndpoints(t *testing.T) {
	nt := network("nt", "nat", 2, "h1", nil)
	tu := network("tu", "l2tunnel", 3, "h2", map[string]string{"policy-host": "198.18.0.3", "policy-deny": "10.0.3.9:22/tcp"})
	www := endpoint("nt", "www", "h1", 2, 2)
	www.Publish = []string{"8080:80/tcp"}
	t1 := endpoint("tu", "t1", "h1", 3, 2)
	in := input([]tables.Network{nt, tu}, []tables.Endpoint{www, t1})
	in.HNS = true
	in.Local["nt/www"] = Local{} // HNS forwards for it
	st := Make(in)
	if s, _ := forwarding(st, nt.VNI); len(s.Endpoints) != 0 {
		t.Errorf("the switch forwards for an HNS endpoint: %+v", s.Endpoints)
	}
	if !dnsNames(st)["nt/www"] {
		t.Error("the HNS endpoint is not in DNS as local")
	}
	if e := st.HNSEndpoints["nt"]; len(e) != 1 || len(e[0].Publish) != 1 || e[0].Publish[0].HostPort != 8080 {
		t.Errorf("nat HNS endpoint %+v: want its published port", e)
	}
	if e := st.HNSEndpoints["tu"]; len(e) != 1 || len(e[0].ACL) != 2 || e[0].ACL[1].Allow != true {
		t.Errorf("l2tunnel HNS endpoint %+v: want the deny rule and the default", e)
	}
}

// TestMake_dhcpRouter: the router a local endpoint's lease named is the
// network's router on this host, over --gateway.
func TestMake_dhcpRouter(t *testing.T) {
	tr := network("tr", "transparent", 4, "h2", map[string]string{"uplink": "eth1", "dhcp": "true"})
	ep := endpoint("tr", "a", "h1", 4, 50)
	ep.DHCP = &tables.DHCP{Server: "10.0.4.254", Router: "10.0.4.254"}
	in := input([]tables.Network{tr}, []tables.Endpoint{ep})
	in.Uplinks["eth1"] = new(dataplane.Uplink)
	s, _ := forwarding(Make(in), tr.VNI)
	if s.Router != netip.MustParseAddr("10.0.4.254") {
		t.Errorf("router %v, want the lease's 10.0.4.254", s.Router)
	}
}

// TestHostSide: gateways of this host's nat networks (internal ones not
// masqueraded), published ports of its endpoints, the uplinks needed once
// each.
func TestHostSide(t *testing.T) {
	mine, theirs := network("nt", "nat", 2, "h1", nil), network("nt2", "nat", 3, "h2", nil)
	internal := network("in", "nat", 4, "h1", nil)
	internal.Internal = true
	tr := network("tr", "transparent", 5, "h2", map[string]string{"uplink": "eth1"})
	lb := network("lb", "l2bridge", 6, "h2", map[string]string{"uplink": "eth1"})
	www := endpoint("nt", "www", "h1", 2, 2)
	www.Publish = []string{"8080:80/tcp", "53:53/udp"}
	other := endpoint("nt2", "x", "h2", 3, 2)
	other.Publish = []string{"9090:90/tcp"}
	h := HostSide(input([]tables.Network{mine, theirs, internal, tr, lb}, []tables.Endpoint{www, other}))
	if len(h.Gateways) != 2 || h.Gateways[0].Name != "in" || h.Gateways[0].Masquerade || h.Gateways[1].Name != "nt" || !h.Gateways[1].Masquerade {
		t.Errorf("gateways %+v: want in (not masqueraded) and nt", h.Gateways)
	}
	if len(h.Published) != 2 || h.Published[0].HostPort != 8080 || h.Published[1].Proto != "udp" || h.Published[0].Addr != netip.MustParseAddr("10.0.2.2") {
		t.Errorf("published %+v: want this host's endpoint's two ports", h.Published)
	}
	if !reflect.DeepEqual(h.Uplinks, []string{"eth1"}) {
		t.Errorf("uplinks %v, want eth1 once", h.Uplinks)
	}
}

// TestHostSide_overlayEgress: an overlay network gets a masqueraded
// gateway on the hosts with endpoints of it, unless it is internal; its
// endpoints' published ports are published on their host.
func TestHostSide_overlayEgress(t *testing.T) {
	ov, closed, elsewhere := network("ov", "overlay", 1, "h2", nil), network("closed", "overlay", 2, "h2", nil), network("far", "overlay", 3, "h1", nil)
	closed.Internal = true
	web := endpoint("ov", "web", "h1", 1, 2)
	web.Publish = []string{"8080:80/tcp"}
	eps := []tables.Endpoint{web, endpoint("closed", "db", "h1", 2, 2), endpoint("far", "x", "h2", 3, 2)}
	h := HostSide(input([]tables.Network{ov, closed, elsewhere}, eps))
	if len(h.Gateways) != 1 || h.Gateways[0].Name != "ov" || !h.Gateways[0].Masquerade || h.Gateways[0].Gateway != netip.MustParseAddr("10.0.1.1") {
		t.Errorf("gateways %+v: want ov's alone (internal: none; no endpoint here: none), masqueraded", h.Gateways)
	}
	if len(h.Published) != 1 || h.Published[0].HostPort != 8080 || h.Published[0].Addr != netip.MustParseAddr("10.0.1.2") {
		t.Errorf("published %+v: want web's 8080", h.Published)
	}
}

// TestHostSide_handedOverDNS: the host sends the DNS queries of this
// host's handed-over endpoints (Docker's containers) leaving through a
// gateway to vxnet's resolver there (DNSFrom), never other hosts' or
// vxnet's own endpoints'; a closed network with such endpoints gets a
// gateway for their DNS alone, unless its gateway is a segment's router.
func TestHostSide_handedOverDNS(t *testing.T) {
	ov, closed, seg := network("ov", "overlay", 1, "h2", nil), network("closed", "overlay", 2, "h2", nil),
		network("seg", "transparent", 3, "h1", map[string]string{"uplink": "eth1"})
	closed.Internal, seg.Internal = true, true
	quiet := network("quiet", "overlay", 4, "h2", nil)
	quiet.Internal = true
	docker := func(e tables.Endpoint) tables.Endpoint { e.Handover = true; return e }
	eps := []tables.Endpoint{docker(endpoint("ov", "a", "h1", 1, 3)), endpoint("ov", "b", "h1", 1, 2), docker(endpoint("ov", "c", "h2", 1, 4)),
		docker(endpoint("closed", "d", "h1", 2, 2)), docker(endpoint("seg", "e", "h1", 3, 2)), endpoint("quiet", "f", "h1", 4, 2)}
	h := HostSide(input([]tables.Network{ov, closed, seg, quiet}, eps))
	want := []hostnet.Gateway{
		{Name: "closed", Subnet: closed.Subnet, Gateway: closed.Gateway, DNSFrom: []netip.Addr{netip.MustParseAddr("10.0.2.2")}, DNSOnly: true},
		{Name: "ov", Subnet: ov.Subnet, Gateway: ov.Gateway, Masquerade: true, DNSFrom: []netip.Addr{netip.MustParseAddr("10.0.1.3")}},
	}
	if !reflect.DeepEqual(h.Gateways, want) {
		t.Errorf("gateways\n%+v\nwant\n%+v", h.Gateways, want)
	}
}

// TestClosedGateway: only an internal network whose driver gives its
// hosts a gateway when open, and whose gateway is vxnet's own, gets one
// for DNS alone.
func TestClosedGateway(t *testing.T) {
	for _, c := range []struct {
		driver   string
		opts     map[string]string
		internal bool
		want     bool
	}{
		{"overlay", nil, true, true},
		{"overlay", nil, false, false},
		{"nat", nil, true, false},
		{"l2tunnel", map[string]string{"policy-host": "198.18.0.9"}, true, false},
		{"transparent", map[string]string{"uplink": "eth1"}, true, false},
		{"l2bridge", map[string]string{"uplink": "eth1"}, true, false},
	} {
		n := network("n", c.driver, 1, "h2", c.opts)
		n.Internal = c.internal
		d, err := driver.Get(c.driver)
		if err != nil {
			t.Fatal(err)
		}
		if got := ClosedGateway(d, n); got != c.want {
			t.Errorf("%s internal=%v: %v, want %v", c.driver, c.internal, got, c.want)
		}
	}
}

// TestMake_sameRowsSamePlan: the plan depends on the rows, not on the
// order they come in: every host that sees the same rows plans the same.
func TestMake_sameRowsSamePlan(t *testing.T) {
	a, b := network("a", "overlay", 1, "h2", nil), network("b", "overlay", 2, "h3", nil)
	b.VNI = a.VNI
	eps := []tables.Endpoint{endpoint("a", "x", "h2", 1, 5), endpoint("a", "y", "h3", 1, 5), endpoint("a", "z", "h1", 1, 7),
		endpoint("b", "w", "h3", 2, 2), endpoint("a", "v", "h3", 1, 9)}
	want := Make(input([]tables.Network{a, b}, eps))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		nets := []tables.Network{a, b}
		shuffled := append([]tables.Endpoint(nil), eps...)
		r.Shuffle(len(nets), func(i, j int) { nets[i], nets[j] = nets[j], nets[i] })
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		in := input(nets, shuffled)
		got := Make(in)
		// Ports are per input: compare what the switch reaches and DNS.
		if !reflect.DeepEqual(reached(got.Forwarding[0]), reached(want.Forwarding[0])) || !reflect.DeepEqual(dnsNames(got), dnsNames(want)) ||
			!reflect.DeepEqual(got.DNSNetworks, want.DNSNetworks) || fmt.Sprint(got.Notes) != fmt.Sprint(want.Notes) {
			t.Fatalf("order %d planned differently:\n%+v\n%+v", i, got, want)
		}
	}
	_ = dns.ScopeGlobal
}

// TestMake_services: a vip-mode service becomes a service of its
// network's forwarding spec, its tasks the endpoints that joined it and
// are up, here and elsewhere, and its VIPs names in DNS; a dnsrr service
// and one of a network out of sight become neither.
func TestMake_services(t *testing.T) {
	nets := []tables.Network{network("web", "overlay", 9, "h1", nil)}
	a1, a2, a3 := endpoint("web", "a1", "h1", 9, 2), endpoint("web", "a2", "h2", 9, 3), endpoint("web", "a3", "h3", 9, 4)
	a1.Service, a2.Service, a3.Service = "api", "API", "api" // DNS names ignore case: one service
	a3.State = tables.StateDown
	db := endpoint("web", "db1", "h2", 9, 5)
	db.Service = "db"
	squat := endpoint("web", "squat", "h2", 9, 101) // holds what a service row names as its VIP
	in := input(nets, []tables.Endpoint{a1, a2, a3, db, squat})
	vip := netip.MustParseAddr("10.0.9.100")
	in.Services = []tables.Service{
		{Name: "api", Network: "web", Mode: tables.ModeVIP, VIPs: []netip.Addr{vip}, VIPHost: "h1"},
		{Name: "db", Network: "web", Mode: tables.ModeDNSRR},
		{Name: "x", Network: "elsewhere", Mode: tables.ModeVIP, VIPs: []netip.Addr{netip.MustParseAddr("10.0.10.100")}},
		{Name: "held", Network: "web", Mode: tables.ModeVIP, VIPs: []netip.Addr{netip.MustParseAddr("10.0.9.101")}},
	}
	counters := &dataplane.ServiceCounters{}
	in.ServiceCounters = map[string]*dataplane.ServiceCounters{"web/api": counters}
	st := Make(in)
	s, _ := forwarding(st, 4096+9)
	if len(s.Services) != 1 {
		t.Fatalf("services in the spec: %+v, want api alone", s.Services)
	}
	svc := s.Services[0]
	var tasks []string
	for _, ts := range svc.Tasks {
		tasks = append(tasks, ts.Addrs[0].String())
	}
	if svc.Name != "web/api" || !slices.Equal(svc.VIPs, []netip.Addr{vip}) || svc.Counters != counters ||
		!slices.Equal(tasks, []string{"10.0.9.2", "10.0.9.3"}) {
		t.Errorf("api: %+v, tasks %v", svc, tasks)
	}
	if _, err := dataplane.NewTable(st.Forwarding); err != nil {
		t.Errorf("the switch refuses the plan: %v", err)
	}
	if len(st.DNSNetworks) != 1 || !slices.Equal(st.DNSNetworks[0].VIPs["api"], []netip.Addr{vip}) || len(st.DNSNetworks[0].VIPs) != 1 {
		t.Errorf("DNS networks: %+v (a service whose VIP an endpoint holds has no name)", st.DNSNetworks)
	}
	if !slices.ContainsFunc(st.Notes, func(n Note) bool {
		return strings.Contains(n.Reason, "service held: VIP 10.0.9.101 is endpoint web/squat@h2's address")
	}) {
		t.Errorf("notes %v: want the service whose VIP an endpoint holds left out, and why", st.Notes)
	}
}

// TestMeshPlan: this host's mesh row (no task here) gets the network a
// gateway here that holds the mesh address, SNATs to it what goes to the
// VIPs of services with published ports, and DNATs those ports to the
// VIP; the switch takes the address as the gateway's; other hosts' mesh
// rows are reached at their VTEP; no mesh row has a name in DNS.
func TestMeshPlan(t *testing.T) {
	web := network("web", "overlay", 9, "h2", nil)
	self, other := endpoint("web", "vxmesh-h1", "h1", 9, 7), endpoint("web", "vxmesh-h2", "h2", 9, 8)
	self.Mesh, other.Mesh = true, true
	task := endpoint("web", "t", "h2", 9, 2)
	task.Service = "www"
	in := input([]tables.Network{web}, []tables.Endpoint{self, other, task})
	delete(in.Local, self.Key()) // a mesh row has no port
	vip := netip.MustParseAddr("10.0.9.100")
	in.Services = []tables.Service{{Name: "www", Network: "web", Mode: tables.ModeVIP, VIPs: []netip.Addr{vip},
		Ports: []tables.PublishedPort{{Published: 8080, Target: 80, Proto: "tcp"}}}}
	h := HostSide(in)
	if len(h.Gateways) != 1 || !slices.Equal(h.Gateways[0].MeshFrom, []netip.Addr{netip.MustParseAddr("10.0.9.7")}) ||
		!slices.Equal(h.Gateways[0].MeshTo, []netip.Addr{vip}) {
		t.Fatalf("gateways %+v: want web's, with the mesh address and the VIP", h.Gateways)
	}
	if len(h.Published) != 1 || h.Published[0].HostPort != 8080 || h.Published[0].ContainerPort != 80 || h.Published[0].Addr != vip {
		t.Errorf("published %+v: want 8080 to the VIP's 80", h.Published)
	}
	in.Gateways["web"] = new(dataplane.Port)
	st := Make(in)
	s, _ := forwarding(st, 4096+9)
	if !slices.Contains(s.GatewayAddrs, netip.MustParseAddr("10.0.9.7")) {
		t.Errorf("gateway addresses %v: want the mesh address", s.GatewayAddrs)
	}
	if got := reached(s); got["10.0.9.8"] != vtep2.String() || got["10.0.9.7"] != "" {
		t.Errorf("the switch reaches %v: h2's mesh address at its VTEP, this host's not as an endpoint", got)
	}
	for name := range dnsNames(st) {
		if strings.Contains(name, "vxmesh") {
			t.Errorf("a mesh row in DNS: %s", name)
		}
	}
}

// TestMake_heldNames: a down host's endpoints whose names are held answer
// in DNS under their names and aliases, and nowhere else: not in the
// switch, not as a service's tasks, and not where something in sight has
// taken the name (in any case), an alias or an address since.
func TestMake_heldNames(t *testing.T) {
	nets := []tables.Network{network("ov", "overlay", 1, "h2", nil)}
	live := endpoint("ov", "a", "h1", 1, 2)
	live.Aliases = []string{"shared"}
	in := input(nets, []tables.Endpoint{live})
	held := endpoint("ov", "db", "h3", 1, 5)
	held.Aliases, held.Service = []string{"database", "SHARED"}, "back"
	sameName := endpoint("ov", "A", "h3", 1, 6)  // a's name in another case
	sameAddr := endpoint("ov", "c", "h3", 1, 2)  // a's address
	noNet := endpoint("gone", "d", "h3", 1, 7)   // a network not in sight
	downState := endpoint("ov", "e", "h3", 1, 8) // down on its host already
	downState.State = tables.StateDown
	in.Held = []tables.Endpoint{sameAddr, held, sameName, noNet, downState}
	st := Make(in)
	if got, want := dnsNames(st), map[string]bool{"ov/a": true, "ov/db": false}; !reflect.DeepEqual(got, want) {
		t.Fatalf("DNS endpoints %v, want %v", got, want)
	}
	for _, e := range st.DNSEndpoints {
		if e.Name == "db" && (!slices.Equal(e.Aliases, []string{"database"}) || e.Service != "" || len(e.Addrs) != 1 || e.Addrs[0] != held.Addrs[0].Addr()) {
			t.Errorf("held db in DNS as %+v: want aliases [database] (shared is a's), no service, its address", e)
		}
	}
	s, _ := forwarding(st, 4097)
	if r := reached(s); len(r) != 1 || r["10.0.1.2"] != "port" {
		t.Errorf("the switch reaches %v: want a alone (held endpoints are not forwarded to)", r)
	}
}

// TestMake_readdressing: an endpoint whose host waits for new addresses
// is forwarded to by no host, answers no name, and claims no address.
func TestMake_readdressing(t *testing.T) {
	nets := []tables.Network{network("ov", "overlay", 1, "h2", nil)}
	waiting := endpoint("ov", "a", "h2", 1, 3)
	waiting.Addrs, waiting.State = nil, tables.StateReaddressing
	now := endpoint("ov", "b", "h3", 1, 3) // the address waiting lost, handed out again
	st := Make(input(nets, []tables.Endpoint{waiting, now}))
	if got := dnsNames(st); !reflect.DeepEqual(got, map[string]bool{"ov/b": false}) {
		t.Errorf("DNS endpoints %v, want b alone", got)
	}
	s, _ := forwarding(st, 4097)
	if r := reached(s); len(r) != 1 || r["10.0.1.3"] != vtep3.String() || len(s.Endpoints) != 1 {
		t.Errorf("the switch reaches %v (%d endpoints): want 10.0.1.3 at h3 alone", r, len(s.Endpoints))
	}
}
