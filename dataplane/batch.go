package dataplane

import (
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/udp"
)

// newBuffers allocates n buffers of size bytes each, each backed by its own
// array: a TUN write may grow one buffer up to its capacity while it
// coalesces segments, so buffers must never share memory.
func newBuffers(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// underlayTx collects datagrams for one WriteBatch. Its slices borrow the
// packet loop's buffers until flush returns.
type underlayTx struct {
	w      udp.BatchWriter // this loop's own
	bufs   [][]byte
	to     []netip.AddrPort
	hashes []uint32
}

func newUnderlayTx(w udp.BatchWriter, capacity int) underlayTx {
	return underlayTx{
		w:      w,
		bufs:   make([][]byte, 0, capacity),
		to:     make([]netip.AddrPort, 0, capacity),
		hashes: make([]uint32, 0, capacity),
	}
}

func (u *underlayTx) add(b []byte, to netip.AddrPort, hash uint32) {
	u.bufs = append(u.bufs, b)
	u.to = append(u.to, to)
	u.hashes = append(u.hashes, hash)
}

// flush sends what was collected. Datagrams the writer dropped one by one
// (unreachable, too big) it counts itself; when an error stops the whole
// batch, the rest count as write drops here.
func (u *underlayTx) flush(t *tally) {
	if len(u.bufs) == 0 {
		return
	}
	n, err := u.w.WriteBatch(u.bufs, u.to, u.hashes)
	t.udpTx += uint64(n)
	if err != nil {
		t.drops[DropWrite] += uint64(len(u.bufs) - n)
	}
	for _, b := range u.bufs {
		t.udpTxBytes += uint64(len(b))
	}
	clear(u.bufs) // drop the borrowed references
	u.bufs, u.to, u.hashes = u.bufs[:0], u.to[:0], u.hashes[:0]
}

// portTx collects packets for local ports, one group per destination port,
// so that each port gets one batched Write.
type portTx struct {
	groups []portGroup
	used   int
}

type portGroup struct {
	port *Port
	bufs [][]byte
}

func (q *portTx) add(p *Port, b []byte) {
	for i := range q.groups[:q.used] {
		if q.groups[i].port == p {
			q.groups[i].bufs = append(q.groups[i].bufs, b)
			return
		}
	}
	if q.used == len(q.groups) {
		q.groups = append(q.groups, portGroup{})
	}
	g := &q.groups[q.used]
	g.port = p
	g.bufs = append(g.bufs[:0], b)
	q.used++
}

// flush writes each group to its port. Write may reorder and grow the
// group's slice headers; the group owns those, not the buffers' owner.
func (q *portTx) flush(t *tally) {
	for i := range q.groups[:q.used] {
		g := &q.groups[i]
		n, err := g.port.dev.Write(g.bufs, Headroom)
		if err != nil {
			// A partial write reports bytes, not packets, on some
			// devices; count the whole group as lost on error.
			t.drops[DropWrite] += uint64(len(g.bufs))
		} else {
			_ = n
			t.portTx += uint64(len(g.bufs))
		}
		clear(g.bufs)
		g.bufs = g.bufs[:0]
		g.port = nil
	}
	q.used = 0
}
