//go:build linux

package udp

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

// gsoTrain is n payloads of size bytes (the last one short), each
// recognisable by its index, plus one to another flow in between.
func gsoTrain(n, size int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		l := size
		if i == n-1 {
			l = size / 3
		}
		out = append(out, bytes.Repeat([]byte{byte('a' + i%26)}, l))
	}
	return out
}

// TestGSO_plainReceiverGetsEveryDatagram: a train sent with GSO arrives
// at a receiver without GRO as the same datagrams, in order.
func TestGSO_plainReceiverGetsEveryDatagram(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := testListen(t, Config{Addr: lo})
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	train := gsoTrain(40, 1400)
	writeAll(t, tx, train, rx.LocalAddr(), func(int) uint32 { return 7 })
	got := readN(t, rx, len(train), 2048, 5*time.Second)
	for i, r := range got {
		if r.data != string(train[i]) {
			t.Fatalf("datagram %d: %d bytes of %q, want %d of %q", i, len(r.data), r.data[:1], len(train[i]), train[i][:1])
		}
	}
	if s := tx.Stats(); s.TxPackets != uint64(len(train)) || s.TxErrors != 0 {
		t.Errorf("sender stats %+v, want %d packets", s, len(train))
	}
}

// TestGRO_coalescedSegmentsRebuildTheTrain: with ReadBatchGRO the
// receiver may get the train coalesced; cutting each datagram at its
// segment size gives back every datagram, in order.
func TestGRO_coalescedSegmentsRebuildTheTrain(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := testListen(t, Config{Addr: lo})
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	train := gsoTrain(40, 1400)
	startGRO(t, rx, tx)
	writeAll(t, tx, train, rx.LocalAddr(), func(int) uint32 { return 7 })
	var got []string
	coalesced := false
	for _, g := range readGRO(t, rx, tx, len(train)) {
		got = append(got, g...)
		coalesced = coalesced || len(g) > 1
	}
	for i := range train {
		if got[i] != string(train[i]) {
			t.Fatalf("datagram %d: %d bytes, want %d", i, len(got[i]), len(train[i]))
		}
	}
	t.Logf("coalesced by the kernel: %v", coalesced)
	if s := rx.Stats(); s.RxPackets != uint64(len(train)+1) {
		t.Errorf("receiver counted %d datagrams, want %d", s.RxPackets, len(train)+1)
	}
}

// startGRO turns GRO on at rx with a first datagram from tx.
func startGRO(t *testing.T, rx, tx *Conn) {
	t.Helper()
	writeAll(t, tx, [][]byte{[]byte("hello")}, rx.LocalAddr(), func(int) uint32 { return 7 })
	got := readGRO(t, rx, tx, 1)
	if len(got) != 1 || len(got[0]) != 1 || got[0][0] != "hello" {
		t.Fatalf("first datagram: %q", got)
	}
}

// readGRO reads n datagrams tx sent with ReadBatchGRO: one group per
// datagram read, holding the datagrams it was coalesced from, in order.
func readGRO(t *testing.T, rx, tx *Conn, n int) [][]string {
	t.Helper()
	bufs := make([][]byte, rx.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, 65536)
	}
	sizes, segs := make([]int, len(bufs)), make([]int, len(bufs))
	from := make([]netip.AddrPort, len(bufs))
	timer := time.AfterFunc(5*time.Second, func() { rx.Close() })
	defer timer.Stop()
	var groups [][]string
	for got := 0; got < n; {
		k, err := rx.ReadBatchGRO(bufs, sizes, segs, from)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		for i := 0; i < k; i++ {
			seg := segs[i]
			if seg == 0 {
				seg = sizes[i]
			}
			if from[i] != tx.LocalAddr() && from[i].Addr() != tx.LocalAddr().Addr() {
				t.Errorf("datagram from %v, want %v", from[i], tx.LocalAddr())
			}
			var g []string
			for off := 0; off < sizes[i]; off += seg {
				g = append(g, string(bufs[i][off:min(off+seg, sizes[i])]))
			}
			groups = append(groups, g)
			got += len(g)
		}
	}
	return groups
}

// TestGSO_trainStartsWhereMarked: two trains of 43 full datagrams, more
// than a batch, the first of each marked TrainStart, leave as two messages:
// no datagram the receiver gets coalesced holds datagrams of both, and
// neither is cut by the batch size.
func TestGSO_trainStartsWhereMarked(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := testListen(t, Config{Addr: lo})
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	startGRO(t, rx, tx)
	const per = 43
	var train [][]byte
	for i := 0; i < 2*per; i++ {
		train = append(train, []byte(fmt.Sprintf("%03d-%s", i, bytes.Repeat([]byte("x"), 1200))))
	}
	writeAll(t, tx, train, rx.LocalAddr(), func(i int) uint32 {
		if i%per == 0 {
			return 7 | TrainStart
		}
		return 7
	})
	var sizes []int
	next := 0
	for _, g := range readGRO(t, rx, tx, len(train)) {
		for _, d := range g {
			if d != string(train[next]) {
				t.Fatalf("datagram %d: %.8q, want %.8q", next, d, train[next])
			}
			next++
		}
		if first := next - len(g); first/per != (next-1)/per {
			t.Errorf("datagrams %d to %d came as one: a train straddles the mark", first, next-1)
		}
		sizes = append(sizes, len(g))
	}
	if len(sizes) != 2 && len(sizes) != len(train) {
		t.Errorf("received as %v datagrams each; want two trains of %d (or none coalesced)", sizes, per)
	}
	t.Logf("received as %v", sizes)
}

// TestGSO_mixedSizesAndDestinations: only runs of one destination and
// size coalesce; everything still arrives once.
func TestGSO_mixedSizesAndDestinations(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo})
	b := testListen(t, Config{Addr: lo})
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	var bufs [][]byte
	var to []netip.AddrPort
	for i := 0; i < 30; i++ {
		dst := a.LocalAddr()
		if i%7 == 3 {
			dst = b.LocalAddr()
		}
		bufs = append(bufs, []byte(fmt.Sprintf("%03d-%s", i, bytes.Repeat([]byte("x"), 100+(i/10)*50))))
		to = append(to, dst)
	}
	hashes := make([]uint32, len(bufs))
	if n, err := tx.WriteBatch(bufs, to, hashes); err != nil || n != len(bufs) {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	var wantA, wantB []string
	for i, d := range to {
		if d == a.LocalAddr() {
			wantA = append(wantA, string(bufs[i]))
		} else {
			wantB = append(wantB, string(bufs[i]))
		}
	}
	for _, c := range []struct {
		conn *Conn
		want []string
	}{{a, wantA}, {b, wantB}} {
		got := readN(t, c.conn, len(c.want), 2048, 5*time.Second)
		for i := range c.want {
			if got[i].data != c.want[i] {
				t.Fatalf("datagram %d: %q, want %q", i, got[i].data, c.want[i])
			}
		}
	}
}

// TestGSO_trainGoesAsOneIovec: the datagrams of a GSO message are gathered
// side by side, so the kernel copies one iovec per message; once the
// arena is full, the rest keep an iovec each. What the iovecs hold is
// exactly the datagrams, in order.
func TestGSO_trainGoesAsOneIovec(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	w := tx.NewWriter().(*Writer)
	s := w.senders[0]
	to := netip.AddrPortFrom(lo, 4789)
	// Three trains of 43 datagrams of 1450 bytes: more than the arena holds.
	var sent [][]byte
	for m := 0; m < 3; m++ {
		for i := 0; i < 43; i++ {
			b := bytes.Repeat([]byte{byte(m*43 + i)}, 1450)
			if i == 0 {
				s.gso.closed = true
			}
			if s.full(to, b, true) {
				t.Fatalf("train %d datagram %d: sender full", m, i)
			}
			if !s.queue(to, b, true) {
				t.Fatalf("train %d datagram %d not queued", m, i)
			}
			sent = append(sent, b)
		}
	}
	if s.n != 3 {
		t.Fatalf("%d messages, want 3", s.n)
	}
	var got []byte
	iov := 0
	for k := 0; k < s.n; k++ {
		if s.gso.cnt[k] != 43 {
			t.Errorf("message %d: %d datagrams, want 43", k, s.gso.cnt[k])
		}
		for _, v := range unsafe.Slice(s.tx.msgs[k].Hdr.Iov, s.tx.msgs[k].Hdr.Iovlen) {
			got = append(got, unsafe.Slice(v.Base, v.Len)...)
			iov++
		}
		if s.gso.segOf[k] != 1450 || int(s.gso.last[k].Len) != 1450 {
			t.Errorf("message %d: segment %d, last %d, want 1450", k, s.gso.segOf[k], s.gso.last[k].Len)
		}
	}
	if n := s.tx.msgs[0].Hdr.Iovlen; n != 1 {
		t.Errorf("first message has %d iovecs, want 1", n)
	}
	if n := s.tx.msgs[1].Hdr.Iovlen; n != 1 {
		t.Errorf("second message has %d iovecs, want 1", n)
	}
	// The arena holds 89 datagrams of 1450 bytes: the third message
	// gathers its first three, the rest have an iovec each.
	if n := s.tx.msgs[2].Hdr.Iovlen; n != 1+43-(gatherBytes/1450-86) {
		t.Errorf("third message has %d iovecs, want %d", n, 1+43-(gatherBytes/1450-86))
	}
	if !bytes.Equal(got, bytes.Join(sent, nil)) {
		t.Errorf("the iovecs hold other bytes than the datagrams queued (%d bytes, want %d)", len(got), 129*1450)
	}
	w.drop()
}

// TestGSO_gatheredTrainsArriveWhole: trains more than the arena holds, in
// one WriteBatch through the Conn's own writer and through a Writer,
// arrive as the datagrams sent, in order.
func TestGSO_gatheredTrainsArriveWhole(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rx := testListen(t, Config{Addr: lo})
	tx := testListen(t, Config{Addr: lo, SourcePorts: 1})
	startGRO(t, rx, tx)
	var train [][]byte
	for i := 0; i < 3*43; i++ {
		train = append(train, []byte(fmt.Sprintf("%03d-%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 1446))))
	}
	train[len(train)-1] = train[len(train)-1][:700] // a short last one
	hashes := make([]uint32, len(train))
	to := make([]netip.AddrPort, len(train))
	for i := range train {
		to[i] = rx.LocalAddr()
		if i%43 == 0 {
			hashes[i] = TrainStart
		}
	}
	for _, w := range []BatchWriter{tx, tx.NewWriter()} {
		if n, err := w.WriteBatch(train, to, hashes); err != nil || n != len(train) {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		next := 0
		for _, g := range readGRO(t, rx, tx, len(train)) {
			for _, d := range g {
				if d != string(train[next]) {
					t.Fatalf("datagram %d: %d bytes %.8q, want %d bytes %.8q", next, len(d), d, len(train[next]), train[next])
				}
				next++
			}
		}
	}
}

// BenchmarkGSOTrain sends one TSO super-packet's worth of datagrams (43 of
// 1464 bytes and a short last one, as a 64 KB TCP super-packet becomes)
// as one GSO message over loopback, to a receiver with GRO on: gathered
// into one buffer (the default), and with one iovec per datagram. The
// kernel's receive work runs in the sender's system call on loopback, as
// it does on a veth underlay.
func BenchmarkGSOTrain(b *testing.B) {
	for _, mode := range []string{"gathered", "iovecPerDatagram"} {
		b.Run(mode, func(b *testing.B) {
			lo := netip.MustParseAddr("127.0.0.1")
			rx := testListen(b, Config{Addr: lo})
			tx := testListen(b, Config{Addr: lo, SourcePorts: 1})
			w := tx.NewWriter().(*Writer)
			if mode != "gathered" {
				for _, s := range w.senders {
					s.arena = nil
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				bufs := make([][]byte, rx.BatchSize())
				for i := range bufs {
					bufs[i] = make([]byte, 65536)
				}
				sizes, segs := make([]int, len(bufs)), make([]int, len(bufs))
				from := make([]netip.AddrPort, len(bufs))
				for {
					if _, err := rx.ReadBatchGRO(bufs, sizes, segs, from); err != nil {
						return
					}
				}
			}()
			defer func() { rx.Close(); <-done }()
			train := make([][]byte, 44)
			to := make([]netip.AddrPort, len(train))
			hashes := make([]uint32, len(train))
			total := 0
			for i := range train {
				train[i] = make([]byte, 1464)
				to[i] = rx.LocalAddr()
			}
			train[len(train)-1] = train[len(train)-1][:500]
			hashes[0] = TrainStart
			for _, d := range train {
				total += len(d)
			}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := w.WriteBatch(train, to, hashes); err != nil || n != len(train) {
					b.Fatalf("WriteBatch = %d, %v", n, err)
				}
			}
		})
	}
}
