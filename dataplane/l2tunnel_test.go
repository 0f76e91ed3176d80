package dataplane

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// l2tunnelTable: ports a (ip1) and b (ip1b) here, ip2 behind vtep2, ip3
// behind vtep3; policy and policyVTEP as given.
func l2tunnelTable(t *testing.T, r *rig, policyVTEP netip.Addr, policy *Policy) {
	t.Helper()
	tbl, err := NewTable([]NetworkSpec{{
		VNI: testVNI,
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: r.portB},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3},
		},
		PolicyVTEP: policyVTEP,
		Policy:     policy,
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
}

// On a host that is not the policy host, every packet goes to the policy
// host, even one for a port of the same host, and only the policy host may
// send in.
func TestL2Tunnel_hairpinsThroughThePolicyHost(t *testing.T) {
	r := newRig(t)
	l2tunnelTable(t, r, vtep3, nil)
	for _, dst := range []struct {
		ip  netip.Addr
		mac vxlan.MAC
	}{{ip1b, mac1b}, {ip2, mac2}} {
		pkt := ipv4UDP(ip1, dst.ip, 1, 2, []byte("via the policy host"))
		r.a.Inject(pkt)
		got, _ := recv(t, r.peer3)
		want := frame(testVNI, dst.mac, mac1, vxlan.EtherTypeIPv4, pkt)
		if !bytes.Equal(got, want) {
			t.Errorf("to %v: the policy host got %x, want %x", dst.ip, got, want)
		}
	}
	// Back from the policy host: delivered.
	back := ipv4UDP(ip1b, ip1, 2, 1, []byte("back"))
	send(t, r.peer3, frame(testVNI, mac1, mac1b, vxlan.EtherTypeIPv4, back))
	if got := out(t, r.a); !bytes.Equal(got, back) {
		t.Errorf("port a got %x, want %x", got, back)
	}
	// Straight from vtep2: refused.
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 2, 1, nil)))
	waitStats(t, r.sw, "the bypassing datagram to be dropped", func(s Stats) bool { return s.Drops["unknown_vtep"] == 1 })
	if s := r.sw.Stats(); s.PortTxPackets != 1 {
		t.Errorf("%d packets reached ports, want only the one through the policy host", s.PortTxPackets)
	}
}

// The policy host applies the policy, delivers to its own ports, and sends
// frames for other hosts on to their VTEPs as they came.
func TestL2Tunnel_policyHostDecidesAndForwards(t *testing.T) {
	r := newRig(t)
	deny, err := ParsePolicyRules("10.0.9.2:5201/udp, 10.0.9.4:7/udp", false)
	if err != nil {
		t.Fatal(err)
	}
	l2tunnelTable(t, r, netip.Addr{}, &Policy{Rules: deny, Default: true})

	onward := frame(testVNI, mac3, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip3, 1, 9, []byte("to host 3")))
	send(t, r.peer2, onward)
	if got, _ := recv(t, r.peer3); !bytes.Equal(got, onward) {
		t.Errorf("vtep3 got %x, want the frame as it came %x", got, onward)
	}
	ok := ipv4UDP(ip2, ip1, 1, 80, []byte("allowed"))
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ok))
	if got := out(t, r.a); !bytes.Equal(got, ok) {
		t.Errorf("port a got %x, want %x", got, ok)
	}
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 5201, nil)))
	send(t, r.peer2, frame(testVNI, mac3, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip3, 1, 7, nil)))
	// From its own port too, same host included.
	r.a.Inject(ipv4UDP(ip1b, ip1, 1, 5201, nil))
	r.b.Inject(ipv4UDP(ip1b, ip1, 1, 5201, nil))
	waitStats(t, r.sw, "four denied packets", func(s Stats) bool { return s.Drops["policy"] == 4 })
	local := ipv4UDP(ip1b, ip1, 1, 80, []byte("next door"))
	r.b.Inject(local)
	if got := out(t, r.a); !bytes.Equal(got, local) {
		t.Errorf("port a got %x, want %x", got, local)
	}
	if s := r.sw.Stats(); s.Drops["policy"] != 4 {
		t.Errorf("policy drops %d, want 4", s.Drops["policy"])
	}
}

// l2tunnel's way out: a host that is not the policy host sends what is
// bound for outside the network to the policy host; the policy host
// decides, for its own ports and for other hosts' containers alike, and
// sends it out through its gateway; what comes back through the gateway
// goes to the container, wherever it is, the policy aside: the host's
// filter (package hostnet) lets nothing into the gateway but replies and
// published ports.
func TestL2Tunnel_egressThroughThePolicyHost(t *testing.T) {
	subnet := []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")}
	world, blocked := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.9")

	// Not the policy host: out through vtep3, to the gateway's MAC.
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{{VNI: testVNI, Subnets: subnet, PolicyVTEP: vtep3,
		Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA}, {MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3}}}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	pkt := ipv4UDP(ip1, world, 1, 2, []byte("to the world"))
	r.a.Inject(pkt)
	if got, _ := recv(t, r.peer3); !bytes.Equal(got, frame(testVNI, vxlan.GatewayMAC(testVNI), mac1, vxlan.EtherTypeIPv4, pkt)) {
		t.Errorf("the policy host got %x, want the packet to the gateway's MAC", got)
	}

	// The policy host: port a is a container, port b the gateway; ip2
	// behind vtep2. The policy denies blocked, and ip2 as a destination:
	// replies to ip2 come through all the same.
	r = newRig(t)
	deny, err := ParsePolicyRules(blocked.String()+", "+ip2.String(), false)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err = NewTable([]NetworkSpec{{VNI: testVNI, Subnets: subnet, Gateway: r.portB, Policy: &Policy{Rules: deny, Default: true},
		Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA}, {MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2}}}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	fromFar := ipv4UDP(ip2, world, 1, 2, []byte("from host 2"))
	send(t, r.peer2, frame(testVNI, vxlan.GatewayMAC(testVNI), mac2, vxlan.EtherTypeIPv4, fromFar))
	if got := out(t, r.b); !bytes.Equal(got, fromFar) {
		t.Errorf("the gateway got %x, want host 2's packet %x", got, fromFar)
	}
	mine := ipv4UDP(ip1, world, 1, 2, []byte("from here"))
	r.a.Inject(mine)
	if got := out(t, r.b); !bytes.Equal(got, mine) {
		t.Errorf("the gateway got %x, want this host's packet %x", got, mine)
	}
	send(t, r.peer2, frame(testVNI, vxlan.GatewayMAC(testVNI), mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, blocked, 1, 2, nil)))
	r.a.Inject(ipv4UDP(ip1, blocked, 1, 2, nil))
	waitStats(t, r.sw, "two packets to a denied address dropped", func(s Stats) bool { return s.Drops["policy"] == 2 })
	reply := ipv4UDP(world, ip2, 2, 1, []byte("reply"))
	r.b.Inject(reply)
	if got, _ := recv(t, r.peer2); !bytes.Equal(got, frame(testVNI, mac2, vxlan.GatewayMAC(testVNI), vxlan.EtherTypeIPv4, reply)) {
		t.Errorf("host 2 got %x, want the reply", got)
	}
}
