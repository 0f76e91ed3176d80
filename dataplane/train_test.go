package dataplane

import (
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/udp"
)

// hashUnderlay keeps the hash of every datagram written.
type hashUnderlay struct {
	nopUnderlay
	hashes []uint32
}

func (u *hashUnderlay) WriteBatch(bufs [][]byte, to []netip.AddrPort, h []uint32) (int, error) {
	u.hashes = append(u.hashes, h[:len(bufs)]...)
	return len(bufs), nil
}

// TestInside_superPacketsLeaveAsTrains: the segments of each TSO
// super-packet leave as a GSO train of their own: the last datagram before
// every cut carries udp.TrainEnd, no other does, and no flow hash is read
// as one (its top bit is cleared).
func TestInside_superPacketsLeaveAsTrains(t *testing.T) {
	h := newHotRig(t)
	under := &hashUnderlay{}
	h.inside.b.udp = newUnderlayTx(under, 0)
	ipPeer := netip.MustParseAddr("10.0.9.30")
	tbl, err := NewTable([]NetworkSpec{{
		VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port},
			{MAC: mac3, Addrs: []netip.Addr{ipPeer}, VTEP: vtep3, Peer: true},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	// Three segments of one super-packet, two of the next, then a packet
	// of its own and a fourth super-packet's two segments.
	cut := []bool{true, false, false, true, false, true, true, false}
	h.loadInside(partialTCP(ip1, ipPeer), len(cut))
	h.inside.process(h.inside.readBufs, h.inside.readSizes, nil, cut, len(cut))
	if len(under.hashes) != len(cut) {
		t.Fatalf("%d datagrams, want %d", len(under.hashes), len(cut))
	}
	for i, hash := range under.hashes {
		end := i+1 == len(cut) || cut[i+1]
		if end && i+1 < len(cut) && hash&udp.TrainEnd == 0 {
			t.Errorf("datagram %d ends a super-packet but not its train", i)
		}
		if !end && hash&udp.TrainEnd != 0 {
			t.Errorf("datagram %d ends a train inside a super-packet", i)
		}
	}
	// A flow hash with its top bit set ends no train.
	var u underlayTx
	u.add(nil, netip.AddrPort{}, 0xffffffff)
	if u.hashes[0]&udp.TrainEnd != 0 {
		t.Error("a flow hash's top bit was taken for TrainEnd")
	}
	u.endTrain()
	if u.hashes[0]&udp.TrainEnd == 0 {
		t.Error("endTrain did not mark the last datagram")
	}
}
