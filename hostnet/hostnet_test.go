package hostnet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestGatewayDevice(t *testing.T) {
	a, b := GatewayDevice("web"), GatewayDevice("db")
	if a == b || len(a) > 15 || !strings.HasPrefix(a, GatewayPrefix) {
		t.Errorf("device names %q %q", a, b)
	}
}

func TestRuleset(t *testing.T) {
	nets := []Gateway{
		{Name: "b", Subnet: netip.MustParsePrefix("172.30.2.0/24"), Gateway: netip.MustParseAddr("172.30.2.1"), Masquerade: true, Routed: true},
		{Name: "a", Subnet: netip.MustParsePrefix("172.30.1.0/24"), Gateway: netip.MustParseAddr("172.30.1.1"), Routed: true},
	}
	nets = append(nets, Gateway{Name: "v6", Subnet: netip.MustParsePrefix("fd00:9::/64"), Gateway: netip.MustParseAddr("fd00:9::1"), Masquerade: true})
	nets[0].DNSFrom = []netip.Addr{netip.MustParseAddr("172.30.2.5"), netip.MustParseAddr("172.30.2.6")}
	nets = append(nets, Gateway{Name: "closed", Subnet: netip.MustParsePrefix("172.30.3.0/24"), Gateway: netip.MustParseAddr("172.30.3.1"),
		DNSFrom: []netip.Addr{netip.MustParseAddr("172.30.3.9")}, DNSOnly: true},
		Gateway{Name: "closed6", Subnet: netip.MustParsePrefix("fd00:3::/64"), Gateway: netip.MustParseAddr("fd00:3::1"),
			DNSFrom: []netip.Addr{netip.MustParseAddr("fd00:3::9")}, DNSOnly: true})
	pubs := []Published{{HostPort: 8443, ContainerPort: 443, Proto: "tcp", Network: "v6", Endpoint: "web6", Addr: netip.MustParseAddr("fd00:9::2")},
		{HostPort: 8080, ContainerPort: 80, Proto: "tcp", Network: "b", Endpoint: "web", Addr: netip.MustParseAddr("172.30.2.2")}}
	rs := ruleset(nets, pubs, Guard{VXLANPort: 4789, GossipPort: 7946}, true)
	for _, want := range []string{
		`ip saddr 172.30.2.0/24 oifname != "vxg-*" masquerade comment "b"`,
		`fib daddr type local tcp dport 8080 dnat to 172.30.2.2:80 comment "b/web"`,
		`iifname "` + GatewayDevice("b") + `" oifname "` + GatewayDevice("b") + `" ip daddr { 172.30.2.2 } ct status dnat masquerade comment "b/hairpin"`,
		`iifname "` + GatewayDevice("v6") + `" oifname "` + GatewayDevice("v6") + `" ip6 daddr { fd00:9::2 } ct status dnat masquerade comment "v6/hairpin"`,
		`ip saddr 127.0.0.0/8 oifname "vxg-*" masquerade`,
		`ip6 saddr fd00:9::/64 oifname != "vxg-*" masquerade comment "v6"`,
		`ip6 daddr != ::1 fib daddr type local tcp dport 8443 dnat to [fd00:9::2]:443 comment "v6/web6"`,
		`iifname "vxg-*" udp dport 4789 drop`,
		`iifname "vxg-*" meta l4proto { tcp, udp } th dport 7946 drop`,
		`oifname "vxg-*" ct state established,related accept`,
		`oifname "vxg-*" ct status dnat accept`,
		`iifname { "` + GatewayDevice("a") + `", "` + GatewayDevice("b") + `" } oifname { "` + GatewayDevice("a") + `", "` + GatewayDevice("b") + `" } accept`,
		`oifname "vxg-*" drop`,
		`iifname "` + GatewayDevice("b") + `" ip saddr { 172.30.2.5, 172.30.2.6 } meta l4proto { tcp, udp } th dport 53 dnat to 172.30.2.1:53 comment "b/dns"`,
		`iifname "` + GatewayDevice("closed") + `" ip saddr { 172.30.3.9 } meta l4proto { tcp, udp } th dport 53 dnat to 172.30.3.1:53 comment "closed/dns"`,
		`iifname { "` + GatewayDevice("closed") + `" } reject with icmp type admin-prohibited`,
		`iifname "` + GatewayDevice("closed") + `" ip daddr 172.30.3.1 meta l4proto { tcp, udp } th dport 53 accept`,
		`iifname { "` + GatewayDevice("closed6") + `" } reject with icmpv6 type admin-prohibited`,
		`iifname != "` + GatewayDevice("b") + `" ip daddr 172.30.2.1 meta l4proto { tcp, udp } th dport 53 drop`,
		`iifname "vxg-*" ip daddr 127.0.0.0/8 ct status != dnat drop`,
	} {
		if strings.Count(rs, want) == 0 {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	if strings.Contains(rs, "172.30.1.0/24") {
		t.Errorf("an internal network is masqueraded:\n%s", rs)
	}
	if strings.Count(rs, "/hairpin") != 2 {
		t.Errorf("want a hairpin rule for each network with a published port, and only those:\n%s", rs)
	}
	if strings.Count(rs, "dnat to")-strings.Count(rs, `/dns"`) != 4 || strings.Count(rs, `/dns"`) != 3 {
		t.Errorf("want each published port's DNAT rule in prerouting and output, and each DNS redirect in prerouting only:\n%s", rs)
	}
	if v4only := ruleset(nets[:2], pubs[1:], Guard{VXLANPort: 4789, GossipPort: 7946}, false); strings.Contains(v4only, "ip6") {
		t.Errorf("the ip6 table is managed without IPv6 networks:\n%s", v4only)
	}
	if empty := ruleset(nil, nil, Guard{}, true); strings.Contains(empty, "chain") {
		t.Errorf("no networks should only remove the table:\n%s", empty)
	}
	applyInNetns(t, "vxnft", rs, rs, ruleset(nil, nil, Guard{}, true)) // twice: replacing works too
}

// TestRuleset_mesh: a network's routing-mesh addresses take the
// connections to its services' VIPs that leave through its gateway, per
// family, ahead of any masquerade.
func TestRuleset_mesh(t *testing.T) {
	nets := []Gateway{{Name: "web", Subnet: netip.MustParsePrefix("10.0.9.0/24"), Gateway: netip.MustParseAddr("10.0.9.1"), Masquerade: true,
		Subnet6: netip.MustParsePrefix("fd00:9::/64"), Gateway6: netip.MustParseAddr("fd00:9::1"),
		MeshFrom: []netip.Addr{netip.MustParseAddr("10.0.9.7"), netip.MustParseAddr("fd00:9::7")},
		MeshTo:   []netip.Addr{netip.MustParseAddr("10.0.9.100"), netip.MustParseAddr("10.0.9.101"), netip.MustParseAddr("fd00:9::100")}}}
	pubs := []Published{{HostPort: 8080, ContainerPort: 80, Proto: "tcp", Network: "web", Endpoint: "service api", Addr: netip.MustParseAddr("10.0.9.100")},
		{HostPort: 7946, ContainerPort: 80, Proto: "tcp", Network: "web", Endpoint: "service gossip", Addr: netip.MustParseAddr("10.0.9.101")},
		{HostPort: 4789, ContainerPort: 80, Proto: "udp", Network: "web", Endpoint: "service vxlan", Addr: netip.MustParseAddr("10.0.9.101")}}
	rs := ruleset(nets, pubs, Guard{VXLANPort: 4789, GossipPort: 7946}, true)
	if strings.Contains(rs, "dport 7946 dnat") || strings.Contains(rs, "dport 4789 dnat") {
		t.Errorf("a published port takes the host's gossip or VXLAN port:\n%s", rs)
	}
	snat4 := `oifname "` + GatewayDevice("web") + `" ip daddr { 10.0.9.100, 10.0.9.101 } ct status dnat snat to 10.0.9.7 comment "web/mesh"`
	for _, want := range []string{snat4,
		`oifname "` + GatewayDevice("web") + `" ip6 daddr { fd00:9::100 } ct status dnat snat to fd00:9::7 comment "web/mesh"`,
		`fib daddr type local tcp dport 8080 dnat to 10.0.9.100:80 comment "web/service api"`,
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	if strings.Index(rs, snat4) > strings.Index(rs, "masquerade") {
		t.Errorf("the mesh's SNAT comes after a masquerade:\n%s", rs)
	}
	applyInNetns(t, "vxnftm", rs)
}

// TestRuleset_longNames: the longest names the API takes (a 64-character
// network, a 63-character service) make comments longer than nft's 128
// characters; they are cut to fit, and the kernel takes the script.
func TestRuleset_longNames(t *testing.T) {
	network := strings.Repeat("n", 62) + ".x"
	service := strings.Repeat("s", 63)
	nets := []Gateway{{Name: network, Subnet: netip.MustParsePrefix("10.0.9.0/24"), Gateway: netip.MustParseAddr("10.0.9.1"), Masquerade: true,
		MeshFrom: []netip.Addr{netip.MustParseAddr("10.0.9.7")}, MeshTo: []netip.Addr{netip.MustParseAddr("10.0.9.100")}}}
	pubs := []Published{{HostPort: 8080, ContainerPort: 80, Proto: "tcp", Network: network, Endpoint: "service " + service, Addr: netip.MustParseAddr("10.0.9.100")}}
	rs := ruleset(nets, pubs, Guard{VXLANPort: 4789, GossipPort: 7946}, false)
	cut := network + "/service " + service
	want := `comment "` + cut[:maxComment-1] + `~"`
	if !strings.Contains(rs, want) {
		t.Errorf("ruleset lacks the cut comment %s:\n%s", want, rs)
	}
	for _, line := range strings.Split(rs, "\n") {
		if i := strings.Index(line, `comment "`); i >= 0 && len(line)-i-len(`comment ""`) > maxComment {
			t.Errorf("comment longer than %d characters: %s", maxComment, line)
		}
	}
	applyInNetns(t, "vxnftl", rs)
}

// applyInNetns has the kernel take each script in turn, in a network
// namespace of the test's own (skipped without root or nft).
func applyInNetns(t *testing.T, prefix string, scripts ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to apply the ruleset in a namespace")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (make deps installs nftables)")
	}
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, script := range scripts {
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft refused the ruleset: %v %s\n%s", err, out, script)
		}
	}
}

// TestRuleset_ip6Managed: the ip6 table is made only for IPv6 networks or
// ports, and removed when the last one goes (v6 asks for its removal).
func TestRuleset_ip6Managed(t *testing.T) {
	v4 := []Gateway{{Name: "a", Subnet: netip.MustParsePrefix("172.30.1.0/24"), Gateway: netip.MustParseAddr("172.30.1.1"), Masquerade: true}}
	rs := ruleset(v4, nil, Guard{VXLANPort: 4789, GossipPort: 7946}, true)
	if !strings.Contains(rs, "delete table ip6 vxnet") || strings.Contains(rs, "table ip6 vxnet {") {
		t.Errorf("the ip6 table, no longer needed, is not removed or is made again:\n%s", rs)
	}
}

// TestRuleset_dualStack: a dual-stack network's gateway is masqueraded in
// both families, each with its own subnet, and needs the ip6 table; an
// IPv4-only one leaves the ip6 table out.
func TestRuleset_dualStack(t *testing.T) {
	g := Guard{VXLANPort: 4789, GossipPort: 7946}
	dual := Gateway{Name: "dual", Subnet: netip.MustParsePrefix("10.79.0.0/24"), Gateway: netip.MustParseAddr("10.79.0.1"),
		Subnet6: netip.MustParsePrefix("fd00:79::/64"), Gateway6: netip.MustParseAddr("fd00:79::1"), Masquerade: true}
	if !needsV6([]Gateway{dual}, nil) {
		t.Error("a dual-stack gateway does not need the ip6 table")
	}
	dual.DNSFrom = []netip.Addr{netip.MustParseAddr("10.79.0.5"), netip.MustParseAddr("fd00:79::5")}
	rules := ruleset([]Gateway{dual}, nil, g, true)
	dev := GatewayDevice("dual")
	for _, want := range []string{
		`ip saddr 10.79.0.0/24 oifname != "vxg-*" masquerade comment "dual"`,
		`ip6 saddr fd00:79::/64 oifname != "vxg-*" masquerade comment "dual"`,
		// A handed-over container's queries go to vxnet's resolver over
		// either family: Docker's resolver may forward over IPv6.
		`iifname "` + dev + `" ip saddr { 10.79.0.5 } meta l4proto { tcp, udp } th dport 53 dnat to 10.79.0.1:53 comment "dual/dns"`,
		`iifname "` + dev + `" ip6 saddr { fd00:79::5 } meta l4proto { tcp, udp } th dport 53 dnat to [fd00:79::1]:53 comment "dual/dns"`,
		`iifname != "` + dev + `" ip6 daddr fd00:79::1 meta l4proto { tcp, udp } th dport 53 drop`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rules)
		}
	}
	v4 := dual
	v4.Subnet6, v4.Gateway6 = netip.Prefix{}, netip.Addr{}
	if needsV6([]Gateway{v4}, nil) || strings.Contains(ruleset([]Gateway{v4}, nil, g, false), "table ip6 vxnet {") {
		t.Error("an IPv4-only gateway brings the ip6 table")
	}
	if s, gw, ok := dual.side(true); !ok || s != dual.Subnet6 || gw != dual.Gateway6 {
		t.Errorf("side(v6) = %v %v %v", s, gw, ok)
	}
	if got := fmt.Sprint(dual.DNSGateways()); got != "[10.79.0.1 fd00:79::1]" {
		t.Errorf("DNSGateways = %s, want both gateways", got)
	}
	v4.DNSFrom = dual.DNSFrom // an IPv4-only gateway: its IPv6 addresses have no resolver
	if got := fmt.Sprint(v4.DNSGateways()); got != "[10.79.0.1]" {
		t.Errorf("IPv4-only DNSGateways = %s", got)
	}
	applyInNetns(t, "vxnft6", rules)
}
