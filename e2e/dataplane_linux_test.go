package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	testVNI      = 4097
	transferSize = 100 << 20
)

// endpointConf and friends mirror the static config file format.
type endpointConf struct {
	Name      string   `json:"name"`
	Netns     string   `json:"netns"`
	Ifname    string   `json:"ifname"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses"`
}

type remoteConf struct {
	VTEP      string   `json:"vtep"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses"`
}

type networkConf struct {
	VNI        int            `json:"vni"`
	Subnets    []string       `json:"subnets"`
	Endpoints  []endpointConf `json:"endpoints"`
	Remotes    []remoteConf   `json:"remotes,omitempty"`
	FloodVTEPs []string       `json:"floodVteps,omitempty"`
}

type staticConf struct {
	VTEP     string        `json:"vtep"`
	Networks []networkConf `json:"networks"`
}

var testSubnets = []string{"10.0.9.0/24", "fd00:9::/64"}

// TestDataplane_twoHosts_pingAndTransfer: two vxnet hosts on a veth
// underlay, one container each; ping and 100 MB TCP with a checksum check,
// both ways, over IPv4 and IPv6.
func TestDataplane_twoHosts_pingAndTransfer(t *testing.T) {
	l := newLab(t)
	c1, c2, a1, a2 := l.twoHosts("198.18.1")

	l.in(c1, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.0.9.3")
	l.in(c2, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.0.9.2")
	l.in(c1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::3")
	l.in(c2, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::2")

	for _, tc := range []struct {
		name           string
		client, server string
		addr           string
	}{
		{"v4 c1->c2", c1, c2, "10.0.9.3"},
		{"v4 c2->c1", c2, c1, "10.0.9.2"},
		{"v6 c1->c2", c1, c2, "fd00:9::3"},
		{"v6 c2->c1", c2, c1, "fd00:9::2"},
	} {
		transfer(t, tc.client, tc.server, netip.MustParseAddr(tc.addr), transferSize)
	}
	for _, a := range []*agent{a1, a2} {
		s := a.stats(t)
		if s.UnderlayRxPackets == 0 || s.UnderlayTxPackets == 0 {
			t.Errorf("switch counted no underlay traffic: %+v", s)
		}
		if s.Drops["unknown_vtep"] != 0 || s.Drops["unknown_vni"] != 0 || s.Drops["malformed"] != 0 {
			t.Errorf("unexpected drops between two well-configured hosts: %v", s.Drops)
		}
	}
}

// twoHosts builds two vxnet hosts (underlay net.1 and net.2) joined by a
// veth pair, with containers c1 (10.0.9.2, fd00:9::2) and c2 (.3).
func (l *lab) twoHosts(net string) (c1, c2 string, a1, a2 *agent) {
	h1, h2 := l.netns("h1"), l.netns("h2")
	c1, c2 = l.netns("c1"), l.netns("c2")
	l.veth(h1, "u0", net+".1/24", h2, "u0", net+".2/24")
	conf := func(vtep, cns, ip, peerVTEP, peerIP string) staticConf {
		return staticConf{VTEP: vtep, Networks: []networkConf{{
			VNI: testVNI, Subnets: testSubnets,
			Endpoints: []endpointConf{{Name: "c", Netns: cns, Ifname: "eth0", Addresses: []string{"10.0.9." + ip + "/24", "fd00:9::" + ip + "/64"}}},
			Remotes:   []remoteConf{{VTEP: peerVTEP, Addresses: []string{"10.0.9." + peerIP, "fd00:9::" + peerIP}}},
		}}}
	}
	a1 = l.startDataplane(h1, "h1", conf(net+".1", c1, "2", net+".2", "3"))
	a2 = l.startDataplane(h2, "h2", conf(net+".2", c2, "3", net+".1", "2"))
	return c1, c2, a1, a2
}

// kernelPeer builds a Linux kernel VXLAN host in hostNS: a vxlan device
// bridged to a veth into containerNS, whose eth0 gets mac and addrs. fdb
// lists the VTEPs that get the all-zeros (flood) FDB entry.
func (l *lab) kernelPeer(hostNS, localVTEP string, vni string, containerNS, mac string, addrs []string, fdb []string) {
	l.run("ip", "-n", hostNS, "link", "add", "vx0", "type", "vxlan", "id", vni, "dstport", "4789",
		"local", localVTEP, "nolearning")
	l.run("ip", "-n", hostNS, "link", "set", "vx0", "mtu", "1450")
	for _, dst := range fdb {
		l.run("bridge", "-n", hostNS, "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", dst)
	}
	l.run("ip", "-n", hostNS, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", hostNS, "link", "set", "vx0", "master", "br0")
	l.veth(hostNS, "cv0", "", containerNS, "eth0", "")
	l.run("ip", "-n", hostNS, "link", "set", "cv0", "master", "br0")
	l.run("ip", "-n", containerNS, "link", "set", "eth0", "address", mac, "mtu", "1450")
	for _, a := range addrs {
		l.run("ip", "-n", containerNS, "addr", "add", a, "dev", "eth0", "nodad")
	}
	for _, dev := range []string{"vx0", "br0"} {
		l.run("ip", "-n", hostNS, "link", "set", dev, "up")
	}
}

// TestDataplane_kernelPeer_interop: vxnet on host 1, the kernel's vxlan
// device on host 2 with only the all-zeros FDB entry towards vxnet. The
// kernel side ARPs (and sends neighbour solicitations); vxnet answers from
// its table. Ping and TCP both ways.
func TestDataplane_kernelPeer_interop(t *testing.T) {
	l := newLab(t)
	h1, h2, c1, c2 := l.netns("h1"), l.netns("h2"), l.netns("c1"), l.netns("c2")
	l.veth(h1, "u0", "198.18.2.1/24", h2, "u0", "198.18.2.2/24")
	const kernelMAC = "02:00:00:00:09:03"
	l.kernelPeer(h2, "198.18.2.2", "4097", c2, kernelMAC, []string{"10.0.9.3/24", "fd00:9::3/64"}, []string{"198.18.2.1"})
	a1 := l.startDataplane(h1, "h1", staticConf{VTEP: "198.18.2.1", Networks: []networkConf{{
		VNI: testVNI, Subnets: testSubnets,
		Endpoints: []endpointConf{{Name: "c1", Netns: c1, Ifname: "eth0", Addresses: []string{"10.0.9.2/24", "fd00:9::2/64"}}},
		Remotes:   []remoteConf{{VTEP: "198.18.2.2", MAC: kernelMAC, Addresses: []string{"10.0.9.3", "fd00:9::3"}}},
	}}})

	// The kernel side speaks first: it must resolve 10.0.9.2 through vxnet.
	l.in(c2, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.0.9.2")
	l.in(c1, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.0.9.3")
	l.in(c2, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::2")
	l.in(c1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", "fd00:9::3")

	neigh := l.in(c2, "ip", "neigh", "show", "10.0.9.2")
	if !strings.Contains(neigh, "02:42:0a:00:09:02") {
		t.Errorf("kernel container did not learn vxnet endpoint's MAC from vxnet's ARP reply: %q", neigh)
	}
	if s := a1.stats(t); s.NeighborReplies == 0 {
		t.Errorf("vxnet sent no ARP/ND reply: %+v", s)
	}
	transfer(t, c1, c2, netip.MustParseAddr("10.0.9.3"), transferSize)
	transfer(t, c2, c1, netip.MustParseAddr("10.0.9.2"), transferSize)
}

// TestDataplane_kernelPeer_unlistedAddresses: the kernel peer's
// container holds addresses vxnet's table does not list (only its VTEP is
// configured, as a flood VTEP). vxnet resolves them as a kernel VTEP
// would: ARP and neighbour solicitation over the overlay, the first
// packet held meanwhile (a single echo request is answered), the answers
// learnt; TCP works both ways over both families (it used to be flooded
// to the broadcast MAC, which Linux drops for TCP).
func TestDataplane_kernelPeer_unlistedAddresses(t *testing.T) {
	l := newLab(t)
	h1, h2, c1, c2 := l.netns("h1"), l.netns("h2"), l.netns("c1"), l.netns("c2")
	l.veth(h1, "u0", "198.18.6.1/24", h2, "u0", "198.18.6.2/24")
	l.kernelPeer(h2, "198.18.6.2", "4097", c2, "02:00:00:00:09:50", []string{"10.0.9.50/24", "fd00:9::50/64"}, []string{"198.18.6.1"})
	a1 := l.startDataplane(h1, "h1", staticConf{VTEP: "198.18.6.1", Networks: []networkConf{{
		VNI: testVNI, Subnets: testSubnets, FloodVTEPs: []string{"198.18.6.2"},
		Endpoints: []endpointConf{{Name: "c1", Netns: c1, Ifname: "eth0", Addresses: []string{"10.0.9.2/24", "fd00:9::2/64"}}},
	}}})
	// vxnet speaks first: nothing has taught it the addresses. One echo
	// request each: it is held while vxnet asks, not lost.
	l.in(c1, "ping", "-c", "1", "-W", "5", "10.0.9.50")
	l.in(c1, "ping", "-6", "-c", "1", "-W", "5", "fd00:9::50")
	for _, tc := range []struct{ client, server, addr string }{
		{c1, c2, "10.0.9.50"}, {c2, c1, "10.0.9.2"}, {c1, c2, "fd00:9::50"}, {c2, c1, "fd00:9::2"},
	} {
		transfer(t, tc.client, tc.server, netip.MustParseAddr(tc.addr), 20<<20)
	}
	if s := a1.stats(t); s.NeighborReplies == 0 || s.Drops["neighbor_miss"] != 0 {
		t.Errorf("stats %+v: want ARP/ND sent for the first packets, none dropped while resolving", s)
	}
}

// TestDataplane_threeHosts_floodAndAllowList: vxnet on hosts 1 and 3, the
// kernel on host 2. A broadcast ping from the kernel's container reaches
// the endpoints on both vxnet hosts. Frames for an unknown VNI, and frames
// from an address that is no VTEP of the network, are dropped and counted.
func TestDataplane_threeHosts_floodAndAllowList(t *testing.T) {
	l := newLab(t)
	sw := l.netns("sw")
	l.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", sw, "link", "set", "br0", "up")
	hosts := map[int]string{}
	for i := 1; i <= 4; i++ {
		h := l.netns("h" + string(rune('0'+i)))
		hosts[i] = h
		port := "p" + string(rune('0'+i))
		l.veth(h, "u0", "198.18.3."+string(rune('0'+i))+"/24", sw, port, "")
		l.run("ip", "-n", sw, "link", "set", port, "master", "br0")
	}
	c1, c2, c3, c4 := l.netns("c1"), l.netns("c2"), l.netns("c3"), l.netns("c4")
	const kernelMAC = "02:00:00:00:09:03"
	l.kernelPeer(hosts[2], "198.18.3.2", "4097", c2, kernelMAC, []string{"10.0.9.3/24"}, []string{"198.18.3.1", "198.18.3.3"})

	vx := func(vtep, cns, ip string) staticConf {
		return staticConf{VTEP: vtep, Networks: []networkConf{{
			VNI: testVNI, Subnets: testSubnets,
			Endpoints: []endpointConf{{Name: "c", Netns: cns, Ifname: "eth0", Addresses: []string{"10.0.9." + ip + "/24"}}},
			Remotes:   []remoteConf{{VTEP: "198.18.3.2", MAC: kernelMAC, Addresses: []string{"10.0.9.3"}}},
		}}}
	}
	a1 := l.startDataplane(hosts[1], "h1", vx("198.18.3.1", c1, "2"))
	l.startDataplane(hosts[3], "h3", vx("198.18.3.3", c3, "4"))
	for _, c := range []string{c1, c3} {
		l.in(c, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0")
	}

	// Broadcast: both vxnet endpoints answer the kernel container.
	out, _ := l.tryIn(c2, "ping", "-b", "-c", "3", "-i", "0.3", "-W", "3", "10.0.9.255")
	for _, want := range []string{"from 10.0.9.2", "from 10.0.9.4"} {
		if !strings.Contains(out, want) {
			t.Errorf("broadcast ping from the kernel peer got no reply %q:\n%s", want, out)
		}
	}

	// Unknown VNI: a second kernel vxlan device on host 2 with VNI 999
	// sends its ARP broadcasts to vxnet on host 1.
	before := a1.stats(t)
	l.run("ip", "-n", hosts[2], "link", "add", "vx9", "type", "vxlan", "id", "999", "dstport", "4789",
		"local", "198.18.3.2", "nolearning")
	l.run("bridge", "-n", hosts[2], "fdb", "append", "00:00:00:00:00:00", "dev", "vx9", "dst", "198.18.3.1")
	l.run("ip", "-n", hosts[2], "addr", "add", "10.99.0.1/24", "dev", "vx9")
	l.run("ip", "-n", hosts[2], "link", "set", "vx9", "up")
	l.tryIn(hosts[2], "ping", "-c", "1", "-W", "1", "10.99.0.2")
	waitFor(t, "an unknown_vni drop on host 1", 10*time.Second, func() bool {
		return a1.stats(t).Drops["unknown_vni"] > before.Drops["unknown_vni"]
	})

	// Unknown VTEP: host 4 is on the underlay but in no table; its kernel
	// vxlan device uses the right VNI.
	l.kernelPeer(hosts[4], "198.18.3.4", "4097", c4, "02:00:00:00:09:32", []string{"10.0.9.50/24"}, []string{"198.18.3.1"})
	if out, err := l.tryIn(c4, "ping", "-c", "1", "-W", "1", "10.0.9.2"); err == nil {
		t.Errorf("a host outside the table reached a vxnet endpoint:\n%s", out)
	}
	waitFor(t, "an unknown_vtep drop on host 1", 10*time.Second, func() bool {
		return a1.stats(t).Drops["unknown_vtep"] > before.Drops["unknown_vtep"]
	})
}
