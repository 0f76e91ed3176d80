package dataplane

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/tun/tuntest"
)

// scriptedReader hands out prepared reads (virtio-net header and packet
// each) the way tun.Raw.ReadBatch does: one batch per call, a super-packet
// only last, at most as many packets as the window has buffers.
type scriptedReader struct {
	t       *testing.T
	batches [][][]byte
	drained []bool
	windows []int // len(bufs) of each call
	waits   []bool
}

// ReadBatchLent borrows the lender's buffers and reads the next batch into
// them, as tun.Raw does when a packet is there at once.
func (s *scriptedReader) ReadBatchLent(l tun.Lender, offset int) (int, bool, error) {
	bufs, sizes := l.Lend()
	return s.ReadBatch(bufs, offset, sizes, true)
}

func (s *scriptedReader) ReadBatch(bufs [][]byte, offset int, sizes []int, wait bool) (int, bool, error) {
	s.windows = append(s.windows, len(bufs))
	s.waits = append(s.waits, wait)
	call := len(s.windows) - 1
	if call >= len(s.batches) {
		return 0, true, nil
	}
	b := s.batches[call]
	if len(b) > len(bufs) {
		s.t.Fatalf("call %d: a batch of %d packets for a window of %d buffers", call, len(b), len(bufs))
	}
	for i, r := range b {
		copy(bufs[i][offset:], r)
		sizes[i] = len(r)
	}
	return len(b), s.drained[call], nil
}

// newReadRig returns the inside loop of p on a switch whose batches have
// batch buffers.
func newReadRig(t *testing.T, p *Port, batch int) *insideLoop {
	t.Helper()
	sw, err := New(DefaultConfig(), &nopUnderlay{})
	if err != nil {
		t.Fatal(err)
	}
	p.sw = sw
	l := sw.newInsideLoop(p)
	sw.batches.size.Store(int32(batch))
	return l
}

// TestPortRead_batches: insideLoop.read on a raw device splits what each batch
// brings, skips and counts a packet whose virtio-net header is bad (those
// after it move down over it), reads on while the device has more and the
// buffers hold a whole super-packet, and stops once the queue is drained.
func TestPortRead_batches(t *testing.T) {
	const room = 8
	plain := func(payload string) []byte { return append(make([]byte, virtioHdrLen), tcpPacket([]byte(payload))...) }
	bad := append([]byte{virtioFlagNeedsCsum, 0, 0, 0, 0, 0, 200, 0, 6, 0}, tcpPacket([]byte("bad"))...) // csum_start past the end
	super := superPacket(t, false, protoTCP, bytes.Repeat([]byte{9}, 3000), 1000, 0x10)                  // three segments
	r := &scriptedReader{t: t,
		batches: [][][]byte{{plain("a"), bad, plain("b"), super}, {plain("c")}},
		drained: []bool{false, true},
	}
	l := newReadRig(t, &Port{dev: tuntest.New(room, 4), raw: r, vnet: true}, 3*room)
	n, err := l.read()
	bufs, sizes, tl := l.b.bufs, l.b.sizes, l.tally
	if err == nil || errors.Is(err, os.ErrClosed) {
		t.Fatalf("error %v, want the bad header's", err)
	}
	if n != 6 {
		t.Fatalf("%d packets, want a, b, three segments and c", n)
	}
	if tl.drops[DropMalformed] != 1 {
		t.Errorf("malformed drops %d, want 1", tl.drops[DropMalformed])
	}
	pkt := func(i int) []byte { return bufs[i][Headroom : Headroom+sizes[i]] }
	if !bytes.Equal(pkt(0), tcpPacket([]byte("a"))) || !bytes.Equal(pkt(1), tcpPacket([]byte("b"))) || !bytes.Equal(pkt(5), tcpPacket([]byte("c"))) {
		t.Error("the plain packets are not a, b, c in order")
	}
	// The segments' checksums are left partial (lazy checksums), and
	// finish valid.
	for i := 2; i < 5; i++ {
		info, _ := parseIP(pkt(i))
		if !l.b.partial[i] || l4Valid(pkt(i)) {
			t.Errorf("segment %d: partial %v, checksum already valid %v; want it left partial", i-2, l.b.partial[i], l4Valid(pkt(i)))
		}
		completeChecksum(pkt(i), &info)
		if sizes[i] != 20+32+1000 || !l4Valid(pkt(i)) {
			t.Errorf("segment %d: %d bytes, checksum valid %v once finished", i-2, sizes[i], l4Valid(pkt(i)))
		}
	}
	if l.b.partial[0] || l.b.partial[1] || l.b.partial[5] {
		t.Error("a plain packet marked partial")
	}
	// The super-packet's segments, and the packet after them, each start
	// a train on the underlay; nothing else does.
	if want := []bool{false, false, true, false, false, true}; !slices.Equal(l.b.cut[:n], want) {
		t.Errorf("cut %v, want %v", l.b.cut[:n], want)
	}
	// The first read waits, the second does not; each window leaves room
	// for a whole super-packet behind its last buffer.
	if len(r.windows) != 2 || r.windows[0] != 3*room-room+1 || r.windows[1] != 3*room-5-room+1 || !r.waits[0] || r.waits[1] {
		t.Errorf("windows %v waits %v, want [17 12] [true false]", r.windows, r.waits)
	}
}

// TestPortRead_tooManySegments: a super-packet cut finer than the buffers
// allow is a too_big drop; the packets read before it stay.
func TestPortRead_tooManySegments(t *testing.T) {
	const room = 2
	super := superPacket(t, false, protoTCP, bytes.Repeat([]byte{9}, 3000), 1000, 0x10) // three segments
	r := &scriptedReader{t: t,
		batches: [][][]byte{{append(make([]byte, virtioHdrLen), tcpPacket([]byte("a"))...), super}},
		drained: []bool{false},
	}
	l := newReadRig(t, &Port{dev: tuntest.New(room, 4), raw: r, vnet: true}, 3)
	n, err := l.read()
	tl := l.tally
	if n != 1 || !errors.Is(err, errTooManySegments) || tl.drops[DropTooBig] != 1 {
		t.Fatalf("n=%d err=%v too_big=%d, want the plain packet, errTooManySegments and one drop", n, err, tl.drops[DropTooBig])
	}
}
