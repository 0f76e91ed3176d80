package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestNAT_oneHost drives the nat driver through the CLI on one host, with
// an "external" namespace linked to the host by a veth of its own. The
// external side has no route to the NAT subnets, so every reply it gets
// through proves the host masqueraded. It checks the cells of the seed's
// connectivity table that apply to nat: container to container on one host
// (same subnet, and across two NAT networks, which the host routes),
// container to external, published ports from outside, from the host
// itself (its own address and 127.0.0.1) and from containers (its own
// network's: hairpin), and discovery by name.
func TestNAT_oneHost(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (make deps installs nftables)")
	}
	c := l.cluster("198.18.42", "h1")
	h := c.hosts["h1"]
	ext := l.netns("ext")
	l.veth(h.ns, "wan0", "198.18.143.1/24", ext, "eth0", "198.18.143.2/24")

	c.cli("h1", "network", "create", "-d", "nat", "--subnet", "172.30.1.0/24", "nat1")
	c.cli("h1", "network", "create", "-d", "nat", "--subnet", "172.30.2.0/24", "nat2")
	a, b, d := l.netns("a"), l.netns("b"), l.netns("d")
	c.cli("h1", "endpoint", "create", "--network", "nat1", "--name", "a", "--netns", a)
	c.cli("h1", "endpoint", "create", "--network", "nat1", "--name", "b", "--netns", b, "-p", "8080:5201")
	c.cli("h1", "endpoint", "create", "--network", "nat2", "--name", "d", "--netns", d)
	eps := c.endpoints("h1")
	addrB, addrD := addrOf(t, eps["b"]).String(), addrOf(t, eps["d"]).String()
	if !strings.HasPrefix(addrB, "172.30.1.") || !strings.HasPrefix(addrD, "172.30.2.") {
		t.Fatalf("addresses %s %s are not from the nat subnets", addrB, addrD)
	}
	if out := c.cli("h1", "endpoint", "ls"); !strings.Contains(out, "8080:5201/tcp") {
		t.Errorf("endpoint ls does not show the published port:\n%s", out)
	}
	var nets []struct{ Name, Driver, Scope string }
	out := c.cli("h1", "network", "ls", "--format", "json")
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		t.Fatalf("network ls --format json: %v\n%s", err, out)
	}
	found := false
	for _, n := range nets {
		found = found || n.Name == "nat1" && n.Driver == "nat" && n.Scope == "local"
	}
	if !found {
		t.Errorf("network ls does not show nat1 as a local nat network:\n%s", out)
	}

	ping := func(what, ns, dst string) {
		t.Helper()
		if out, err := l.tryIn(ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", dst); err != nil {
			t.Errorf("%s: ping %s from %s: %v\n%s", what, dst, ns, err, out)
		}
	}
	ping("same subnet", a, addrB)
	ping("by name, local discovery", a, "b")
	ping("the gateway", a, "172.30.1.1")
	ping("across NAT networks, routed by the host", a, addrD)
	ping("back across NAT networks", d, addrB)
	ping("external, masqueraded", a, "198.18.143.2")
	ping("the host, from a container", d, "198.18.143.1")

	// A published port: iperf3 in b on 5201, reached on the host's 8080.
	l.startIn(b, "iperf3", "-s", "-p", "5201")
	testutil.WaitFor(t, "iperf3 to listen in b", 10*time.Second, func() bool {
		out, _ := l.tryIn(b, "ss", "-Hltn", "sport", "= :5201")
		return strings.Contains(out, "5201")
	})
	for _, tc := range []struct{ what, ns, dst string }{
		{"published port from outside", ext, "198.18.143.1"},
		{"published port from the host, its own address", h.ns, "198.18.143.1"},
		{"published port from the host, 127.0.0.1", h.ns, "127.0.0.1"},
		// Hairpin: a container of the same network calls the host's
		// address; the answer comes back through the host, not straight
		// from b (whom a never called).
		{"published port from a container of its network, hairpin", a, "198.18.143.1"},
		{"published port from a container of another network", d, "198.18.143.1"},
	} {
		if out, err := l.tryIn(tc.ns, "iperf3", "-c", tc.dst, "-p", "8080", "-t", "1", "--connect-timeout", "5000"); err != nil {
			t.Errorf("%s: %v\n%s", tc.what, err, out)
		}
	}

	// Bad requests name the field.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoint", "create", "--network", "nat1", "--name", "x", "--netns", a, "-p", "8080:80"}, "8080/tcp is taken"},
		{[]string{"endpoint", "create", "--network", "nat1", "--name", "x", "--netns", a, "-p", "80:80/sctp"}, `protocol "sctp"`},
		{[]string{"endpoint", "create", "--network", "nat1", "--name", "x", "--netns", a, "-p", "0:80"}, `host port "0"`},
		{[]string{"network", "create", "-d", "l2bridge", "--subnet", "10.9.9.0/24", "x"}, "option uplink is required"},
		{[]string{"network", "create", "-d", "transparent", "x"}, "needs --subnet"},
	} {
		out, err := c.tryCLI("h1", tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("vxnet %s: %v, want an error saying %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}

	// Removing the networks removes their gateways and the rules.
	for _, e := range []struct{ net, name string }{{"nat1", "a"}, {"nat1", "b"}, {"nat2", "d"}} {
		c.cli("h1", "endpoint", "rm", "--network", e.net, e.name)
	}
	gateways := func() bool { return strings.Contains(l.in(h.ns, "ip", "-o", "link"), "vxg-") }
	table := func() bool { return strings.Contains(l.in(h.ns, "nft", "list", "tables"), "table ip vxnet") }
	if !gateways() || !table() {
		t.Fatalf("before removal: gateway devices %v, nat table %v; want both", gateways(), table())
	}
	c.cli("h1", "network", "rm", "nat1")
	c.cli("h1", "network", "rm", "nat2")
	testutil.WaitFor(t, "the gateways and the nat table to go", 10*time.Second, func() bool {
		return !gateways() && !table()
	})
}

// TestNAT_ipv6: nat networks of IPv6: containers reach each other (also
// across two nat networks, routed by the host) and the outside over IPv6,
// masqueraded (the outside has no route to the nat subnets), and a port
// published on the host answers on the host's IPv6 address.
func TestNAT_ipv6(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (make deps installs nftables)")
	}
	c := l.cluster("198.18.46", "h1")
	h := c.hosts["h1"]
	ext := l.netns("ext")
	l.veth(h.ns, "wan0", "", ext, "eth0", "")
	l.run("ip", "-n", h.ns, "addr", "add", "fd18:146::1/64", "dev", "wan0", "nodad")
	l.run("ip", "-n", ext, "addr", "add", "fd18:146::2/64", "dev", "eth0", "nodad")

	c.cli("h1", "network", "create", "-d", "nat", "--subnet", "fd00:46:1::/64", "nat6a")
	c.cli("h1", "network", "create", "-d", "nat", "--subnet", "fd00:46:2::/64", "nat6b")
	a, b, d := l.netns("a"), l.netns("b"), l.netns("d")
	c.cli("h1", "endpoint", "create", "--network", "nat6a", "--name", "a", "--netns", a)
	c.cli("h1", "endpoint", "create", "--network", "nat6a", "--name", "b", "--netns", b, "-p", "8080:5201")
	c.cli("h1", "endpoint", "create", "--network", "nat6b", "--name", "d", "--netns", d)
	eps := c.endpoints("h1")
	addrB, addrD := addrOf(t, eps["b"]), addrOf(t, eps["d"])
	if !addrB.Is6() || !addrD.Is6() {
		t.Fatalf("addresses %v %v, want IPv6", addrB, addrD)
	}
	for _, tc := range []struct{ what, ns, dst string }{
		{"same subnet", a, addrB.String()},
		{"across nat networks", a, addrD.String()},
		{"back across", d, addrB.String()},
		{"the outside, masqueraded", a, "fd18:146::2"},
	} {
		if out, err := l.tryIn(tc.ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", tc.dst); err != nil {
			t.Errorf("%s: ping %s: %v\n%s", tc.what, tc.dst, err, out)
		}
	}
	l.startIn(b, "iperf3", "-s", "-p", "5201")
	testutil.WaitFor(t, "iperf3 to listen in b", 10*time.Second, func() bool {
		out, _ := l.tryIn(b, "ss", "-Hltn", "sport", "= :5201")
		return strings.Contains(out, "5201")
	})
	if out, err := l.tryIn(ext, "iperf3", "-c", "fd18:146::1", "-p", "8080", "-t", "1", "--connect-timeout", "5000"); err != nil {
		t.Errorf("the published port from outside, over IPv6: %v\n%s", err, out)
	}
}
