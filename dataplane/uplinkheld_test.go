package dataplane

import (
	"net/netip"
	"sync"
	"sync/atomic"
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

// countingWriter counts the frames written to it.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write([]byte) error { w.n.Add(1); return nil }

// TestUplinkHeld_concurrent: inside loops holding while the reader
// releases: every packet held is sent exactly once.
func TestUplinkHeld_concurrent(t *testing.T) {
	q := newUplinkHeld(1500)
	hop := keyOf(netip.MustParseAddr("192.0.2.1"))
	src, mac := vxlan.MAC{2, 0, 0, 0, 0, 0x10}, vxlan.MAC{2, 0, 0, 0, 0, 1}
	pkt := ipv4UDP(segEP, segPeer, 1, 2, []byte("x"))
	const now = int64(1e12)
	var held atomic.Int64
	var w countingWriter
	var wg sync.WaitGroup
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // the reader
		defer close(done)
		var tl tally
		for {
			select {
			case <-stop:
				return
			default:
				q.release(hop, mac, now, &w, &tl)
			}
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tl tally
			for range 2000 {
				if q.hold(hop, src, vxlan.EtherTypeIPv4, pkt, now, &tl) {
					held.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
	var tl tally
	q.release(hop, mac, now, &w, &tl)
	if w.n.Load() != held.Load() || q.ready.Load() != 0 {
		t.Errorf("%d frames sent for %d packets held, %d slots still ready", w.n.Load(), held.Load(), q.ready.Load())
	}
}
