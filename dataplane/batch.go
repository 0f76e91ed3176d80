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
	start  bool // the next datagram added starts a GSO train
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
	hash &^= udp.TrainStart
	if u.start {
		hash |= udp.TrainStart
		u.start = false
	}
	u.bufs = append(u.bufs, b)
	u.to = append(u.to, to)
	u.hashes = append(u.hashes, hash)
}

// startTrain has the next datagram added start a GSO train of its own,
// joining none open on its socket (see udp.TrainStart).
func (u *underlayTx) startTrain() { u.start = true }

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
	u.start = false
}

// portTx collects packets for local ports, one group per destination port,
// so that each port gets one batched Write. It also keeps this loop's
// writers of whole packets to Linux TUN ports (see writer).
type portTx struct {
	groups []portGroup
	used   int

	writers []portWriter // a short list searched in order: a batch goes to few ports
	next    int

	skip []bool // redundantACKs' marks for the group being written
}

type portGroup struct {
	port *Port
	bufs [][]byte
}

type portWriter struct {
	port *Port
	w    superWriter
}

const maxPortWriters = 16

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

// writer returns this loop's writer of whole packets (virtio-net header
// first) to p, made on first use: writers keep per-call state, so loops
// never share one. Only ports with newSuperOut have one. The list keeps
// the writers of the last maxPortWriters ports.
func (q *portTx) writer(p *Port) superWriter {
	for i := range q.writers {
		if q.writers[i].port == p {
			return q.writers[i].w
		}
	}
	w := p.newSuperOut()
	if len(q.writers) < maxPortWriters {
		q.writers = append(q.writers, portWriter{p, w})
	} else {
		q.writers[q.next] = portWriter{p, w}
		q.next = (q.next + 1) % maxPortWriters
	}
	return w
}

// forgetClosed drops the writers of ports whose device is closed.
func (q *portTx) forgetClosed() {
	kept := q.writers[:0]
	for _, w := range q.writers {
		if !w.port.closed.Load() {
			kept = append(kept, w)
		}
	}
	clear(q.writers[len(kept):])
	q.writers = kept
	q.next = 0
}

// flush writes each group to its port. Write may reorder and grow the
// group's slice headers; the group owns those, not the buffers' owner.
//
// On a Linux TUN port a group goes out packet by packet through the
// loop's own writer, which costs the scheduler nothing (see tun.Writer),
// unless it holds two or more packets the device's Write could merge
// (TCP or UDP with data): that Write coalesces them first, as GRO would.
// Packet by packet, a pure ACK that a later one of its flow makes
// redundant is left out (see redundantACKs) and counted as coalesced.
func (q *portTx) flush(t *tally) {
	for i := range q.groups[:q.used] {
		g := &q.groups[i]
		if g.port.newSuperOut != nil && !mergeable(g.bufs) {
			w := q.writer(g.port)
			if len(q.skip) < len(g.bufs) {
				q.skip = make([]bool, len(g.bufs))
			}
			skip := q.skip[:len(g.bufs)]
			if len(g.bufs) > 1 {
				t.coalesced += uint64(redundantACKs(g.bufs, skip))
			} else {
				skip[0] = false
			}
			for j, b := range g.bufs {
				if skip[j] {
					t.portTx++ // its news go in the later ACK
					continue
				}
				// A zero virtio-net header: a packet as it is, its
				// checksum for the kernel to check.
				h := b[Headroom-virtioHdrLen:]
				clear(h[:virtioHdrLen])
				if _, err := w.Write(h); err != nil {
					t.drops[DropWrite]++
				} else {
					t.portTx++
				}
			}
		} else if _, err := g.port.dev.Write(g.bufs, Headroom); err != nil {
			// A partial write reports bytes, not packets, on some
			// devices; count the whole group as lost on error.
			t.drops[DropWrite] += uint64(len(g.bufs))
		} else {
			t.portTx += uint64(len(g.bufs))
		}
		clear(g.bufs)
		g.bufs = g.bufs[:0]
		g.port = nil
	}
	q.used = 0
}

// mergeable reports whether at least two of the packets (each at Headroom)
// are TCP or UDP carrying data, which a GRO-capable Write might merge.
func mergeable(bufs [][]byte) bool {
	if len(bufs) < 2 {
		return false
	}
	n := 0
	for _, b := range bufs {
		pkt := b[Headroom:]
		info, ok := parseIP(pkt)
		if !ok || info.l4 == 0 || info.proto != protoTCP && info.proto != protoUDP {
			continue
		}
		hdr := udpHeaderLen
		if info.proto == protoTCP {
			if info.length < info.l4+tcpHeaderLen {
				continue
			}
			hdr = tcpHeaderLenAt(pkt, info.l4)
		}
		if info.length > info.l4+hdr {
			if n++; n == 2 {
				return true
			}
		}
	}
	return false
}
