package vxlan_test

// Cross-checks against gopacket's independent VXLAN, Ethernet, IPv4 and UDP
// implementations.

import (
	"bytes"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var (
	innerSrcIP = net.IPv4(10, 0, 9, 3).To4()
	innerDstIP = net.IPv4(10, 0, 9, 2).To4()
	appData    = []byte("hello, overlay")
)

var serializeOpts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// innerIPv4 returns a serialized IPv4/UDP packet carrying appData.
func innerIPv4(t *testing.T) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: innerSrcIP, DstIP: innerDstIP}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts, ip, udp, gopacket.Payload(appData)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lastLayer returns the innermost layer of type lt (pkt.Layer returns the
// outermost).
func lastLayer(pkt gopacket.Packet, lt gopacket.LayerType) gopacket.Layer {
	var last gopacket.Layer
	for _, l := range pkt.Layers() {
		if l.LayerType() == lt {
			last = l
		}
	}
	return last
}

// checkInner verifies the gopacket-decoded inner IPv4/UDP layers.
func checkInner(t *testing.T, pkt gopacket.Packet) {
	t.Helper()
	ip, ok := lastLayer(pkt, layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		t.Fatalf("no inner IPv4 layer: %v", pkt)
	}
	if !ip.SrcIP.Equal(innerSrcIP) || !ip.DstIP.Equal(innerDstIP) || ip.Protocol != layers.IPProtocolUDP {
		t.Errorf("inner IPv4 = %v -> %v proto %v", ip.SrcIP, ip.DstIP, ip.Protocol)
	}
	udp, ok := lastLayer(pkt, layers.LayerTypeUDP).(*layers.UDP)
	if !ok || udp.SrcPort != 40000 || udp.DstPort != 40001 {
		t.Fatalf("inner UDP layer = %v", udp)
	}
	if !bytes.Equal(udp.Payload, appData) {
		t.Errorf("inner payload = %q", udp.Payload)
	}
}

func TestEncapDecodedByGopacket(t *testing.T) {
	inner := innerIPv4(t)
	for _, vni := range []uint32{1, 0x123456, vxlan.MaxVNI} {
		b := make([]byte, vxlan.EncapLen+len(inner))
		copy(b[vxlan.EncapLen:], inner)
		vxlan.Encap(b, vni, macDst, macSrc, vxlan.EtherTypeIPv4)

		pkt := gopacket.NewPacket(b, layers.LayerTypeVXLAN, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("gopacket decode error: %v", el.Error())
		}
		vx, ok := pkt.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		if !ok {
			t.Fatal("no VXLAN layer")
		}
		if !vx.ValidIDFlag || vx.VNI != vni || vx.GBPExtension || vx.GBPGroupPolicyID != 0 {
			t.Errorf("gopacket VXLAN = %+v, want I flag and VNI %#x", vx, vni)
		}
		eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !ok {
			t.Fatal("no Ethernet layer")
		}
		if !bytes.Equal(eth.DstMAC, macDst[:]) || !bytes.Equal(eth.SrcMAC, macSrc[:]) ||
			eth.EthernetType != layers.EthernetTypeIPv4 {
			t.Errorf("gopacket Ethernet = %v -> %v type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		checkInner(t, pkt)
	}
}

// TestEncapInOuterUDPDecodedByGopacket wraps our datagram in outer
// Ethernet/IPv4/UDP to DefaultPort and checks gopacket recognises it as VXLAN
// by port alone.
func TestEncapInOuterUDPDecodedByGopacket(t *testing.T) {
	inner := innerIPv4(t)
	dgram := make([]byte, vxlan.EncapLen+len(inner))
	copy(dgram[vxlan.EncapLen:], inner)
	vxlan.Encap(dgram, 4242, macDst, macSrc, vxlan.EtherTypeIPv4)

	oeth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	oip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
	oudp := &layers.UDP{SrcPort: 51000, DstPort: vxlan.DefaultPort}
	if err := oudp.SetNetworkLayerForChecksum(oip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serializeOpts, oeth, oip, oudp, gopacket.Payload(dgram)); err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket decode error: %v", el.Error())
	}
	vx, ok := pkt.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if !ok || vx.VNI != 4242 || !vx.ValidIDFlag {
		t.Fatalf("VXLAN layer = %+v", vx)
	}
	checkInner(t, pkt)

	// And Decap reads the outer UDP payload gopacket found.
	f, err := vxlan.Decap(pkt.Layer(layers.LayerTypeUDP).LayerPayload())
	if err != nil || f.VNI != 4242 || f.Eth.Dst != macDst {
		t.Errorf("Decap(outer UDP payload) = %+v, %v", f, err)
	}
}

func TestGopacketSerializedDecap(t *testing.T) {
	tests := []struct {
		name string
		vx   layers.VXLAN
		typ  layers.EthernetType
	}{
		{"plain", layers.VXLAN{ValidIDFlag: true, VNI: 0xabcdef}, layers.EthernetTypeIPv4},
		{"max vni", layers.VXLAN{ValidIDFlag: true, VNI: vxlan.MaxVNI}, layers.EthernetTypeIPv4},
		// Group Based Policy bits are reserved bits to RFC 7348 receivers.
		{"gbp bits ignored", layers.VXLAN{ValidIDFlag: true, VNI: 77, GBPExtension: true,
			GBPDontLearn: true, GBPApplied: true, GBPGroupPolicyID: 0xbeef}, layers.EthernetTypeIPv4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(macSrc[:]), DstMAC: net.HardwareAddr(macDst[:]), EthernetType: tc.typ}
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: innerSrcIP, DstIP: innerDstIP}
			udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			vx := tc.vx
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(buf, serializeOpts, &vx, eth, ip, udp, gopacket.Payload(appData)); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()

			f, err := vxlan.Decap(b)
			if err != nil {
				t.Fatalf("Decap(% x): %v", b[:vxlan.EncapLen], err)
			}
			want := vxlan.Frame{
				VNI:           tc.vx.VNI,
				Eth:           vxlan.Ethernet{Dst: macDst, Src: macSrc, Type: uint16(tc.typ)},
				PayloadOffset: vxlan.EncapLen,
			}
			if f != want {
				t.Errorf("Decap = %+v, want %+v", f, want)
			}
			// The payload offset must land exactly on the inner IPv4 header.
			checkInner(t, gopacket.NewPacket(b[f.PayloadOffset:], layers.LayerTypeIPv4, gopacket.Default))
		})
	}
}

func TestGopacketSerializedDecapErrors(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(macSrc[:]), DstMAC: net.HardwareAddr(macDst[:]), EthernetType: layers.EthernetTypeIPv4}
	serialize := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, serializeOpts, ls...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}

	noI := serialize(&layers.VXLAN{VNI: 5}, eth, gopacket.Payload(appData))
	if _, err := vxlan.Decap(noI); err != vxlan.ErrFlags {
		t.Errorf("Decap without I flag: %v, want ErrFlags", err)
	}

	tagged := serialize(&layers.VXLAN{ValidIDFlag: true, VNI: 5},
		&layers.Ethernet{SrcMAC: eth.SrcMAC, DstMAC: eth.DstMAC, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		gopacket.Payload(appData))
	if _, err := vxlan.Decap(tagged); err != vxlan.ErrVLAN {
		t.Errorf("Decap of 802.1Q frame: %v, want ErrVLAN", err)
	}
}
