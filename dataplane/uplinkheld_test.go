package dataplane

import (
	"net/netip"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// TestUplinkHeld: packets wait in a few slots for their neighbour; an
// answer sends those for it (dst and src MACs written) and leaves the
// others; a packet past its time is dropped, and its slot taken over.
func TestUplinkHeld(t *testing.T) {
	q := newUplinkHeld(1500)
	var tl tally
	a, b := keyOf(netip.MustParseAddr("192.0.2.1")), keyOf(netip.MustParseAddr("192.0.2.2"))
	src := vxlan.MAC{2, 0, 0, 0, 0, 0x10}
	pkt := ipv4UDP(segEP, segPeer, 1, 2, []byte("x"))
	const now = int64(1e12)
	for i := range uplinkHeldSlots {
		hop := a
		if i%2 == 1 {
			hop = b
		}
		if !q.hold(hop, src, vxlan.EtherTypeIPv4, pkt, now, &tl) {
			t.Fatalf("slot %d: not held", i)
		}
	}
	if q.hold(a, src, vxlan.EtherTypeIPv4, pkt, now, &tl) {
		t.Fatal("held with every slot taken")
	}
	if q.hold(a, src, vxlan.EtherTypeIPv4, make([]byte, 1501), now, &tl) {
		t.Fatal("held a packet larger than a slot")
	}
	f := newFakeUplink()
	mac := vxlan.MAC{2, 0, 0, 0, 0, 1}
	q.release(a, mac, now+1, f, &tl)
	if len(f.out) != uplinkHeldSlots/2 || tl.uplinkTx != uplinkHeldSlots/2 {
		t.Fatalf("%d frames sent (%d counted), want %d", len(f.out), tl.uplinkTx, uplinkHeldSlots/2)
	}
	if got := <-f.out; string(got) != string(ethFrame(mac, src, pkt)) {
		t.Errorf("frame %x, want the packet from %v to %v", got, src, mac)
	}
	if q.ready.Load() != uplinkHeldSlots/2 {
		t.Errorf("%d slots ready, want b's %d", q.ready.Load(), uplinkHeldSlots/2)
	}
	// b never answers: past heldWait its packets go, counted.
	late := now + int64(heldWait) + 1
	if !q.hold(a, src, vxlan.EtherTypeIPv4, pkt, late, &tl) {
		t.Fatal("a free slot not used")
	}
	q.release(a, mac, late, f, &tl)
	if tl.drops[DropNeighborMiss] != uplinkHeldSlots/2 || q.ready.Load() != 0 {
		t.Errorf("%d misses counted, %d slots ready; want %d and 0", tl.drops[DropNeighborMiss], q.ready.Load(), uplinkHeldSlots/2)
	}
}
