package e2e

import (
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestAgent_namesSubnetsAndSRV, through the CLI: names DNS cannot take
// and subnets containers cannot use are refused at the door, naming the
// field; names differing only in case are one name; --srv-port ports are
// answered as SRV records in the containers.
func TestAgent_namesSubnetsAndSRV(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.52", "h1")
	fails := func(want []string, args ...string) {
		t.Helper()
		out, err := c.tryCLI("h1", args...)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("vxnet %s: %v, want exit 1\n%s", strings.Join(args, " "), err, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("vxnet %s: output does not mention %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
	}
	for _, name := range []string{"a..", "trail.", strings.Repeat("n", 64)} {
		fails([]string{`network name "` + name + `"`, "(NAME)"}, "network", "create", name)
	}
	for _, subnet := range []string{"127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "0.0.0.0/8", "240.0.0.0/4", "fe80::/64", "ff00::/8", "::/0"} {
		fails([]string{`subnet "` + subnet + `"`, "(--subnet)"}, "network", "create", "--subnet", subnet, "bad")
	}
	fails([]string{`gateway "10.52.9.255"`, "broadcast", "(--gateway)"}, "network", "create", "--subnet", "10.52.9.0/24", "--gateway", "10.52.9.255", "bad")
	if out := c.cli("h1", "network", "ls"); strings.Contains(out, "bad") || strings.Contains(out, "trail") {
		t.Errorf("a refused network is listed:\n%s", out)
	}

	c.cli("h1", "network", "create", "--subnet", "10.52.0.0/24", "Web")
	fails([]string{`network "Web" exists`, "case"}, "network", "create", "--subnet", "10.52.1.0/24", "web")
	c1, c2 := l.netns("c1"), l.netns("c2")
	c.cli("h1", "endpoint", "create", "--network", "Web", "--name", "Web1", "--service", "front", "--srv-port", "http=8080", "--netns", c1)
	fails([]string{`endpoint "Web1" exists on network "Web"`}, "endpoint", "create", "--network", "Web", "--name", "web1", "--netns", c2)
	fails([]string{`srv port "80/tcp"`, "(--srv-port)"}, "endpoint", "create", "--network", "Web", "--name", "x", "--srv-port", "80/tcp", "--netns", c2)
	c.cli("h1", "endpoint", "create", "--network", "Web", "--name", "web2", "--service", "front", "--srv-port", "http=8080/tcp", "--netns", c2)

	srv := func(ns, name string) string {
		out, _ := l.tryIn(ns, "dig", "+short", "+time=2", "+tries=1", "SRV", name, "@127.0.0.11")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		return strings.Join(lines, "; ")
	}
	want := "0 0 8080 web1.web.; 0 0 8080 web2.web."
	testutil.WaitFor(t, "SRV records of front in c2", 20*time.Second, func() bool { return srv(c2, "_http._tcp.front") == want })
	if got := srv(c1, "_http._tcp.front.web"); got != want {
		t.Errorf("SRV _http._tcp.front.web in c1: %q, want %q", got, want)
	}
	if got := c.dig(c2, "WEB1", false); got != "10.52.0.2" {
		t.Errorf("WEB1 from c2: %q, want 10.52.0.2 (names are case-insensitive)", got)
	}
}

// TestAgent_autoSubnetAvoidsHostNetworks: a network created without
// --subnet steers around the host's own networks, which its routes would
// shadow: with a LAN, or a route, on the subnet the default pools gave a
// moment before, the same request takes a subnet off it; with a LAN over
// the whole pool, it is refused, naming the LAN and the way out.
func TestAgent_autoSubnetAvoidsHostNetworks(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.53", "h1")
	ns := c.hosts["h1"].ns
	c.cli("h1", "network", "create", "probe")
	first := netip.MustParsePrefix(c.networks("h1")["probe"].Subnet)
	c.cli("h1", "network", "rm", "probe")

	// A LAN on the /16 around it: a veth of the host's to a namespace of
	// the test's own.
	lan := netip.PrefixFrom(first.Addr(), 16).Masked()
	l.veth(ns, "lan0", netip.PrefixFrom(lan.Addr().Next(), 16).String(), l.netns("lan"), "lan0", "")
	c.cli("h1", "network", "create", "probe") // the same name starts the search at the same place
	again := netip.MustParsePrefix(c.networks("h1")["probe"].Subnet)
	if again.Overlaps(lan) {
		t.Errorf("with a LAN on %v, the network took %v (before the LAN: %v)", lan, again, first)
	}
	c.cli("h1", "network", "rm", "probe")

	// No address there, but a route to it (a VPN's, a static one): the
	// same.
	l.run("ip", "-n", ns, "addr", "flush", "dev", "lan0")
	l.run("ip", "-n", ns, "route", "add", lan.String(), "dev", "lan0")
	c.cli("h1", "network", "create", "probe")
	if routed := netip.MustParsePrefix(c.networks("h1")["probe"].Subnet); routed.Overlaps(lan) {
		t.Errorf("with a route to %v, the network took %v", lan, routed)
	}

	l.run("ip", "-n", ns, "route", "flush", "dev", "lan0")
	l.run("ip", "-n", ns, "addr", "add", "10.0.0.1/7", "dev", "lan0") // wider than the pool, 10.0.0.0/8
	out, err := c.tryCLI("h1", "network", "create", "other")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
		!strings.Contains(out, "10.0.0.0/7") || !strings.Contains(out, "this host's networks") || !strings.Contains(out, "--subnet") {
		t.Errorf("with a LAN over the whole pool: %v, want exit 1 naming the LAN and --subnet:\n%s", err, out)
	}
	if _, ok := c.networks("h1")["other"]; ok {
		t.Error("the refused network is listed")
	}
}
