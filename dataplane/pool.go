package dataplane

import (
	"runtime"
	"sync/atomic"
)

// Buffers shared across ports.
//
// A port's read loop needs a whole batch of large buffers: a TUN read may
// hand over a TCP or UDP super-packet of up to 64 KB in any buffer, and
// its segments take the buffers after it, so a batch is BatchSize (128)
// plus refillExtra buffers of Headroom+MaxSegmentSize bytes, 13.8 MB of
// address space. When every port owned one, the pages that reads and
// segments touched stayed resident for the port's life, and memory grew
// with the endpoints (megabytes each, up to the whole batch), although a
// host forwards on only as many ports at once as it has cores.
//
// So the inside path's batches (buffers and the scratch that goes with
// them: the underlay writer, the port writers, the lookup cache) live in
// one pool per switch, and a port's loop borrows one only for the time it
// reads and processes a batch:
//
//   - On Linux a port is read through tun.Raw, whose ReadBatchLent asks
//     for the buffers only once the device may have a packet and gives
//     them back, unread, before it waits: an idle port holds no buffer,
//     only its goroutine, its Port and its small insideLoop.
//   - Other devices (Wintun, whose batch is one packet, and the fakes of
//     the tests) block in Device.Read with the buffers they read into;
//     such a port keeps its own read buffers (BatchSize of them) and
//     borrows a batch for the scratch only while it processes.
//
// The pool holds at most maxBatches batches, made on first need: the most
// loops that can run at once (GOMAXPROCS), at least two. A loop that finds
// every batch in use waits for one: all cores are forwarding then, and the
// packets wait in the device's queue as they would for a busy core. A
// loop never waits for a batch while holding one, so waiting cannot
// deadlock. Borrowing is one channel operation per batch, never per
// packet, and allocates nothing; a batch is owned by the loop that
// borrowed it until that loop returns it, after every packet in it was
// flushed (underlayTx.flush, portTx.flush), so no reference to its
// buffers outlives the loan.

// insideBatch is the scratch of one inside-path batch, borrowed from the
// switch's batchPool.
type insideBatch struct {
	// bufs hold the packets read, each at Headroom, with Headroom +
	// MaxSegmentSize bytes each and their own arrays (see newBuffers);
	// sizes are their lengths. Unused by ports that read with Device.Read.
	bufs  [][]byte
	sizes []int
	// partial[i]: packet i's TCP checksum holds only the pseudo-header
	// sum (splitVirtio left it for later; see lazyChecksum).
	partial []bool
	// cut[i]: packet i starts a new GSO train on the underlay; set on the
	// first segment of a TSO super-packet and on the packet after its
	// last, so that each super-packet's segments travel as one train,
	// which the receiving switch merges back whole (coalesce.go). Filled
	// by insideLoop.read.
	cut   []bool
	udp   underlayTx // its writer is this batch's own
	local portTx
	last  lookupCache // reset every batch

	uplinkWriters map[*Uplink]FrameWriter // see insideLoop.uplinkOut
	removals      uint64                  // sw.removals when its writers were last pruned
}

// batchPool lends inside-path batches to the ports' loops.
type batchPool struct {
	sw   *Switch
	free chan *insideBatch // capacity max: put never blocks
	made atomic.Int32
	max  int32
	// size is how many buffers a batch has: the largest BatchSize of a
	// port so far plus refillExtra. A batch smaller than a port needs
	// grows when that port borrows it (once per batch).
	size atomic.Int32
}

// maxBatches is how many inside-path batches a switch makes at most.
func maxBatches() int { return max(2, runtime.GOMAXPROCS(0)) }

func newBatchPool(sw *Switch, n int) *batchPool {
	return &batchPool{sw: sw, free: make(chan *insideBatch, n), max: int32(n)}
}

// need records that a port reads batches of up to batch packets.
func (bp *batchPool) need(batch int) {
	want := int32(batch + refillExtra)
	for {
		cur := bp.size.Load()
		if cur >= want || bp.size.CompareAndSwap(cur, want) {
			return
		}
	}
}

// get borrows a batch with at least bp.size buffers, waiting while every
// batch is lent. The caller owns it until put.
func (bp *batchPool) get() *insideBatch {
	var b *insideBatch
	select {
	case b = <-bp.free:
	default:
		if bp.made.Add(1) <= bp.max {
			b = &insideBatch{udp: newUnderlayTx(bp.sw.underlay.NewWriter(), 0)}
		} else {
			bp.made.Add(-1)
			b = <-bp.free
		}
	}
	if n := int(bp.size.Load()); len(b.bufs) < n {
		b.grow(n)
	}
	if r := bp.sw.removals.Load(); r != b.removals {
		// A port was removed: its writer must not keep it (and its
		// device) alive for as long as the batch lives.
		b.local.forgetClosed()
		b.removals = r
	}
	return b
}

// put returns a batch whose packets were all flushed.
func (bp *batchPool) put(b *insideBatch) { bp.free <- b }

// grow gives b n buffers.
func (b *insideBatch) grow(n int) {
	b.bufs = append(b.bufs, newBuffers(n-len(b.bufs), Headroom+MaxSegmentSize)...)
	b.sizes = make([]int, n)
	b.partial = make([]bool, n)
	b.cut = make([]bool, n)
	if cap(b.udp.bufs) < n {
		b.udp = newUnderlayTx(b.udp.w, n)
	}
}
