package dataplane

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/tun/tuntest"
	"github.com/vxnet/vxnet/dataplane/udp/udptest"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/internal/testutil"
)

const testVNI = 4097

var (
	vtep1 = netip.MustParseAddr("198.18.0.1")
	vtep2 = netip.MustParseAddr("198.18.0.2")
	vtep3 = netip.MustParseAddr("198.18.0.3")
	vtepX = netip.MustParseAddr("198.18.0.99") // in no table

	ip1  = netip.MustParseAddr("10.0.9.2") // local port a
	ip1b = netip.MustParseAddr("10.0.9.5") // local port b
	ip2  = netip.MustParseAddr("10.0.9.3") // remote on vtep2
	ip3  = netip.MustParseAddr("10.0.9.4") // remote on vtep3
	ip6a = netip.MustParseAddr("fd00:9::2")
	ip62 = netip.MustParseAddr("fd00:9::3")

	mac1  = vxlan.MAC{2, 0x42, 10, 0, 9, 2}
	mac1b = vxlan.MAC{2, 0x42, 10, 0, 9, 5}
	mac2  = vxlan.MAC{2, 0x42, 10, 0, 9, 3}
	mac3  = vxlan.MAC{2, 0x42, 10, 0, 9, 4}
)

// rig is one switch on an in-memory underlay with two fake ports (a, b)
// and raw peers standing in for the VTEPs 2, 3 and an unknown one.
type rig struct {
	sw           *Switch
	a, b         *tuntest.Device
	peer2        *udptest.Conn
	peer3        *udptest.Conn
	stranger     *udptest.Conn
	underlay     *udptest.Conn
	portA, portB *Port
}

func newRig(t *testing.T) *rig {
	t.Helper()
	var n udptest.Network
	r := &rig{underlay: n.Conn(vtep1), peer2: n.Conn(vtep2), peer3: n.Conn(vtep3), stranger: n.Conn(vtepX)}
	t.Cleanup(func() { r.peer2.Close(); r.peer3.Close(); r.stranger.Close() })
	sw, err := New(DefaultConfig(), r.underlay)
	if err != nil {
		t.Fatal(err)
	}
	r.sw = sw
	r.a, r.b = tuntest.New(8, 64), tuntest.New(8, 64)
	if r.portA, err = sw.AddPort("a", r.a); err != nil {
		t.Fatal(err)
	}
	if r.portB, err = sw.AddPort("b", r.b); err != nil {
		t.Fatal(err)
	}
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: r.portA},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: r.portB},
			{MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sw.SetTable(tbl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// ipv4UDP builds an IPv4/UDP packet.
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = protoUDP
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// ipv6UDP builds an IPv6/UDP packet.
func ipv6UDP(src, dst netip.Addr, payload []byte) []byte {
	p := make([]byte, 48+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	p[6] = protoUDP
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], 1000)
	binary.BigEndian.PutUint16(p[42:], 2000)
	binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
	copy(p[48:], payload)
	return p
}

// frame wraps an L3 payload in inner Ethernet and VXLAN headers.
func frame(vni uint32, dst, src vxlan.MAC, etherType uint16, payload []byte) []byte {
	b := make([]byte, vxlan.EncapLen+len(payload))
	vxlan.Encap(b, vni, dst, src, etherType)
	copy(b[vxlan.EncapLen:], payload)
	return b
}

// send writes one datagram from peer to the switch.
func send(t *testing.T, peer *udptest.Conn, dgram []byte) {
	t.Helper()
	to := []netip.AddrPort{netip.AddrPortFrom(vtep1, vxlan.DefaultPort)}
	if n, err := peer.WriteBatch([][]byte{dgram}, to, []uint32{0}); n != 1 || err != nil {
		t.Fatalf("peer write: n=%d err=%v", n, err)
	}
}

// recv reads one datagram at peer, failing after a deadline.
func recv(t *testing.T, peer *udptest.Conn) ([]byte, netip.AddrPort) {
	t.Helper()
	type res struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		bufs := [][]byte{make([]byte, 70000)}
		sizes := make([]int, 1)
		from := make([]netip.AddrPort, 1)
		n, err := peer.ReadBatch(bufs, sizes, from)
		if n == 0 && err == nil {
			err = context.DeadlineExceeded
		}
		ch <- res{bufs[0][:sizes[0]], from[0], err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("peer read: %v", r.err)
		}
		return r.b, r.from
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram reached the peer within 5s")
	}
	return nil, netip.AddrPort{}
}

// out waits for a packet the switch wrote to a fake port.
func out(t *testing.T, d *tuntest.Device) []byte {
	t.Helper()
	select {
	case p := <-d.Outbound():
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet reached the port within 5s")
	}
	return nil
}

// waitStats waits until cond holds for the switch's counters.
func waitStats(t *testing.T, sw *Switch, what string, cond func(Stats) bool) Stats {
	t.Helper()
	var s Stats
	testutil.WaitFor(t, what, 5*time.Second, func() bool { s = sw.Stats(); return cond(s) })
	return s
}
