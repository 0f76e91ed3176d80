package dataplane

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Packets held on an uplink while their next hop is asked for (ARP or a
// neighbour solicitation), as a kernel's neighbour table queues them: the
// first packet to a neighbour not yet known (a ping, a TCP SYN) is sent
// once the answer comes, not lost to the round trip. A few slots serve
// each uplink (uplinkHeldSlots, each as large as the MTU): the inside
// loop that misses copies the packet into a free one (claimed with a
// compare-and-swap: no lock, no allocation); the uplink's reader, having
// learnt a neighbour, writes the frames waiting for it. A packet that
// finds no free slot, or whose neighbour does not answer within heldWait,
// is dropped (neighbor_miss).

const uplinkHeldSlots = 8

type uplinkHeldSlot struct {
	heldClaim // held.go
	hop       addrKey
	src       vxlan.MAC
	etherType uint16
	n         int // the frame's length at buf[0:]
	buf       []byte
}

type uplinkHeld struct {
	slots [uplinkHeldSlots]uplinkHeldSlot
	ready atomic.Int32 // slots heldReady: the reader looks only when some are
}

func newUplinkHeld(mtu int) *uplinkHeld {
	q := &uplinkHeld{}
	for i := range q.slots {
		q.slots[i].buf = make([]byte, vxlan.EthernetLen+mtu)
	}
	return q
}

// hold copies pkt, from src (the MAC the segment knows the sender by) to
// the neighbour hop, into a free slot and reports whether it did. A slot
// whose packet outlived heldWait is taken over, that packet counted as
// dropped in t.
func (q *uplinkHeld) hold(hop addrKey, src vxlan.MAC, etherType uint16, pkt []byte, now int64, t *tally) bool {
	for i := range q.slots {
		s := &q.slots[i]
		if vxlan.EthernetLen+len(pkt) > len(s.buf) {
			return false
		}
		ok, expired := s.claim(now)
		if !ok {
			continue
		}
		if expired {
			t.drop(DropNeighborMiss)
			q.ready.Add(-1)
		}
		s.hop, s.src, s.etherType = hop, src, etherType
		s.n = vxlan.EthernetLen + copy(s.buf[vxlan.EthernetLen:], pkt)
		q.ready.Add(1)
		s.hold(now)
		return true
	}
	return false
}

// release writes, with w, the frames waiting for hop, whose MAC is now
// known, and drops those past their time. The uplink's reader calls it
// after learning a neighbour.
func (q *uplinkHeld) release(hop addrKey, mac vxlan.MAC, now int64, w FrameWriter, t *tally) {
	if q.ready.Load() == 0 {
		return
	}
	for i := range q.slots {
		s := &q.slots[i]
		if !s.take() {
			continue
		}
		switch {
		case now > s.until.Load():
			t.drop(DropNeighborMiss)
		case s.hop == hop:
			f := s.buf[:s.n]
			copy(f[0:6], mac[:])
			copy(f[6:12], s.src[:])
			binary.BigEndian.PutUint16(f[12:], s.etherType)
			if err := w.Write(f); err != nil {
				t.drop(DropWrite)
			} else {
				t.uplinkTx++
			}
		default:
			s.state.Store(heldReady) // another neighbour's
			continue
		}
		q.ready.Add(-1)
		s.state.Store(heldFree)
	}
}

// learn records a neighbour's MAC and sends what waited for it.
func (l *uplinkLoop) learn(a addrKey, mac vxlan.MAC) {
	l.u.learnNeighbor(a, mac)
	if l.u.held.ready.Load() > 0 && !mac.IsMulticast() && !mac.IsZero() {
		l.u.held.release(a, mac, time.Now().UnixNano(), l.w, &l.tally)
	}
}
