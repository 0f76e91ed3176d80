package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestDualStack_overlay: two hosts, a dual-stack overlay network. Every
// endpoint has an IPv4 and an IPv6 address (every host agreeing, none
// held twice); containers of different hosts reach each other over both
// families, by address and by name (A and AAAA from the container's
// resolver); a kill -9 and restart of an agent keeps both addresses of
// its endpoint, and both still carry traffic; removed, the endpoints and
// the network leave no lease of either family.
func TestDualStack_overlay(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.78", "h1", "h2")
	c.cli("h1", "network", "create", "--subnet", "10.78.0.0/24", "--subnet", "fd00:78::/64", "dual")
	ns := map[string]string{}
	for i, h := range []string{"h1", "h2"} {
		name := []string{"a", "b"}[i]
		ns[name] = l.netns(name)
		testutil.WaitFor(t, h+" to know network dual", 10*time.Second, func() bool {
			_, err := c.tryCLI(h, "network", "inspect", "dual")
			return err == nil
		})
		args := []string{"endpoint", "create", "--network", "dual", "--name", name, "--netns", ns[name]}
		if name == "a" { // on the network's creator, which holds its blocks
			args = append(args, "--ip6", "fd00:78::a")
		}
		c.cli(h, args...)
	}
	addrs := func(host, name string) (v4, v6 netip.Addr) {
		t.Helper()
		e, ok := c.endpoints(host)[name]
		if !ok || len(e.Addresses) != 2 {
			t.Fatalf("%s lists %s with %v, want an address of each family", host, name, e.Addresses)
		}
		p4, err4 := netip.ParsePrefix(e.Addresses[0])
		p6, err6 := netip.ParsePrefix(e.Addresses[1])
		if err4 != nil || err6 != nil || !p4.Addr().Is4() || !p6.Addr().Is6() || p6.Bits() != 64 {
			t.Fatalf("%s: addresses %v", name, e.Addresses)
		}
		return p4.Addr(), p6.Addr()
	}
	testutil.WaitFor(t, "both hosts to list both endpoints", 10*time.Second, func() bool {
		return len(c.endpoints("h1")) == 2 && len(c.endpoints("h2")) == 2
	})
	a4, a6 := addrs("h2", "a")
	b4, b6 := addrs("h1", "b")
	if a6 != netip.MustParseAddr("fd00:78::a") || a4 == b4 || a6 == b6 {
		t.Errorf("addresses a %v %v, b %v %v", a4, a6, b4, b6)
	}
	reach := func() {
		t.Helper()
		l.in(ns["a"], "ping", "-c", "2", "-i", "0.2", "-W", "5", b4.String())
		l.in(ns["a"], "ping", "-6", "-c", "2", "-i", "0.2", "-W", "5", b6.String())
		l.in(ns["b"], "ping", "-6", "-c", "2", "-i", "0.2", "-W", "5", a6.String())
	}
	reach()
	if got := c.dig(ns["a"], "b.dual", false); got != b4.String() {
		t.Errorf("A of b.dual: %q, want %v", got, b4)
	}
	out, _ := l.tryIn(ns["a"], "dig", "+short", "+time=2", "+tries=1", "AAAA", "b.dual", "@127.0.0.11")
	if got := strings.TrimSpace(out); got != b6.String() {
		t.Errorf("AAAA of b.dual: %q, want %v", got, b6)
	}
	transfer(t, ns["b"], ns["a"], a6, 4<<20)

	c.kill9("h2")
	c.start("h2", c.hosts["h1"].addr+":7946")
	testutil.WaitFor(t, "h2 back with b", 30*time.Second, func() bool {
		_, err := c.tryCLI("h2", "endpoint", "ls")
		if err != nil {
			return false
		}
		e, ok := c.endpoints("h2")["b"]
		return ok && e.State == "" && len(e.Addresses) == 2
	})
	if x4, x6 := addrs("h2", "b"); x4 != b4 || x6 != b6 {
		t.Errorf("after kill -9: b has %v %v, want %v %v", x4, x6, b4, b6)
	}
	reach()

	c.cli("h1", "endpoint", "rm", "--network", "dual", "a")
	c.cli("h2", "endpoint", "rm", "--network", "dual", "b")
	c.cli("h1", "network", "rm", "dual")
	for _, h := range []string{"h1", "h2"} {
		leases, _ := c.hostLeases(h)
		for network, ls := range leases {
			if strings.HasPrefix(network, "dual") && len(ls) > 0 {
				t.Errorf("%s keeps leases %v of %s", h, ls, network)
			}
		}
	}
}

// TestDocker_ipv6: Docker networks with --ipv6 on two hosts: containers
// get an address of each family (--ip6 too), reach each other over IPv6
// across hosts by address and by name (AAAA through vxnet's resolver), and
// once removed leave no endpoint, lease or reservation of either family.
func TestDocker_ipv6(t *testing.T) {
	l := newLab(t)
	c := l.dockerCluster("198.18.79", nil, "h1", "h2")
	d1, d2 := c.dockerd("h1"), c.dockerd("h2")
	create := []string{"network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--ipv6",
		"--subnet", "10.79.0.0/24", "--subnet", "fd00:79::/64", "web"}
	d1.docker(create...)
	if out, err := d1.tryDocker("network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--ipv6", "--subnet", "10.79.1.0/24", "v4only"); err == nil ||
		!strings.Contains(out, "--ipv6 needs an IPv6 --subnet") {
		t.Errorf("--ipv6 without an IPv6 subnet: %v %s", err, out)
	}
	d1.tryDocker("network", "rm", "v4only")
	testutil.WaitFor(t, "h2 to know network web", 15*time.Second, func() bool { _, ok := c.networks("h2")["web"]; return ok })
	d2.docker(create...)
	d1.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--ip6", "fd00:79::a", "--name", "ca", testImage, "sleep", "3600")
	d2.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "cb", testImage, "sleep", "3600")
	ip6 := func(d *dockerd, name string) string {
		return strings.TrimSpace(d.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", name))
	}
	a6, b6 := ip6(d1, "ca"), ip6(d2, "cb")
	if a6 != "fd00:79::a" || !strings.HasPrefix(b6, "fd00:79::") {
		t.Fatalf("IPv6 addresses a %q, b %q", a6, b6)
	}
	if e, ok := c.endpoints("h1")["cb"]; !ok || len(e.Addresses) != 2 || e.Addresses[1] != b6+"/64" {
		t.Errorf("vxnet's endpoint b: %+v, want its IPv4 and IPv6 addresses", e)
	}
	if out, err := d2.tryDocker("exec", "cb", "ping", "-6", "-c1", "-W3", a6); err != nil {
		t.Errorf("b (h2) to a (h1) over IPv6: %v\n%s", err, out)
	}
	// Docker was told the IPv6 gateway too: the way out over IPv6.
	if out, err := d2.tryDocker("exec", "cb", "ip", "-6", "route", "show", "default"); err != nil || !strings.Contains(out, "via fd00:79::1") {
		t.Errorf("b's IPv6 default route: %v %q, want one via fd00:79::1", err, out)
	}
	// By name: Docker's resolver asks vxnet's (through the gateway) for
	// the other host's container.
	if out, err := d2.tryDocker("exec", "cb", "nslookup", "-type=AAAA", "ca.web", "127.0.0.11"); err != nil || !strings.Contains(out, a6) {
		t.Errorf("AAAA of a.web from b: %v\n%s", err, out)
	}
	if out, err := d1.tryDocker("exec", "ca", "ping", "-6", "-c1", "-W3", "cb.web"); err != nil {
		t.Errorf("a to b.web over IPv6: %v\n%s", err, out)
	}
	// A container whose upstream server is an IPv6 address (a host whose
	// resolv.conf names one): Docker leaves it in the container's
	// resolv.conf, or its resolver forwards to it (newer Docker), either
	// way from the container over IPv6 through the gateway, and the host
	// hands the query to vxnet's resolver on the IPv6 gateway address
	// (nothing answers at fd00:53::53).
	d2.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--dns", "fd00:53::53", "--name", "cc", testImage, "sleep", "3600")
	var last string
	if !testutil.Eventually(15*time.Second, func() bool {
		out, err := d2.tryDocker("exec", "cc", "nslookup", "-type=AAAA", "ca.web", "fd00:53::53")
		last = fmt.Sprint(err, "\n", out)
		return err == nil && strings.Contains(out, a6)
	}) {
		conf, _ := d2.tryDocker("exec", "cc", "cat", "/etc/resolv.conf")
		t.Errorf("cc (upstream over IPv6) does not resolve a.web: %s\nits resolv.conf:\n%s", last, conf)
	}
	d1.docker("rm", "-f", "ca")
	d2.docker("rm", "-f", "cb", "cc")
	for _, h := range []string{"h1", "h2"} {
		testutil.WaitFor(t, h+": no endpoint, lease or reservation left", 15*time.Second, func() bool {
			leases, reserved := c.hostLeases(h)
			return len(c.endpointList(h)) == 0 && len(leases["web"])+len(leases["web#6"]) == 0 && len(reserved["web"]) == 0
		})
	}
}

// TestDualStack_egress: a dual-stack overlay's containers reach the
// outside over both families through the host they run on (the gateway
// holds both gateway addresses; the host masquerades each family), by
// address and by name; a port one publishes answers from outside on its
// host's IPv4 and IPv6 addresses; an internal dual-stack network stays
// closed over both.
func TestDualStack_egress(t *testing.T) {
	l := newLab(t)
	for _, bin := range []string{"nft", "dnsmasq", "iperf3", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip(bin + " not installed (make deps installs it)")
		}
	}
	c := l.clusterWith("198.18.79", []string{"--dns-upstream", "198.18.79.250"}, "h1", "h2")
	o := startOutside(t, l, c, "198.18.79", "fd18:79")
	c.cli("h1", "network", "create", "--subnet", "10.79.0.0/24", "--subnet", "fd00:79::/64", "dual")
	c.cli("h1", "network", "create", "--subnet", "10.79.1.0/24", "--subnet", "fd00:79:1::/64", "--internal", "shut")
	c.waitNetwork("h2", "dual")
	c.waitNetwork("h2", "shut")
	a, b, s := l.netns("a"), l.netns("b"), l.netns("s")
	c.cli("h1", "endpoint", "create", "--network", "dual", "--name", "a", "--netns", a)
	c.cli("h2", "endpoint", "create", "--network", "dual", "--name", "b", "--netns", b, "-p", "8080:80")
	c.cli("h2", "endpoint", "create", "--network", "shut", "--name", "s", "--netns", s)
	for _, ns := range []string{a, b} {
		for _, dst := range []string{o.v4, o.v6} {
			if out, err := l.tryIn(ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", dst); err != nil {
				t.Errorf("%s to the outside's %s: %v\n%s", ns, dst, err, out)
			}
		}
		for _, url := range []string{"http://[" + o.v6 + "]/", "http://" + o.v4 + "/"} {
			if out, err := l.tryIn(ns, "curl", "-sS", "-g", "--max-time", "5", url); err != nil || out != "hello\n" {
				t.Errorf("the web from %s, %s: %q, %v; want hello", ns, url, out, err)
			}
		}
	}
	// b serves on both families; published on h2.
	var ln net.Listener
	inNetns(t, b, func() {
		var err error
		if ln, err = net.Listen("tcp", "[::]:80"); err != nil {
			t.Fatal(err)
		}
	})
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "b\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	go web.Serve(ln)
	defer web.Close()
	for _, url := range []string{"http://" + c.hosts["h2"].addr + ":8080/", "http://[fd18:79::2]:8080/"} {
		if out, err := l.tryIn(o.ns, "curl", "-sS", "-g", "--max-time", "5", url); err != nil || out != "b\n" {
			t.Errorf("the published port from outside, %s: %q, %v; want b", url, out, err)
		}
	}
	for _, dst := range []string{o.v4, o.v6} {
		if out, err := l.tryIn(s, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst); err == nil {
			t.Errorf("a container of an internal dual-stack network reached the outside's %s:\n%s", dst, out)
		}
	}
}
