package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// segment builds the physical network of the uplink tests on the bridge
// the cluster's hosts share (their ul0 is the uplink): an external host
// at .100 and a router at .254 to a second subnet with another external
// host.
func segment(t *testing.T, l *lab, c *cluster, prefix string) (ext, far string) {
	br := l.prefix + "-br"
	ext = l.netns("ext")
	l.veth(ext, "eth0", prefix+".100/24", br, "p-ext", "")
	l.run("ip", "-n", br, "link", "set", "p-ext", "master", "br0")
	rt := l.netns("rt")
	l.veth(rt, "eth0", prefix+".254/24", br, "p-rt", "")
	l.run("ip", "-n", br, "link", "set", "p-rt", "master", "br0")
	far = l.netns("far")
	l.veth(rt, "eth1", "10.46.1.1/24", far, "eth0", "10.46.1.2/24")
	l.in(rt, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.in(far, "ip", "route", "add", "default", "via", "10.46.1.1")
	return ext, far
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
			ext, _ := segment(t, l, c, prefix)
			c.cli("h1", "network", "create", "-d", drv, "--subnet", prefix+".0/24", "--ip-range", prefix+".128/26",
				"--gateway", prefix+".254", "-o", "uplink=ul0", "seg")
			a, b := l.netns("a"), l.netns("b")
			c.cli("h1", "endpoint", "create", "--network", "seg", "--name", "a", "--netns", a)
			testutil.WaitFor(t, "h2 to see the network", 10*time.Second, func() bool {
				return strings.Contains(c.cli("h2", "network", "ls"), "seg")
			})
			c.cli("h2", "endpoint", "create", "--network", "seg", "--name", "b", "--netns", b)
			eps := c.endpoints("h1")
			addrA, addrB := addrOf(t, eps["a"]).String(), addrOf(t, eps["b"]).String()

			ping := func(what, ns, dst string) {
				t.Helper()
				// The first packet to an unresolved neighbour is dropped
				// while vxnet asks for its MAC: retry within a deadline.
				testutil.WaitFor(t, what, 15*time.Second, func() bool {
					_, err := l.tryIn(ns, "ping", "-c", "1", "-W", "1", dst)
					return err == nil
				})
			}
			ping("external to container a", ext, addrA)
			ping("container a to external", a, prefix+".100")
			ping("a to b across the segment (h1 to h2)", a, addrB)
			ping("b to a by name", b, "a")
			ping("a to the far host, through the segment's router", a, "10.46.1.2")

			if drv == "l2bridge" {
				mac := func(ns, dev string) string {
					out := l.in(ns, "cat", "/sys/class/net/"+dev+"/address")
					return strings.TrimSpace(out)
				}
				h1MAC := mac(c.hosts["h1"].ns, "ul0")
				neigh := l.in(ext, "ip", "neigh", "show", addrA)
				if !strings.Contains(neigh, h1MAC) {
					t.Errorf("the external host holds %q for %s, want h1's MAC %s", strings.TrimSpace(neigh), addrA, h1MAC)
				}
				fdb := l.in(l.prefix+"-br", "bridge", "fdb", "show", "br", "br0")
				for _, e := range []string{"a", "b"} {
					if m := strings.ToLower(eps[e].MAC); m != "" && strings.Contains(strings.ToLower(fdb), m) {
						t.Errorf("the segment learned endpoint %s's MAC %s:\n%s", e, m, fdb)
					}
				}
			}
		})
	}
}
