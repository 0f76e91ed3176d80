package dataplane

import (
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/udp"
)

// TestInside_superPacketsLeaveAsTrains: the segments of each TSO
// super-packet leave as a GSO train of their own: the datagram of every
// cut packet carries udp.TrainStart, no other does, and no flow hash is
// read as one (its top bit is cleared).
func TestInside_superPacketsLeaveAsTrains(t *testing.T) {
	h, under, ipPeer := peerRig(t, 0)
	// Three segments of one super-packet, two of the next, then a packet
	// of its own and a fourth super-packet's two segments.
	cut := []bool{true, false, false, true, false, true, true, false}
	h.loadInside(partialTCP(ip1, ipPeer), len(cut))
	h.inside.process(h.inside.readBufs, h.inside.readSizes, nil, cut, len(cut))
	if len(under.hashes) != len(cut) {
		t.Fatalf("%d datagrams, want %d", len(under.hashes), len(cut))
	}
	for i, hash := range under.hashes {
		if start := hash&udp.TrainStart != 0; start != cut[i] {
			t.Errorf("datagram %d: starts a train %v, want %v", i, start, cut[i])
		}
	}
	// A flow hash with its top bit set starts no train; a mark left by a
	// packet that sent nothing goes to the next datagram, and no further.
	var u underlayTx
	u.add(nil, netip.AddrPort{}, 0xffffffff)
	u.startTrain()
	u.add(nil, netip.AddrPort{}, 1)
	u.add(nil, netip.AddrPort{}, 2)
	if u.hashes[0]&udp.TrainStart != 0 || u.hashes[1]&udp.TrainStart == 0 || u.hashes[2]&udp.TrainStart != 0 {
		t.Errorf("hashes %#x: want only the second to start a train", u.hashes)
	}
}
