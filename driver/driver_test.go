package driver

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/hns"
)

func TestGet(t *testing.T) {
	for _, name := range []string{"overlay", "nat", "l2tunnel", "transparent", "l2bridge"} {
		d, err := Get(name)
		if err != nil || d.Name() != name {
			t.Errorf("Get(%q) = %v, %v", name, d, err)
		}
	}
	if _, err := Get("bridge"); err == nil || !strings.Contains(err.Error(), `unknown driver "bridge"`) || !strings.Contains(err.Error(), "l2bridge, l2tunnel, nat, overlay, transparent") {
		t.Errorf("unknown driver: %v", err)
	}
	nat, _ := Get("nat")
	if nat.Scope() != ScopeLocal || !nat.Publishes(Network{}) {
		t.Error("nat must be local and publish ports")
	}
	if ov, _ := Get("overlay"); ov.Scope() != ScopeGlobal {
		t.Error("overlay must be global")
	}
}

// TestGateways: which hosts give a network a gateway, masqueraded or not,
// and whether its containers get out and publish ports.
func TestGateways(t *testing.T) {
	open, internal := Network{Name: "n"}, Network{Name: "n", Internal: true}
	tests := []struct {
		driver             string
		n                  Network
		h                  GatewayHere
		gw, masq, out, pub bool
	}{
		{"nat", open, GatewayHere{Creator: true}, true, true, true, true},
		{"nat", internal, GatewayHere{Creator: true}, true, false, false, true},
		{"nat", open, GatewayHere{Local: true}, false, true, true, true}, // another host's
		{"overlay", open, GatewayHere{Local: true}, true, true, true, true},
		{"overlay", open, GatewayHere{Creator: true}, false, true, true, true}, // no endpoint here
		{"overlay", internal, GatewayHere{Local: true}, false, true, false, false},
		{"l2tunnel", Network{Name: "n", Options: map[string]string{"policy-host": "198.18.0.3"}}, GatewayHere{VTEP: netip.MustParseAddr("198.18.0.3")}, true, true, true, false},
		{"l2tunnel", Network{Name: "n", Options: map[string]string{"policy-host": "198.18.0.3"}}, GatewayHere{VTEP: netip.MustParseAddr("198.18.0.1"), Local: true}, false, true, true, false},
		{"l2tunnel", Network{Name: "n", Internal: true, Options: map[string]string{"policy-host": "198.18.0.3"}}, GatewayHere{VTEP: netip.MustParseAddr("198.18.0.3")}, false, true, false, false},
		{"transparent", open, GatewayHere{Local: true}, false, false, true, false},
		{"l2bridge", internal, GatewayHere{Local: true}, false, false, false, false},
	}
	for _, tt := range tests {
		d, _ := Get(tt.driver)
		gw, how := d.HostGateway(tt.n, tt.h)
		masq := how.Masquerade
		if gw != tt.gw || (gw && masq != tt.masq) || how.Routed != (tt.driver == "nat") || d.Egress(tt.n) != tt.out || d.Publishes(tt.n) != tt.pub {
			t.Errorf("%s internal=%v %+v: gateway %v masquerade %v egress %v publishes %v", tt.driver, tt.n.Internal, tt.h, gw, masq, d.Egress(tt.n), d.Publishes(tt.n))
		}
	}
}

func TestNAT_containerRoutes(t *testing.T) {
	d, _ := Get("nat")
	n := Network{Name: "n", Subnet: netip.MustParsePrefix("172.30.0.0/24")}
	if r := d.ContainerRoutes(n); len(r) != 1 || r[0].String() != "0.0.0.0/0" {
		t.Errorf("routes %v, want a default route", r)
	}
	n.Internal = true
	if r := d.ContainerRoutes(n); len(r) != 0 {
		t.Errorf("internal network got routes %v", r)
	}
}

func TestParsePublish(t *testing.T) {
	good := map[string]string{
		"8080:80":     "8080:80/tcp",
		"8080:80/tcp": "8080:80/tcp",
		"53:53/UDP":   "53:53/udp",
		"443":         "443:443/tcp",
	}
	for in, want := range good {
		p, err := ParsePublish(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePublish(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	bad := map[string]string{
		"8080:80/sctp": `protocol "sctp"`,
		"x:80":         `host port "x"`,
		"8080:0":       `container port "0"`,
		"70000:80":     `host port "70000"`,
		"":             `host port ""`,
	}
	for in, want := range bad {
		if _, err := ParsePublish(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "publish") {
			t.Errorf("ParsePublish(%q) error %v, want one naming %s", in, err, want)
		}
	}
}

func TestL2TunnelPolicy(t *testing.T) {
	host, p, err := L2TunnelPolicy(map[string]string{"policy-host": "198.18.0.3", "policy-deny": "10.0.9.3:5201/tcp", "policy-allow": "10.0.9.0/24", "policy-default": "deny"})
	if err != nil || host.String() != "198.18.0.3" || p.Default || len(p.Rules) != 2 || !p.Rules[0].Allow || p.Rules[1].Allow {
		t.Fatalf("got %v %+v %v", host, p, err)
	}
	for opts, want := range map[*map[string]string]string{
		{}:                    "policy-host is required",
		{"policy-host": "h3"}: "policy-host=\"h3\"",
		{"policy-host": "198.18.0.3", "policy-default": "x"}: "policy-default=\"x\"",
		{"policy-host": "198.18.0.3", "policy-deny": "a:1"}:  "option policy-deny: policy rule \"a:1\"",
	} {
		if _, _, err := L2TunnelPolicy(*opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error saying %s", *opts, err, want)
		}
	}
}

func TestUplinkName(t *testing.T) {
	if n, err := UplinkName("transparent", map[string]string{"uplink": "eth0"}); err != nil || n != "eth0" {
		t.Errorf("got %q %v", n, err)
	}
	if _, err := UplinkName("l2bridge", nil); err == nil || !strings.Contains(err.Error(), "option uplink is required for l2bridge") {
		t.Errorf("missing uplink: %v", err)
	}
	if _, err := UplinkName("l2bridge", map[string]string{"uplink": "a-very-long-interface"}); err == nil || !strings.Contains(err.Error(), `uplink="a-very-long-interface"`) {
		t.Errorf("long name: %v", err)
	}
	if _, err := UplinkName("transparent", map[string]string{"uplink": "eth0;rm -rf"}); runtime.GOOS == "linux" && (err == nil || !strings.Contains(err.Error(), `no ' '`)) {
		t.Errorf("a name no interface has: %v", err)
	}
}

func TestUplinkOptions(t *testing.T) {
	tr, _ := Get("transparent")
	l2, _ := Get("l2bridge")
	if err := tr.CheckOptions(map[string]string{"uplink": "eth0", "dhcp": "yes"}); err == nil || !strings.Contains(err.Error(), `dhcp="yes"`) {
		t.Errorf("dhcp=yes: %v", err)
	}
	dhcp := Network{Options: map[string]string{"dhcp": "true"}}
	if !tr.LeasesByDHCP(dhcp) || tr.LeasesByDHCP(Network{}) || l2.LeasesByDHCP(dhcp) {
		t.Error("LeasesByDHCP wrong")
	}
	own, rest := SplitOptions(l2, map[string]string{"uplink": "eth0", "dhcp": "true"})
	if own["uplink"] != "eth0" || rest["dhcp"] != "true" {
		t.Errorf("l2bridge takes no dhcp option: own %v rest %v", own, rest)
	}
}

// TestDecisions: what each driver decides for a network on this host —
// the switch's entry, how other hosts' endpoints are reached, HNS's type —
// given one network and one host.
func TestDecisions(t *testing.T) {
	vtep, other := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	gwPort, up := new(dataplane.Port), new(dataplane.Uplink)
	subnet, gw := netip.MustParsePrefix("10.0.9.0/24"), netip.MustParseAddr("10.0.9.1")
	tests := []struct {
		driver    string
		opts      map[string]string
		here      Here
		check     func(dataplane.NetworkSpec) bool
		uplink    string
		vxlan     bool
		subnetReq bool
		hnsType   hns.NetworkType
	}{
		{"overlay", nil, Here{VTEP: vtep}, func(s dataplane.NetworkSpec) bool { return s.Gateway == nil && s.Uplink == nil && s.Policy == nil }, "", true, false, hns.Overlay},
		{"nat", nil, Here{VTEP: vtep, Gateway: gwPort}, func(s dataplane.NetworkSpec) bool { return s.Gateway == gwPort }, "", true, false, hns.NAT},
		{"l2tunnel", map[string]string{"policy-host": "198.18.0.1"}, Here{VTEP: vtep}, func(s dataplane.NetworkSpec) bool { return s.Policy != nil && !s.PolicyVTEP.IsValid() }, "", true, false, hns.L2Tunnel},
		{"l2tunnel", map[string]string{"policy-host": "198.18.0.2"}, Here{VTEP: vtep}, func(s dataplane.NetworkSpec) bool { return s.Policy == nil && s.PolicyVTEP == other }, "", true, false, hns.L2Tunnel},
		{"transparent", map[string]string{"uplink": "eth1"}, Here{VTEP: vtep, Uplink: up}, func(s dataplane.NetworkSpec) bool { return s.Uplink == up && !s.L2Bridge && s.Router == gw }, "eth1", false, true, hns.Transparent},
		{"transparent", map[string]string{"uplink": "eth1", "dhcp": "true"}, Here{VTEP: vtep, Uplink: up, DHCPRouter: netip.MustParseAddr("10.0.9.254")}, func(s dataplane.NetworkSpec) bool { return s.Router == netip.MustParseAddr("10.0.9.254") }, "eth1", false, true, hns.Transparent},
		{"transparent", map[string]string{"uplink": "eth1"}, Here{VTEP: vtep}, func(s dataplane.NetworkSpec) bool { return s.Uplink == nil && !s.Router.IsValid() }, "eth1", true, true, hns.Transparent},
		{"l2bridge", map[string]string{"uplink": "eth2"}, Here{VTEP: vtep, Uplink: up}, func(s dataplane.NetworkSpec) bool { return s.Uplink == up && s.L2Bridge }, "eth2", false, true, hns.L2Bridge},
	}
	for _, tt := range tests {
		d, err := Get(tt.driver)
		if err != nil {
			t.Fatal(err)
		}
		n := Network{Name: "n", VNI: 4242, Subnet: subnet, Gateway: gw, Options: tt.opts}
		s, err := d.Forwarding(n, tt.here)
		if err != nil || s.VNI != 4242 || len(s.Subnets) != 1 || !tt.check(s) {
			t.Errorf("%s %v: Forwarding = %+v, %v", tt.driver, tt.opts, s, err)
		}
		if u, err := d.Uplink(n); u != tt.uplink || err != nil {
			t.Errorf("%s: Uplink = %q, %v; want %q", tt.driver, u, err, tt.uplink)
		}
		if d.ReachesOverVXLAN(tt.here) != tt.vxlan || d.NeedsSubnet() != tt.subnetReq {
			t.Errorf("%s: ReachesOverVXLAN %v NeedsSubnet %v", tt.driver, d.ReachesOverVXLAN(tt.here), d.NeedsSubnet())
		}
		if h := d.HNSNetwork(n, tt.here); h.Type != tt.hnsType || h.VNI != 4242 || h.VTEP != vtep || h.Adapter != tt.opts["uplink"] {
			t.Errorf("%s: HNSNetwork = %+v", tt.driver, h)
		}
		remote := hns.EndpointSpec{Name: "r", Remote: true, VTEP: other}
		if _, ok := d.HNSEndpoint(n, remote); ok != (tt.driver == "overlay") {
			t.Errorf("%s: HNS takes another host's endpoint: %v", tt.driver, ok)
		}
		local, ok := d.HNSEndpoint(n, hns.EndpointSpec{Name: "l", Addr: netip.MustParsePrefix("10.0.9.2/24")})
		if !ok || (len(local.ACL) > 0) != (tt.driver == "l2tunnel") {
			t.Errorf("%s: HNSEndpoint(local) = %+v, %v", tt.driver, local, ok)
		}
	}
	// An l2tunnel network with bad options stays out of the table.
	d, _ := Get("l2tunnel")
	if _, err := d.Forwarding(Network{Name: "n", VNI: 1}, Here{}); err == nil || !strings.Contains(err.Error(), "policy-host") {
		t.Errorf("l2tunnel without policy-host: %v", err)
	}
}

// TestAll: every driver is listed once, the default first, and describes
// itself in lines that fit the help.
func TestAll(t *testing.T) {
	if All()[0].Name() != Default || len(All()) != len(Names()) {
		t.Errorf("All() %v: want each of %v once, %s first", All(), Names(), Default)
	}
	for _, d := range All() {
		for _, line := range strings.Split(d.Help(), "\n") {
			if line == "" || len(line) > 70 {
				t.Errorf("%s: help line %q is empty or longer than 70 characters", d.Name(), line)
			}
		}
	}
}
