package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vxnet/vxnet/dataplane/udp/udptest"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

func TestSwitch_inside_encapsToRemoteVTEP(t *testing.T) {
	r := newRig(t)
	for name, tc := range map[string]struct {
		pkt       []byte
		peer      func() []byte
		dstMAC    vxlan.MAC
		etherType uint16
	}{
		"ipv4 to vtep2": {ipv4UDP(ip1, ip2, 1000, 2000, []byte("hello")), nil, mac2, vxlan.EtherTypeIPv4},
		"ipv6 to vtep2": {ipv6UDP(ip6a, ip62, []byte("hello6")), nil, mac2, vxlan.EtherTypeIPv6},
	} {
		t.Run(name, func(t *testing.T) {
			r.a.Inject(tc.pkt)
			got, _ := recv(t, r.peer2)
			f, err := vxlan.Decap(got)
			if err != nil {
				t.Fatal(err)
			}
			if f.VNI != testVNI || f.Eth.Dst != tc.dstMAC || f.Eth.Src != mac1 || f.Eth.Type != tc.etherType {
				t.Errorf("frame %+v: want vni %d dst %v src %v type %#x", f, testVNI, tc.dstMAC, mac1, tc.etherType)
			}
			if !bytes.Equal(got[f.PayloadOffset:], tc.pkt) {
				t.Errorf("payload changed in transit")
			}
		})
	}
}

func TestSwitch_outside_decapsToPort(t *testing.T) {
	r := newRig(t)
	pkt := ipv4UDP(ip2, ip1, 2000, 1000, []byte("from afar"))
	padded := append(append([]byte(nil), pkt...), 0, 0, 0, 0, 0, 0) // Ethernet padding
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, padded))
	if got := out(t, r.a); !bytes.Equal(got, pkt) {
		t.Errorf("port a got %x, want %x (padding must be trimmed)", got, pkt)
	}
	pkt6 := ipv6UDP(ip62, ip6a, []byte("v6"))
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv6, pkt6))
	if got := out(t, r.a); !bytes.Equal(got, pkt6) {
		t.Errorf("port a got %x, want %x", got, pkt6)
	}
}

func TestSwitch_local_neverTouchesUnderlay(t *testing.T) {
	r := newRig(t)
	pkt := ipv4UDP(ip1, ip1b, 1, 2, []byte("next door"))
	r.a.Inject(pkt)
	if got := out(t, r.b); !bytes.Equal(got, pkt) {
		t.Errorf("port b got %x, want %x", got, pkt)
	}
	// Counters are added once per batch, after both flushes: once the
	// port write shows, the batch's underlay count is final.
	s := waitStats(t, r.sw, "the port write to be counted", func(s Stats) bool { return s.PortTxPackets == 1 })
	if s.UnderlayTxPackets != 0 {
		t.Errorf("local delivery sent %d datagrams to the underlay", s.UnderlayTxPackets)
	}
}

func TestSwitch_flood_replicatesToEveryVTEPAndPort(t *testing.T) {
	r := newRig(t)
	for name, tc := range map[string]struct {
		dst    netip.Addr
		dstMAC vxlan.MAC
	}{
		"subnet broadcast":  {netip.MustParseAddr("10.0.9.255"), vxlan.Broadcast},
		"limited broadcast": {netip.MustParseAddr("255.255.255.255"), vxlan.Broadcast},
		"multicast":         {netip.MustParseAddr("224.0.0.251"), vxlan.MAC{1, 0, 0x5e, 0, 0, 0xfb}},
	} {
		t.Run(name, func(t *testing.T) {
			pkt := ipv4UDP(ip1, tc.dst, 5353, 5353, []byte(name))
			r.a.Inject(pkt)
			for _, peer := range []struct {
				name string
				recv func() []byte
			}{
				{"vtep2", func() []byte { b, _ := recv(t, r.peer2); return b }},
				{"vtep3", func() []byte { b, _ := recv(t, r.peer3); return b }},
			} {
				got := peer.recv()
				f, err := vxlan.Decap(got)
				if err != nil || f.Eth.Dst != tc.dstMAC || !bytes.Equal(got[vxlan.EncapLen:], pkt) {
					t.Errorf("%s got frame %+v err %v, want dst MAC %v and the packet", peer.name, f, err, tc.dstMAC)
				}
			}
			if got := out(t, r.b); !bytes.Equal(got, pkt) {
				t.Errorf("port b did not get the flooded packet")
			}
		})
	}
}

func TestSwitch_outside_broadcastReachesAllLocalPorts(t *testing.T) {
	r := newRig(t)
	pkt := ipv4UDP(ip2, netip.MustParseAddr("10.0.9.255"), 1, 2, []byte("all"))
	send(t, r.peer2, frame(testVNI, vxlan.Broadcast, mac2, vxlan.EtherTypeIPv4, pkt))
	for _, d := range []*struct{ name string }{{"a"}, {"b"}} {
		dev := r.a
		if d.name == "b" {
			dev = r.b
		}
		if got := out(t, dev); !bytes.Equal(got, pkt) {
			t.Errorf("port %s got %x", d.name, got)
		}
	}
}

// arpRequest builds an ARP request from (mac, ip) asking for target.
func arpRequest(mac vxlan.MAC, ip, target netip.Addr) []byte {
	a := make([]byte, arpLen)
	copy(a, arpFixedHeader)
	binary.BigEndian.PutUint16(a[arpOpOffset:], arpOpRequest)
	copy(a[arpSHAOffset:], mac[:])
	s, d := ip.As4(), target.As4()
	copy(a[arpSPAOffset:], s[:])
	copy(a[arpTPAOffset:], d[:])
	return a
}

func TestSwitch_ARP_answeredFromTable(t *testing.T) {
	r := newRig(t)
	for name, tc := range map[string]struct {
		target netip.Addr
		mac    vxlan.MAC
	}{
		"local endpoint":           {ip1, mac1},
		"endpoint on another VTEP": {ip3, mac3},
	} {
		t.Run(name, func(t *testing.T) {
			send(t, r.peer2, frame(testVNI, vxlan.Broadcast, mac2, vxlan.EtherTypeARP, arpRequest(mac2, ip2, tc.target)))
			got, _ := recv(t, r.peer2)
			pkt := gopacket.NewPacket(got, layers.LayerTypeVXLAN, gopacket.Default)
			arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
			eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if arp == nil || eth == nil {
				t.Fatalf("reply is not an ARP frame: %v", pkt)
			}
			if arp.Operation != layers.ARPReply || !bytes.Equal(arp.SourceHwAddress, tc.mac[:]) ||
				!bytes.Equal(arp.SourceProtAddress, tc.target.AsSlice()) ||
				!bytes.Equal(arp.DstHwAddress, mac2[:]) || !bytes.Equal(arp.DstProtAddress, ip2.AsSlice()) {
				t.Errorf("bad ARP reply %+v", arp)
			}
			if !bytes.Equal(eth.DstMAC, mac2[:]) || !bytes.Equal(eth.SrcMAC, tc.mac[:]) {
				t.Errorf("bad Ethernet header %v -> %v", eth.SrcMAC, eth.DstMAC)
			}
		})
	}
	t.Run("unknown address is not answered", func(t *testing.T) {
		// The switch counts a reply after sending it: wait until both
		// replies above are counted before taking the baseline.
		waitStats(t, r.sw, "the replies above counted", func(s Stats) bool { return s.NeighborReplies >= 2 })
		before := r.sw.Stats()
		send(t, r.peer2, frame(testVNI, vxlan.Broadcast, mac2, vxlan.EtherTypeARP, arpRequest(mac2, ip2, netip.MustParseAddr("10.0.9.200"))))
		waitStats(t, r.sw, "a no_endpoint drop", func(s Stats) bool { return s.Drops["no_endpoint"] > before.Drops["no_endpoint"] })
		if s := r.sw.Stats(); s.NeighborReplies != before.NeighborReplies {
			t.Errorf("answered ARP for an address not in the table")
		}
	})
}

func TestSwitch_NS_answeredWithNA(t *testing.T) {
	r := newRig(t)
	// Neighbour solicitation from fd00:9::3 (vtep2) for fd00:9::2 (local).
	snm := netip.MustParseAddr("ff02::1:ff00:2")
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: ip6a.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: mac2[:]}}}
	ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255, SrcIP: ip62.AsSlice(), DstIP: snm.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	icmp.SetNetworkLayerForChecksum(ip6)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip6, icmp, ns); err != nil {
		t.Fatal(err)
	}
	send(t, r.peer2, frame(testVNI, vxlan.MulticastMAC(snm), mac2, vxlan.EtherTypeIPv6, buf.Bytes()))
	got, _ := recv(t, r.peer2)
	pkt := gopacket.NewPacket(got[vxlan.EncapLen:], layers.LayerTypeIPv6, gopacket.Default)
	na, _ := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	gotIP, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	gotICMP, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if na == nil || gotIP == nil || gotICMP == nil {
		t.Fatalf("reply is not a neighbour advertisement: %v", pkt)
	}
	if !bytes.Equal(na.TargetAddress, ip6a.AsSlice()) || !na.Solicited() || !na.Override() || na.Router() {
		t.Errorf("bad NA %+v", na)
	}
	if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, mac1[:]) {
		t.Errorf("NA options %+v, want target link-layer address %v", na.Options, mac1)
	}
	if !gotIP.SrcIP.Equal(ip6a.AsSlice()) || !gotIP.DstIP.Equal(ip62.AsSlice()) || gotIP.HopLimit != 255 {
		t.Errorf("NA IPv6 header %v -> %v hop %d", gotIP.SrcIP, gotIP.DstIP, gotIP.HopLimit)
	}
	// Verify the checksum independently: recompute with gopacket.
	want := gotICMP.Checksum
	gotICMP.SetNetworkLayerForChecksum(gotIP)
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, gotICMP, gopacket.Payload(gotICMP.Payload)); err != nil {
		t.Fatal(err)
	}
	if c := binary.BigEndian.Uint16(sb.Bytes()[2:]); c != want {
		t.Errorf("NA checksum %#04x, want %#04x", want, c)
	}
}

func TestSwitch_drops_countedByReason(t *testing.T) {
	r := newRig(t)
	good := ipv4UDP(ip2, ip1, 1, 2, []byte("x"))
	badFlags := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, good)
	badFlags[0] = 0
	for name, tc := range map[string]struct {
		from   *udptest.Conn
		dgram  []byte
		reason string
	}{
		"unknown VNI":     {nil, frame(999, mac1, mac2, vxlan.EtherTypeIPv4, good), "unknown_vni"},
		"unknown VTEP":    {r.stranger, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, good), "unknown_vtep"},
		"short datagram":  {nil, []byte{8, 0, 0}, "malformed"},
		"missing I flag":  {nil, badFlags, "malformed"},
		"bad IP header":   {nil, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, []byte{0x45, 0, 0}), "malformed"},
		"other ethertype": {nil, frame(testVNI, mac1, mac2, 0x88cc, good), "unsupported"},
		"no endpoint":     {nil, frame(testVNI, mac3, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip3, 1, 2, nil)), "no_endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			before := r.sw.Stats().Drops[tc.reason]
			peer := r.peer2
			if tc.from != nil {
				peer = tc.from
			}
			send(t, peer, tc.dgram)
			waitStats(t, r.sw, tc.reason+" drop", func(s Stats) bool { return s.Drops[tc.reason] == before+1 })
		})
	}
	select {
	case p := <-r.a.Outbound():
		t.Errorf("a dropped datagram reached port a: %x", p)
	default:
	}
}

func TestFlowHash_stablePerFlowAndSpread(t *testing.T) {
	a := ipv4UDP(ip1, ip2, 1000, 2000, []byte("a"))
	b := ipv4UDP(ip1, ip2, 1000, 2000, []byte("different payload"))
	ia, _ := parseIP(a)
	ib, _ := parseIP(b)
	if flowHash(a, &ia) != flowHash(b, &ib) {
		t.Error("one flow hashed to two values")
	}
	seen := map[uint32]bool{}
	for port := uint16(1); port <= 64; port++ {
		p := ipv4UDP(ip1, ip2, port, 2000, nil)
		info, _ := parseIP(p)
		seen[flowHash(p, &info)%8] = true
	}
	if len(seen) < 8 {
		t.Errorf("64 flows used only %d of 8 source ports", len(seen))
	}
	p6 := ipv6UDP(ip6a, ip62, nil)
	q6 := ipv6UDP(ip62, ip6a, nil)
	i6, _ := parseIP(p6)
	j6, _ := parseIP(q6)
	if flowHash(p6, &i6) == flowHash(q6, &j6) {
		t.Error("swapping IPv6 source and destination gave the same hash")
	}
}

// TestSwitch_gateway: with a gateway port (the nat driver's), packets to
// addresses no endpoint has leave through it, packets from it reach the
// endpoints, and the host's packets to a missing endpoint are dropped
// rather than sent back to it.
func TestSwitch_gateway(t *testing.T) {
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		// A remote endpoint: a packet wrongly flooded would reach its VTEP.
		Endpoints:    []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA}, {MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2}},
		Gateway:      r.portB,
		GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.0.9.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	external := netip.MustParseAddr("198.51.100.7")
	out1 := ipv4UDP(ip1, external, 1, 2, []byte("to the world"))
	r.a.Inject(out1)
	if got := out(t, r.b); !bytes.Equal(got, out1) {
		t.Errorf("gateway got %x, want %x", got, out1)
	}
	back := ipv4UDP(external, ip1, 2, 1, []byte("reply"))
	r.b.Inject(back)
	if got := out(t, r.a); !bytes.Equal(got, back) {
		t.Errorf("endpoint got %x, want %x", got, back)
	}
	// The gateway's own address, inside the subnet, is the gateway's.
	toGW := ipv4UDP(ip1, netip.MustParseAddr("10.0.9.1"), 1, 2, []byte("to the host"))
	r.a.Inject(toGW)
	if got := out(t, r.b); !bytes.Equal(got, toGW) {
		t.Errorf("gateway got %x, want the packet to its address %x", got, toGW)
	}
	r.b.Inject(ipv4UDP(external, netip.MustParseAddr("10.0.9.77"), 2, 1, []byte("nobody")))
	waitStats(t, r.sw, "the packet to a missing endpoint to be dropped", func(s Stats) bool { return s.Drops["no_endpoint"] == 1 })
	if s := r.sw.Stats(); s.UnderlayTxPackets != 0 {
		t.Errorf("%d datagrams went to the underlay: a packet to a missing endpoint was flooded", s.UnderlayTxPackets)
	}
	// A container's packet to an address of the network's own subnet that
	// no endpoint has stays on the network (flooded), never to the gateway.
	r.a.Inject(ipv4UDP(ip1, netip.MustParseAddr("10.0.9.78"), 1, 2, []byte("inside")))
	waitStats(t, r.sw, "the packet inside the subnet to be flooded", func(s Stats) bool { return s.UnderlayTxPackets == 1 })
	if s := r.sw.Stats(); s.PortTxPackets != 3 {
		t.Errorf("%d packets written to ports, want the three above: one inside the subnet reached the gateway", s.PortTxPackets)
	}
	if _, err := NewTable([]NetworkSpec{{VNI: testVNI, Gateway: r.portA,
		Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA}}}}); err == nil {
		t.Error("a port that is both gateway and endpoint was accepted")
	}
}

// TestSwitch_dualStackGatewayV4Only: a dual-stack network whose gateway
// carries IPv4 alone sends IPv4 bound outside through the gateway, and
// drops IPv6 bound outside (counted) rather than hand it to a gateway
// with no IPv6, or flood it; IPv6 between its endpoints still flows.
func TestSwitch_dualStackGatewayV4Only(t *testing.T) {
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:          testVNI,
		Subnets:      []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")},
		Endpoints:    []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: r.portA}, {MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2}},
		Gateway:      r.portB,
		GatewayAddrs: []netip.Addr{netip.MustParseAddr("10.0.9.1")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	out4 := ipv4UDP(ip1, netip.MustParseAddr("198.51.100.7"), 1, 2, []byte("to the world"))
	r.a.Inject(out4)
	if got := out(t, r.b); !bytes.Equal(got, out4) {
		t.Errorf("gateway got %x, want %x", got, out4)
	}
	r.a.Inject(ipv6UDP(ip6a, netip.MustParseAddr("2001:db8::7"), []byte("to the world, v6")))
	waitStats(t, r.sw, "IPv6 bound outside to be dropped", func(s Stats) bool { return s.Drops["no_endpoint"] == 1 })
	r.a.Inject(ipv6UDP(ip6a, ip62, []byte("to a neighbour")))
	waitStats(t, r.sw, "IPv6 to the other endpoint to leave for its VTEP", func(s Stats) bool { return s.UnderlayTxPackets == 1 })
	if s := r.sw.Stats(); s.PortTxPackets != 1 {
		t.Errorf("%d packets written to ports, want the IPv4 one to the gateway alone", s.PortTxPackets)
	}
}
