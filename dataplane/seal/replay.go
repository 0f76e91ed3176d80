package seal

import "sync/atomic"

// Replay window geometry: each word holds the bits of one block of
// blockBits counters in its low bits and the block's number in the rest,
// so that a word moves to a newer block and sets a bit in one
// compare-and-swap.
const (
	blockBits  = 16
	blockShift = 4    // log2(blockBits)
	ringWords  = 2048 // 16 KB per receiving key: room for receive loops far apart
	// ReplayWindow is how far behind the newest counter a datagram may
	// arrive (reordered by the underlay or by the receive loops) and
	// still be taken: a counter ReplayWindow below the newest is taken
	// once, one further below never.
	ReplayWindow = (ringWords - 1) * blockBits
)

// Window remembers which counters of one key were opened: RFC 6479's
// ring of bitmaps, lock-free. The zero value is an empty window.
type Window struct {
	newest atomic.Uint64 // the highest counter marked, plus one (0: none)
	ring   [ringWords]atomic.Uint64
}

func blockOf(ctr uint64) (word int, tag uint64, bit uint64) {
	blk := ctr >> blockShift
	return int(blk % ringWords), blk, 1 << (ctr & (blockBits - 1))
}

// Fresh reports whether ctr may still be taken: not marked yet and not
// older than the window. It changes nothing; Mark decides.
func (w *Window) Fresh(ctr uint64) bool {
	if n := w.newest.Load(); n > ReplayWindow+1 && ctr < n-1-ReplayWindow {
		return false
	}
	i, tag, bit := blockOf(ctr)
	v := w.ring[i].Load()
	switch t := v >> blockBits; {
	case t == tag:
		return v&bit == 0
	case t > tag:
		return false // the word moved past ctr's block: far too old
	}
	return true
}

// Mark records ctr and reports whether it was fresh (see Fresh): of two
// loops marking one counter, one wins.
func (w *Window) Mark(ctr uint64) bool {
	if n := w.newest.Load(); n > ReplayWindow+1 && ctr < n-1-ReplayWindow {
		return false
	}
	i, tag, bit := blockOf(ctr)
	for {
		v := w.ring[i].Load()
		var nv uint64
		switch t := v >> blockBits; {
		case t == tag:
			if v&bit != 0 {
				return false
			}
			nv = v | bit
		case t > tag:
			return false
		default: // an older block, out of the window now: start afresh
			nv = tag<<blockBits | bit
		}
		if w.ring[i].CompareAndSwap(v, nv) {
			break
		}
	}
	for {
		n := w.newest.Load()
		if ctr < n || w.newest.CompareAndSwap(n, ctr+1) {
			return true
		}
	}
}
