package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/hostnet"
	"github.com/vxnet/vxnet/internal/testutil"
)

// outside is a namespace on the hosts' underlay segment and nowhere else:
// "the outside world" of a lab. It serves iperf3 (TCP and UDP, IPv4 and
// IPv6) and DNS (dnsmasq: outside.test is its own address). It has no
// route to any overlay subnet: a reply it sends reaches a container only
// because the container's host masqueraded the request.
type outside struct {
	ns, v4, v6 string
}

// startOutside joins a namespace to the cluster's bridge at prefix.250 and
// fd18:<n>::250, and gives the hosts IPv6 underlay addresses beside their
// IPv4 ones (fd18:<n>::<i>).
func startOutside(t *testing.T, l *lab, c *cluster, prefix, v6prefix string) outside {
	o := outside{ns: l.netns("out"), v4: prefix + ".250", v6: v6prefix + "::250"}
	br := l.prefix + "-br"
	l.veth(o.ns, "eth0", o.v4+"/24", br, "p-out", "")
	l.run("ip", "-n", br, "link", "set", "p-out", "master", "br0")
	l.run("ip", "-n", o.ns, "addr", "add", o.v6+"/64", "dev", "eth0", "nodad")
	for _, h := range c.hosts {
		last := h.addr[strings.LastIndexByte(h.addr, '.')+1:]
		l.run("ip", "-n", h.ns, "addr", "add", v6prefix+"::"+last+"/64", "dev", "ul0", "nodad")
	}
	l.startIn(o.ns, "iperf3", "-s", "-p", "5201")
	// A web server, on IPv4 and IPv6: what a container's first wget asks.
	var ln net.Listener
	inNetns(t, o.ns, func() {
		var err error
		if ln, err = net.Listen("tcp", "[::]:80"); err != nil {
			t.Fatal(err)
		}
	})
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	go web.Serve(ln)
	t.Cleanup(func() { web.Close() })
	l.startIn(o.ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root",
		"--no-resolv", "--no-hosts", "--listen-address="+o.v4, "--bind-interfaces",
		"--address=/outside.test/"+o.v4, "--address=/outside.test/"+o.v6, "--pid-file="+filepath.Join(l.dir, "out-dnsmasq.pid"))
	testutil.WaitFor(t, "iperf3 and dnsmasq to listen outside", 10*time.Second, func() bool {
		out, _ := l.tryIn(o.ns, "ss", "-Hln")
		return strings.Contains(out, ":5201") && strings.Contains(out, o.v4+":53")
	})
	return o
}

// TestOverlay_egress: containers of an overlay network reach the outside
// world through the host they run on, as on Docker's overlay — by
// address and by name (the agents forward DNS to the outside's server),
// TCP and UDP, IPv4 and IPv6 — while an internal overlay stays closed; a
// port published on an overlay container is reached from outside on the
// container's host; traffic between containers on two hosts never goes
// through a gateway, and each container gets out through its own host's.
func TestOverlay_egress(t *testing.T) {
	l := newLab(t)
	for _, bin := range []string{"nft", "dnsmasq", "iperf3", "tcpdump", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip(bin + " not installed (make deps installs it)")
		}
	}
	c := l.clusterWith("198.18.44", []string{"--dns-upstream", "198.18.44.250"}, "h1", "h2")
	o := startOutside(t, l, c, "198.18.44", "fd18:44")

	c.cli("h1", "network", "create", "--subnet", "10.0.44.0/24", "ov")
	c.cli("h1", "network", "create", "--subnet", "fd00:44::/64", "ov6")
	c.cli("h1", "network", "create", "--subnet", "10.0.45.0/24", "--internal", "closed")
	for _, n := range []string{"ov", "ov6", "closed"} {
		c.waitNetwork("h2", n)
	}
	if out := c.cli("h1", "network", "inspect", "closed"); !strings.Contains(out, `"egress": false`) {
		t.Errorf("network inspect of an internal overlay does not say it has no egress:\n%s", out)
	}
	if out := c.cli("h2", "network", "inspect", "ov"); !strings.Contains(out, `"egress": true`) {
		t.Errorf("network inspect of an overlay does not say it has egress:\n%s", out)
	}
	a, b, shut, p := l.netns("a"), l.netns("b"), l.netns("shut"), l.netns("p")
	c.cli("h1", "endpoint", "create", "--network", "ov", "--name", "a", "--netns", a)
	c.cli("h1", "endpoint", "create", "--network", "ov6", "--name", "a6", "--netns", a, "--ifname", "eth1")
	c.cli("h2", "endpoint", "create", "--network", "ov", "--name", "b", "--netns", b)
	c.cli("h2", "endpoint", "create", "--network", "ov6", "--name", "b6", "--netns", b, "--ifname", "eth1")
	c.cli("h1", "endpoint", "create", "--network", "closed", "--name", "shut", "--netns", shut)
	c.cli("h2", "endpoint", "create", "--network", "ov", "--name", "p", "--netns", p, "-p", "8081:5201")
	eps := c.endpoints("h2")
	addrB := addrOf(t, eps["b"]).String()

	try := func(what, ns string, args ...string) {
		t.Helper()
		if out, err := l.tryIn(ns, args...); err != nil {
			t.Errorf("%s: %s: %v\n%s", what, strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{a, b} {
		try("IPv4 out", ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", o.v4)
		try("IPv6 out", ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", o.v6)
		try("TCP out", ns, "iperf3", "-c", o.v4, "-t", "1", "--connect-timeout", "5000")
		try("UDP out", ns, "iperf3", "-u", "-c", o.v4, "-t", "1", "-b", "1M", "--connect-timeout", "5000")
		try("TCP over IPv6 out", ns, "iperf3", "-6", "-c", o.v6, "-t", "1", "--connect-timeout", "5000")
		if got := strings.TrimSpace(l.in(ns, "dig", "+short", "+time=3", "@127.0.0.11", "outside.test")); got != o.v4 {
			t.Errorf("outside.test from %s: %q, want %s (vxnet's DNS forwarding to the outside's server)", ns, got, o.v4)
		}
		try("by name", ns, "ping", "-c", "1", "-W", "5", "outside.test")
		for _, url := range []string{"http://outside.test/", "http://[" + o.v6 + "]/"} {
			if out, err := l.tryIn(ns, "curl", "-sS", "-g", "--max-time", "5", url); err != nil || out != "hello\n" {
				t.Errorf("the web from %s, %s: %q, %v; want hello", ns, url, out, err)
			}
		}
	}
	// An internal overlay stays closed, even to a container that routes
	// out by itself: its host has no gateway for it.
	l.in(shut, "ip", "route", "add", "default", "dev", "eth0")
	if out, err := l.tryIn(shut, "ping", "-c", "2", "-i", "0.2", "-W", "2", o.v4); err == nil {
		t.Errorf("a container of an internal overlay reached the outside:\n%s", out)
	}
	if gw := hostnet.GatewayDevice("closed"); strings.Contains(l.in(c.hosts["h1"].ns, "ip", "-o", "link"), gw) {
		t.Errorf("h1 has a gateway %s for an internal overlay", gw)
	}
	// Nothing new comes in through a host: the outside, given a route to
	// the overlay through h1, reaches no container (replies and published
	// ports only).
	l.in(o.ns, "ip", "route", "add", "10.0.44.0/24", "via", c.hosts["h1"].addr)
	if out, err := l.tryIn(o.ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", addrOf(t, c.endpoints("h1")["a"]).String()); err == nil {
		t.Errorf("the outside reached a container through its host, unasked:\n%s", out)
	}

	// A port published by a container on h2, from outside, on h2's address.
	l.startIn(p, "iperf3", "-s", "-p", "5201")
	testutil.WaitFor(t, "iperf3 to listen in p", 10*time.Second, func() bool {
		out, _ := l.tryIn(p, "ss", "-Hltn", "sport", "= :5201")
		return strings.Contains(out, "5201")
	})
	try("the published port from outside", o.ns, "iperf3", "-c", c.hosts["h2"].addr, "-p", "8081", "-t", "1", "--connect-timeout", "5000")

	// Between containers on two hosts: over VXLAN, never through h1's
	// gateway (captured there while a pings b).
	gw := hostnet.GatewayDevice("ov")
	pcap := filepath.Join(l.dir, "gateway.pcap")
	dump := exec.Command("ip", "netns", "exec", c.hosts["h1"].ns, "tcpdump", "-i", gw, "-n", "--immediate-mode", "-U", "-w", pcap)
	var dumpLog testutil.SyncBuffer
	dump.Stderr = &dumpLog
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dump.Process.Kill(); dump.Wait() })
	testutil.WaitFor(t, "tcpdump to listen on "+gw, 10*time.Second, func() bool { return strings.Contains(dumpLog.String(), "listening on") })
	try("container to container across hosts", a, "ping", "-c", "5", "-i", "0.2", "-W", "5", addrB)
	try("out, while capturing (the capture sees the gateway's traffic)", a, "ping", "-c", "1", "-W", "5", o.v4)
	try("out from h2, through h2's own gateway", b, "ping", "-c", "2", "-i", "0.2", "-W", "5", o.v4)
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	read := l.in(c.hosts["h1"].ns, "tcpdump", "-r", pcap, "-n")
	if strings.Contains(read, addrB) {
		t.Errorf("traffic of b, on h2, went through h1's gateway (between containers, or out):\n%s", read)
	}
	if !strings.Contains(read, o.v4) {
		t.Errorf("the capture on h1's gateway did not see the packet to the outside, so it proves nothing:\n%s\ntcpdump: %s", read, dumpLog.String())
	}
}

// TestL2Tunnel_egress: an l2tunnel network's way out is its policy host,
// which applies the network's policy to what leaves as to everything else:
// containers on both hosts reach the outside through h2, the policy host,
// except where a deny rule says no.
func TestL2Tunnel_egress(t *testing.T) {
	l := newLab(t)
	for _, bin := range []string{"nft", "dnsmasq", "iperf3", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skip(bin + " not installed (make deps installs it)")
		}
	}
	c := l.cluster("198.18.45", "h1", "h2")
	o := startOutside(t, l, c, "198.18.45", "fd18:45")
	c.cli("h1", "network", "create", "-d", "l2tunnel", "--subnet", "10.0.46.0/24", "-o", "policy-host=198.18.45.2",
		"-o", "policy-deny="+o.v4+":5201/tcp", "tun")
	c.waitNetwork("h2", "tun")
	a, b := l.netns("a"), l.netns("b")
	c.cli("h1", "endpoint", "create", "--network", "tun", "--name", "a", "--netns", a)
	c.cli("h2", "endpoint", "create", "--network", "tun", "--name", "b", "--netns", b)
	for _, ns := range []string{a, b} {
		if out, err := l.tryIn(ns, "ping", "-c", "2", "-i", "0.2", "-W", "5", o.v4); err != nil {
			t.Errorf("out through the policy host, from %s: %v\n%s", ns, err, out)
		}
		if out, err := l.tryIn(ns, "iperf3", "-c", o.v4, "-t", "1", "--connect-timeout", "2000"); err == nil {
			t.Errorf("the policy denies TCP to %s:5201, yet %s got through:\n%s", o.v4, ns, out)
		}
		if out, err := l.tryIn(ns, "curl", "-sS", "--max-time", "5", "http://"+o.v4+"/"); err != nil || out != "hello\n" {
			t.Errorf("TCP to a port the policy allows, from %s: %q, %v", ns, out, err)
		}
		if out, err := l.tryIn(ns, "ping", "-c", "1", "-W", "5", "10.0.46.1"); err != nil {
			t.Errorf("the gateway's address (the policy host's), from %s: %v\n%s", ns, err, out)
		}
	}
	if gw := hostnet.GatewayDevice("tun"); strings.Contains(l.in(c.hosts["h1"].ns, "ip", "-o", "link"), gw) {
		t.Errorf("h1, not the policy host, has a gateway %s for the l2tunnel network", gw)
	}
}
