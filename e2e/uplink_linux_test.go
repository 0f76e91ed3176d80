package e2e

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// segment builds the physical network of the uplink tests on the bridge
// the cluster's hosts share (their ul0 is the uplink): an external host
// at .100 and a router at .254 to a second subnet with another external
// host. It returns the external host's namespace.
func segment(l *lab, prefix string) string {
	br := l.prefix + "-br"
	ext := l.netns("ext")
	l.veth(ext, "eth0", prefix+".100/24", br, "p-ext", "")
	l.run("ip", "-n", br, "link", "set", "p-ext", "master", "br0")
	rt := l.netns("rt")
	l.veth(rt, "eth0", prefix+".254/24", br, "p-rt", "")
	l.run("ip", "-n", br, "link", "set", "p-rt", "master", "br0")
	far := l.netns("far")
	l.veth(rt, "eth1", "10.46.1.1/24", far, "eth0", "10.46.1.2/24")
	l.in(rt, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.in(far, "ip", "route", "add", "default", "via", "10.46.1.1")
	return ext
}

// TestUplink_transparentAndL2Bridge: endpoints on the hosts' physical
// segment, each host's ul0 its uplink. For both drivers: an external host
// and a container reach each other, containers on two hosts reach each
// other across the segment, a container reaches a host behind the
// segment's router (cross-subnet), and names resolve. For l2bridge, the
// segment's bridge never learns an endpoint's MAC, and the external host
// holds the host's MAC for the endpoint's address.
func TestUplink_transparentAndL2Bridge(t *testing.T) {
	for i, drv := range []string{"transparent", "l2bridge"} {
		t.Run(drv, func(t *testing.T) {
			l := newLab(t)
			prefix := []string{"198.18.46", "198.18.47"}[i]
			c := l.cluster(prefix, "h1", "h2")
			ext := segment(l, prefix)
			c.cli("h1", "network", "create", "-d", drv, "--subnet", prefix+".0/24", "--ip-range", prefix+".128/26",
				"--gateway", prefix+".254", "-o", "uplink=ul0", "seg")
			a, b := l.netns("a"), l.netns("b")
			c.cli("h1", "endpoint", "create", "--network", "seg", "--name", "a", "--netns", a)
			testutil.WaitFor(t, "h2 to see the network", 10*time.Second, func() bool {
				return strings.Contains(c.cli("h2", "network", "ls"), "seg")
			})
			c.cli("h2", "endpoint", "create", "--network", "seg", "--name", "b", "--netns", b)
			a2 := l.netns("a2")
			c.cli("h1", "endpoint", "create", "--network", "seg", "--name", "a2", "--netns", a2)
			// A second subnet on the same segment, which no router serves:
			// only the host routes between the two.
			sub2 := []string{"10.46.5", "10.47.5"}[i]
			c.cli("h1", "network", "create", "-d", drv, "--subnet", sub2+".0/24", "-o", "uplink=ul0", "seg2")
			a3 := l.netns("a3")
			c.cli("h1", "endpoint", "create", "--network", "seg2", "--name", "a3", "--netns", a3)
			eps := c.endpoints("h1")
			addrA, addrB := addrOf(t, eps["a"]).String(), addrOf(t, eps["b"]).String()

			ping := func(what, ns, dst string) { t.Helper(); l.waitPing(what, ns, dst) }
			// For l2bridge, a capture on the segment of what h1 sends,
			// listening before the first frame.
			var capture bytes.Buffer
			var dump *exec.Cmd
			if drv == "l2bridge" {
				dump = exec.Command("ip", "netns", "exec", l.prefix+"-br", "tcpdump", "-i", "p-h1", "-Q", "in", "-e", "-n", "-l")
				dump.Stdout = &capture
				var status testutil.SyncBuffer
				dump.Stderr = &status
				if err := dump.Start(); err != nil {
					t.Fatalf("tcpdump: %v", err)
				}
				t.Cleanup(func() { dump.Process.Kill(); dump.Wait() })
				testutil.WaitFor(t, "tcpdump to listen", 10*time.Second, func() bool {
					return strings.Contains(status.String(), "listening on")
				})
			}
			// The first packet to a neighbour not known yet waits while
			// vxnet asks for its MAC: one ping is answered.
			if out, err := l.tryIn(a, "ping", "-c", "1", "-W", "5", prefix+".100"); err != nil {
				t.Errorf("one ping from container a to the external host, not known yet: %v\n%s", err, out)
			}
			ping("external to container a", ext, addrA)
			ping("container a to external", a, prefix+".100")
			ping("a to b across the segment (h1 to h2)", a, addrB)
			ping("b to a by name", b, "a")
			ping("a to a2 on the same host", a, "a2")
			addrA3 := addrOf(t, c.endpoints("h1")["a3"]).String()
			ping("a to a3, another subnet on the same host, routed by the host", a, addrA3)
			ping("a3 back to a", a3, addrA)
			ping("a to the far host, through the segment's router", a, "10.46.1.2")

			if drv == "l2bridge" {
				mac := func(ns, dev string) string {
					out := l.in(ns, "cat", "/sys/class/net/"+dev+"/address")
					return strings.TrimSpace(out)
				}
				h1MAC := mac(c.hosts["h1"].ns, "ul0")
				dump.Process.Signal(os.Interrupt)
				dump.Wait()
				frames := 0
				for _, line := range strings.Split(capture.String(), "\n") {
					f := strings.Fields(line)
					if len(f) < 2 {
						continue
					}
					frames++
					if f[1] != h1MAC {
						t.Errorf("the segment saw a frame from h1 with source MAC %s, not h1's %s: %s", f[1], h1MAC, line)
					}
				}
				if frames < 5 {
					t.Errorf("the capture on the segment holds %d frames from h1, want the pings':\n%s", frames, capture.String())
				}
				neigh := l.in(ext, "ip", "neigh", "show", addrA)
				if !strings.Contains(neigh, h1MAC) {
					t.Errorf("the external host holds %q for %s, want h1's MAC %s", strings.TrimSpace(neigh), addrA, h1MAC)
				}
				fdb := l.in(l.prefix+"-br", "bridge", "fdb", "show", "br", "br0")
				for _, e := range []string{"a", "a2", "a3", "b"} {
					m := strings.ToLower(eps[e].MAC)
					if m == "" {
						t.Fatalf("endpoint %s has no MAC in endpoint ls", e)
					}
					if strings.Contains(strings.ToLower(fdb), m) {
						t.Errorf("the segment learned endpoint %s's MAC %s:\n%s", e, m, fdb)
					}
				}
			}
		})
	}
}

// TestUplink_transparentDHCP: a transparent network whose endpoints lease
// their addresses from dnsmasq on the segment; the lease shows in
// dnsmasq's lease file under the endpoint's MAC, the endpoint is reachable
// at it, and removing the endpoint releases it. A lease outside the
// network's subnet, and a network whose uplink the host lacks, are
// refused.
func TestUplink_transparentDHCP(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq not installed (make deps installs it)")
	}
	c := l.cluster("198.18.48", "h1")
	ext := segment(l, "198.18.48")
	leases := filepath.Join(l.dir, "dnsmasq.leases")
	l.startIn(ext, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root",
		"--interface=eth0", "--bind-interfaces", "--port=0", "--dhcp-range=198.18.48.200,198.18.48.220,255.255.255.0,1h",
		"--dhcp-option=option:router,198.18.48.254", "--dhcp-leasefile="+leases, "--pid-file="+filepath.Join(l.dir, "dnsmasq.pid"))

	c.cli("h1", "network", "create", "-d", "transparent", "--subnet", "198.18.48.0/24", "--gateway", "198.18.48.254",
		"-o", "uplink=ul0", "-o", "dhcp=true", "dh")
	a := l.netns("a")
	c.cli("h1", "endpoint", "create", "--network", "dh", "--name", "a", "--netns", a)
	ep := c.endpoints("h1")["a"]
	addr := addrOf(t, ep)
	if r := netip.MustParsePrefix("198.18.48.0/24"); !r.Contains(addr) || addr.As4()[3] < 200 || addr.As4()[3] > 220 {
		t.Fatalf("endpoint got %v, not an address of dnsmasq's range", addr)
	}
	// dnsmasq writes its lease file at moments of its own.
	testutil.WaitFor(t, "dnsmasq's leases to hold "+addr.String()+" for "+ep.MAC, 10*time.Second, func() bool {
		b, _ := os.ReadFile(leases)
		return strings.Contains(strings.ToLower(string(b)), strings.ToLower(ep.MAC)+" "+addr.String())
	})
	l.waitPing("the external host to reach the endpoint", ext, addr.String())
	if out, err := l.tryIn(a, "ping", "-c", "2", "-i", "0.2", "-W", "5", "198.18.48.100"); err != nil {
		t.Errorf("endpoint to the external host: %v\n%s", err, out)
	}
	if out, err := c.tryCLI("h1", "endpoint", "create", "--network", "dh", "--name", "x", "--netns", a, "--ip", "198.18.48.9"); err == nil || !strings.Contains(out, "DHCP") {
		t.Errorf("--ip on a DHCP network: %v\n%s", err, out)
	}
	c.cli("h1", "endpoint", "rm", "--network", "dh", "a")
	testutil.WaitFor(t, "dnsmasq to drop the released lease", 10*time.Second, func() bool {
		b, _ := os.ReadFile(leases)
		return !strings.Contains(string(b), addr.String())
	})
	// A network whose --subnet is not the segment's: the server's lease
	// is given back and the endpoint refused, naming both.
	c.cli("h1", "network", "create", "-d", "transparent", "--subnet", "10.48.0.0/24", "-o", "uplink=ul0", "-o", "dhcp=true", "dhwrong")
	w := l.netns("w")
	if out, err := c.tryCLI("h1", "endpoint", "create", "--network", "dhwrong", "--name", "w", "--netns", w); err == nil || !strings.Contains(out, "outside the network's subnet 10.48.0.0/24") {
		t.Errorf("an endpoint leased outside its network's subnet: %v\n%s", err, out)
	}
	if _, ok := c.endpoints("h1")["w"]; ok {
		t.Error("the refused endpoint is listed")
	}
	// An uplink this host does not have: refused, not up and cut off.
	c.cli("h1", "network", "create", "-d", "transparent", "--subnet", "10.49.0.0/24", "-o", "uplink=nosuch0", "nonic")
	if out, err := c.tryCLI("h1", "endpoint", "create", "--network", "nonic", "--name", "n", "--netns", w); err == nil || !strings.Contains(out, `its uplink "nosuch0" is not a NIC of this host`) {
		t.Errorf("an endpoint on a network whose uplink this host lacks: %v\n%s", err, out)
	}
}

// TestUplink_ipv6: transparent and l2bridge networks of IPv6 on the hosts'
// segment: vxnet speaks neighbour discovery for its endpoints. An
// external host and a container reach each other, containers on two
// hosts reach each other across the segment and by name, and a container
// reaches a host behind the segment's router (--gateway). On l2bridge the
// external host holds the host's MAC for the endpoint's address.
func TestUplink_ipv6(t *testing.T) {
	for i, drv := range []string{"transparent", "l2bridge"} {
		t.Run(drv, func(t *testing.T) {
			l := newLab(t)
			prefix := []string{"198.18.56", "198.18.57"}[i]
			seg := []string{"fd18:56::", "fd18:57::"}[i]
			c := l.cluster(prefix, "h1", "h2")
			br := l.prefix + "-br"
			ext := l.netns("ext")
			l.veth(ext, "eth0", "", br, "p-ext", "")
			l.run("ip", "-n", br, "link", "set", "p-ext", "master", "br0")
			l.run("ip", "-n", ext, "addr", "add", seg+"100/64", "dev", "eth0", "nodad")
			rt, far := l.netns("rt"), l.netns("far")
			l.veth(rt, "eth0", "", br, "p-rt", "")
			l.run("ip", "-n", br, "link", "set", "p-rt", "master", "br0")
			l.run("ip", "-n", rt, "addr", "add", seg+"254/64", "dev", "eth0", "nodad")
			l.veth(rt, "eth1", "", far, "eth0", "")
			l.run("ip", "-n", rt, "addr", "add", "fd18:99::1/64", "dev", "eth1", "nodad")
			l.run("ip", "-n", far, "addr", "add", "fd18:99::2/64", "dev", "eth0", "nodad")
			l.in(rt, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
			l.run("ip", "-n", far, "-6", "route", "add", "default", "via", "fd18:99::1")
			l.run("ip", "-n", ext, "-6", "route", "add", "fd18:99::/64", "via", seg+"254")

			c.cli("h1", "network", "create", "-d", drv, "--subnet", seg+"/64", "--ip-range", seg+"80/122",
				"--gateway", seg+"254", "-o", "uplink=ul0", "seg6")
			a, b := l.netns("a"), l.netns("b")
			c.cli("h1", "endpoint", "create", "--network", "seg6", "--name", "a", "--netns", a)
			testutil.WaitFor(t, "h2 to see the network", 10*time.Second, func() bool {
				return strings.Contains(c.cli("h2", "network", "ls"), "seg6")
			})
			c.cli("h2", "endpoint", "create", "--network", "seg6", "--name", "b", "--netns", b)
			addrA, addrB := addrOf(t, c.endpoints("h1")["a"]), addrOf(t, c.endpoints("h2")["b"])
			if !addrA.Is6() || !addrB.Is6() {
				t.Fatalf("addresses %v %v, want IPv6", addrA, addrB)
			}
			ping := func(what, ns, dst string) { t.Helper(); l.waitPing(what, ns, dst) }
			ping("external to container a", ext, addrA.String())
			ping("container a to external", a, seg+"100")
			ping("a to b across the segment (h1 to h2)", a, addrB.String())
			ping("b to a by name", b, "a")
			ping("a to the far host, through the segment's router", a, "fd18:99::2")
			if drv == "l2bridge" {
				h1MAC := strings.TrimSpace(l.in(c.hosts["h1"].ns, "cat", "/sys/class/net/ul0/address"))
				if neigh := l.in(ext, "ip", "-6", "neigh", "show", addrA.String()); !strings.Contains(neigh, h1MAC) {
					t.Errorf("the external host holds %q for %s, want h1's MAC %s", strings.TrimSpace(neigh), addrA, h1MAC)
				}
			}
		})
	}
}
