package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// fakeUplink is a NIC: frames injected are read, frames written are kept.
type fakeUplink struct {
	mac    [6]byte
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
}

func newFakeUplink() *fakeUplink {
	return &fakeUplink{mac: [6]byte{2, 0, 0, 0, 0, 0x99}, in: make(chan []byte, 16), out: make(chan []byte, 64), closed: make(chan struct{})}
}

func (f *fakeUplink) ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case b := <-f.in:
		sizes[0] = copy(bufs[0][offset:], b)
		return 1, nil
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

func (f *fakeUplink) Write(frame []byte) error {
	f.out <- append([]byte(nil), frame...)
	return nil
}

func (f *fakeUplink) HardwareAddr() [6]byte  { return f.mac }
func (f *fakeUplink) NewWriter() FrameWriter { return f }
func (f *fakeUplink) Close() error           { f.once.Do(func() { close(f.closed) }); return nil }

// next waits for the next frame written.
func (f *fakeUplink) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-f.out:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no frame written to the uplink within 5s")
	}
	return nil
}

var (
	segEP     = netip.MustParseAddr("192.0.2.10")
	segPeer   = netip.MustParseAddr("192.0.2.1")
	segRouter = netip.MustParseAddr("192.0.2.254")
	peerMAC   = vxlan.MAC{2, 0, 0, 0, 0, 1}
)

func uplinkRig(t *testing.T, l2bridge bool) (*rig, *fakeUplink) {
	return uplinkRigOn(t, l2bridge, netip.MustParsePrefix("192.0.2.0/24"), segEP, segRouter)
}

// uplinkRigOn is a rig whose port a (ep) is on a network of subnet on an
// uplink (a fake NIC), with router as its --gateway (none if invalid).
func uplinkRigOn(t *testing.T, l2bridge bool, subnet netip.Prefix, ep, router netip.Addr) (*rig, *fakeUplink) {
	r := newRig(t)
	f := newFakeUplink()
	u, err := r.sw.AddUplink("eth9", f)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := NewTable([]NetworkSpec{{
		VNI:       testVNI,
		Subnets:   []netip.Prefix{subnet},
		Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ep}, Port: r.portA}},
		Uplink:    u,
		L2Bridge:  l2bridge,
		Router:    router,
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	return r, f
}

func arpFrame(op uint16, sha vxlan.MAC, spa netip.Addr, tha vxlan.MAC, tpa netip.Addr, dst vxlan.MAC) []byte {
	f := make([]byte, vxlan.EthernetLen+arpLen)
	writeARP(f, dst, sha, op, sha, spa, tha, tpa)
	return f
}

func ethFrame(dst, src vxlan.MAC, pkt []byte) []byte {
	f := make([]byte, vxlan.EthernetLen+len(pkt))
	copy(f, dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeIPv4)
	copy(f[14:], pkt)
	return f
}

func TestUplink_transparentAndL2Bridge(t *testing.T) {
	for _, l2bridge := range []bool{false, true} {
		r, f := uplinkRig(t, l2bridge)
		// What the segment sees as the endpoint's MAC.
		epMAC := mac1
		if l2bridge {
			epMAC = vxlan.MAC(f.mac)
		}
		// The segment asks for the endpoint: answered with epMAC.
		f.in <- arpFrame(arpOpRequest, peerMAC, segPeer, vxlan.MAC{}, segEP, vxlan.Broadcast)
		want := arpFrame(arpOpReply, epMAC, segEP, peerMAC, segPeer, peerMAC)
		if got := f.next(t); !bytes.Equal(got, want) {
			t.Errorf("l2bridge=%v: ARP reply %x, want %x", l2bridge, got, want)
		}
		// The asker was learned: a packet to it leaves at once.
		pkt := ipv4UDP(segEP, segPeer, 1, 2, []byte("out"))
		r.a.Inject(pkt)
		if got := f.next(t); !bytes.Equal(got, ethFrame(peerMAC, epMAC, pkt)) {
			t.Errorf("l2bridge=%v: frame %x, want one from %v to %v", l2bridge, got, epMAC, peerMAC)
		}
		// Off the subnet, through the router, whose MAC is not known yet:
		// an ARP request, the packet held until the router answers.
		far := ipv4UDP(segEP, netip.MustParseAddr("203.0.113.5"), 1, 2, nil)
		r.a.Inject(far)
		want = arpFrame(arpOpRequest, epMAC, segEP, vxlan.MAC{}, segRouter, vxlan.Broadcast)
		if got := f.next(t); !bytes.Equal(got, want) {
			t.Errorf("l2bridge=%v: ARP request %x, want %x", l2bridge, got, want)
		}
		routerMAC := vxlan.MAC{2, 0, 0, 0, 0, 0xfe}
		f.in <- arpFrame(arpOpReply, routerMAC, segRouter, epMAC, segEP, epMAC)
		if got := f.next(t); !bytes.Equal(got, ethFrame(routerMAC, epMAC, far)) {
			t.Errorf("l2bridge=%v: held frame %x, want the packet from %v to the router %v", l2bridge, got, epMAC, routerMAC)
		}
		if s := r.sw.Stats(); s.Drops["neighbor_miss"] != 0 {
			t.Errorf("l2bridge=%v: %d neighbour misses, want the packet held", l2bridge, s.Drops["neighbor_miss"])
		}
		// In: a frame to the endpoint's MAC (as the segment knows it).
		in := ipv4UDP(segPeer, segEP, 2, 1, []byte("in"))
		f.in <- ethFrame(epMAC, peerMAC, in)
		if got := out(t, r.a); !bytes.Equal(got, in) {
			t.Errorf("l2bridge=%v: port got %x, want %x", l2bridge, got, in)
		}
		// A frame for another MAC is not the endpoint's.
		f.in <- ethFrame(vxlan.MAC{2, 9, 9, 9, 9, 9}, peerMAC, in)
		f.in <- ethFrame(epMAC, peerMAC, ipv4UDP(segPeer, segEP, 2, 1, []byte("second")))
		if got := out(t, r.a); !bytes.Contains(got, []byte("second")) {
			t.Errorf("l2bridge=%v: a frame for another MAC reached the port: %x", l2bridge, got)
		}
	}
}

// Two networks on one uplink: the host routes between their endpoints.
func TestUplink_hostRoutesBetweenNetworks(t *testing.T) {
	r := newRig(t)
	f := newFakeUplink()
	u, err := r.sw.AddUplink("eth9", f)
	if err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddr("198.51.100.10")
	tbl, err := NewTable([]NetworkSpec{
		{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Uplink: u, Router: segRouter,
			Endpoints: []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{segEP}, Port: r.portA}}},
		{VNI: testVNI + 1, Subnets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, Uplink: u,
			Endpoints: []EndpointSpec{{MAC: mac1b, Addrs: []netip.Addr{other}, Port: r.portB}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	pkt := ipv4UDP(segEP, other, 1, 2, []byte("across"))
	r.a.Inject(pkt)
	if got := out(t, r.b); !bytes.Equal(got, pkt) {
		t.Errorf("port b got %x, want %x", got, pkt)
	}
	back := ipv4UDP(other, segEP, 2, 1, []byte("back"))
	r.b.Inject(back)
	if got := out(t, r.a); !bytes.Equal(got, back) {
		t.Errorf("port a got %x, want %x", got, back)
	}
	select {
	case fr := <-f.out:
		t.Errorf("a host-routed packet went out of the uplink: %x", fr)
	default:
	}
}
