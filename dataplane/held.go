package dataplane

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Packets held while their destination is asked for (learned.go).
//
// A kernel's neighbour table queues the packets to an address it is still
// resolving and sends them once the answer comes; so does the switch, so
// that the first packet of a connection to a kernel peer's unlisted
// address (a TCP SYN) is not lost to the ARP round trip and retried a
// second later. A few slots serve the whole switch (heldSlots, each as
// large as the MTU): the packet loop that misses copies the packet into a
// free one (claimed with a compare-and-swap: no lock, no allocation) and
// goes on; routineLearn, having taken in an answer, sends the held packets
// it resolves from a writer of its own. A packet that finds no free slot,
// or whose address no answer names within heldWait, is dropped
// (neighbor_miss), as every such packet was before.

const (
	heldSlots = 16
	heldWait  = time.Second
)

// Slot states.
const (
	heldFree  uint32 = iota
	heldBusy         // being filled or sent: its owner's alone
	heldReady        // holds a packet waiting for its address
)

// heldClaim is how a held slot changes hands, here and on uplinks
// (uplinkheld.go): its state, and the deadline of the packet it holds
// (read before the slot is claimed, so atomic too).
type heldClaim struct {
	state atomic.Uint32
	until atomic.Int64 // UnixNano after which the packet is dropped
}

// claim takes the slot for a new packet at now if it is free or its
// packet outlived its deadline (expired: that packet never went, and is
// to be counted dropped), and reports whether it took it. The taker fills
// the slot, then calls hold.
func (c *heldClaim) claim(now int64) (ok, expired bool) {
	st := c.state.Load()
	if st == heldBusy || st == heldReady && now <= c.until.Load() || !c.state.CompareAndSwap(st, heldBusy) {
		return false, false
	}
	return true, st == heldReady
}

// hold makes the claimed slot's packet wait until heldWait after now.
func (c *heldClaim) hold(now int64) {
	c.until.Store(now + int64(heldWait))
	c.state.Store(heldReady)
}

// take claims a slot whose packet waits, to send or drop it.
func (c *heldClaim) take() bool {
	return c.state.Load() == heldReady && c.state.CompareAndSwap(heldReady, heldBusy)
}

type heldSlot struct {
	heldClaim
	vni       uint32
	dst       addrKey
	src       vxlan.MAC // the sending port's
	etherType uint16
	hash      uint32
	n         int // the packet's length, at buf[Headroom:]
	buf       []byte
}

// heldQueue is the switch's slots, and the wake-up of routineLearn when a
// packet is held (so that it drops those never answered in time).
type heldQueue struct {
	slots [heldSlots]heldSlot
	wake  chan struct{}
}

func newHeldQueue(mtu int) *heldQueue {
	q := &heldQueue{wake: make(chan struct{}, 1)}
	for i := range q.slots {
		q.slots[i].buf = make([]byte, Headroom+mtu)
	}
	return q
}

// hold copies pkt (from port MAC src, to dst of network vni) into a free
// slot and reports whether it did. A slot whose packet outlived heldWait
// is taken over, and that packet counted as dropped in t.
func (q *heldQueue) hold(vni uint32, dst addrKey, src vxlan.MAC, etherType uint16, hash uint32, pkt []byte, now int64, t *tally) bool {
	for i := range q.slots {
		s := &q.slots[i]
		if len(pkt) > len(s.buf)-Headroom {
			return false
		}
		ok, expired := s.claim(now)
		if !ok {
			continue
		}
		if expired {
			t.drop(DropNeighborMiss)
		}
		s.vni, s.dst, s.src, s.etherType, s.hash = vni, dst, src, etherType, hash
		s.n = copy(s.buf[Headroom:], pkt)
		s.hold(now)
		select {
		case q.wake <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

// heldSender is routineLearn's: it sends the held packets whose addresses
// were learnt, with a writer of its own.
type heldSender struct {
	sw    *Switch
	q     *heldQueue
	tx    underlayTx
	tally tally
}

func newHeldSender(sw *Switch, w udp.BatchWriter) *heldSender {
	return &heldSender{sw: sw, q: sw.held, tx: newUnderlayTx(w, heldSlots)}
}

// release sends every held packet whose address is now known, drops those
// past their time, and reports whether some still wait.
func (h *heldSender) release(now int64) (waiting bool) {
	tbl := h.sw.table.Load()
	var sending [heldSlots]*heldSlot
	ns := 0
	for i := range h.q.slots {
		s := &h.q.slots[i]
		if !s.take() {
			continue
		}
		if now > s.until.Load() {
			h.tally.drop(DropNeighborMiss)
			s.state.Store(heldFree)
			continue
		}
		nw := tbl.vnis.get(s.vni)
		if nw == nil || nw.sealed {
			// Gone, or its VNI is an encrypted network's now: nothing
			// held for a plain one leaves unsealed.
			h.tally.drop(DropNeighborMiss)
			s.state.Store(heldFree)
			continue
		}
		e, ok := h.sw.learnedNeighbor(nw, s.dst, now)
		if !ok {
			s.state.Store(heldReady)
			waiting = true
			continue
		}
		frame := s.buf[UnderlayOffset : Headroom+s.n]
		vxlan.Encap(frame, s.vni, e.mac, s.src, s.etherType)
		h.tx.add(frame, h.sw.vtepAddr(e.vtep), s.hash)
		sending[ns] = s
		ns++
	}
	h.tx.flush(&h.tally)
	for _, s := range sending[:ns] {
		s.state.Store(heldFree)
	}
	h.sw.stats.flush(&h.tally)
	return waiting
}

// routineLearn applies the offers of answers until ctx ends and, after
// each burst of them and whenever a packet is held, sends the held
// packets it can; while some wait, it looks again every heldWait/4 to drop
// those never answered.
func (sw *Switch) routineLearn(ctx context.Context) {
	h := newHeldSender(sw, sw.underlay.NewWriter())
	tick := time.NewTicker(heldWait / 4)
	defer tick.Stop()
	waiting := false
	for {
		var sweep <-chan time.Time
		if waiting {
			sweep = tick.C
		}
		select {
		case <-ctx.Done():
			return
		case o := <-sw.learnCh:
			sw.drainLearned(o, time.Now().UnixNano())
		case <-sw.held.wake:
		case <-sweep:
		}
		waiting = h.release(time.Now().UnixNano())
	}
}
