package udptest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("10.0.0.2")
)

func batch(n, size int) ([][]byte, []int, []netip.AddrPort) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n), make([]netip.AddrPort, n)
}

func TestRoundTrip(t *testing.T) {
	var n Network
	a, b := n.Conn(addrA), n.Conn(addrB)
	defer a.Close()
	defer b.Close()
	if got := b.LocalAddr(); got != netip.AddrPortFrom(addrB, 4789) {
		t.Fatalf("LocalAddr = %v", got)
	}
	payload := []byte("hello")
	// The destination may be given IPv4-mapped.
	dst := netip.AddrPortFrom(netip.AddrFrom16(addrB.As16()), 4789)
	k, err := a.WriteBatch([][]byte{payload, []byte("world")}, []netip.AddrPort{dst, b.LocalAddr()}, []uint32{1, 2})
	if err != nil || k != 2 {
		t.Fatalf("WriteBatch = %d, %v", k, err)
	}
	payload[0] = 'J' // the network must have copied it
	bufs, sizes, from := batch(4, 100)
	k, err = b.ReadBatch(bufs, sizes, from)
	if err != nil || k != 2 {
		t.Fatalf("ReadBatch = %d, %v", k, err)
	}
	for i, want := range []string{"hello", "world"} {
		if got := string(bufs[i][:sizes[i]]); got != want || from[i] != a.LocalAddr() {
			t.Errorf("datagram %d = %q from %v, want %q from %v", i, got, from[i], want, a.LocalAddr())
		}
	}
	if s := a.Stats(); s.TxPackets != 2 || s.TxErrors != 0 {
		t.Errorf("a stats %+v", s)
	}
	if s := b.Stats(); s.RxPackets != 2 {
		t.Errorf("b stats %+v", s)
	}
}

func TestDrops(t *testing.T) {
	var n Network
	a, b := n.Conn(addrA), n.Conn(addrB)
	defer a.Close()
	// Unknown address and wrong port are dropped, not errors.
	k, err := a.WriteBatch([][]byte{{1}, {2}}, []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("10.9.9.9"), 4789),
		netip.AddrPortFrom(addrB, 1234),
	}, []uint32{0, 0})
	if err != nil || k != 0 {
		t.Fatalf("WriteBatch = %d, %v", k, err)
	}
	// Fill b's queue and overflow it.
	bufs := make([][]byte, QueueLen+10)
	to := make([]netip.AddrPort, len(bufs))
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
		to[i] = b.LocalAddr()
	}
	k, err = a.WriteBatch(bufs, to, make([]uint32, len(bufs)))
	if err != nil || k != QueueLen {
		t.Fatalf("WriteBatch = %d, %v; want %d", k, err, QueueLen)
	}
	if got, want := n.Dropped(), uint64(12); got != want {
		t.Fatalf("Dropped = %d, want %d", got, want)
	}
	if s := a.Stats(); s.TxErrors != 12 || s.TxPackets != QueueLen {
		t.Fatalf("stats %+v", s)
	}
	// After b closes, its address is unreachable.
	b.Close()
	k, err = a.WriteBatch([][]byte{{1}}, []netip.AddrPort{b.LocalAddr()}, []uint32{0})
	if err != nil || k != 0 || n.Dropped() != 13 {
		t.Fatalf("WriteBatch to closed = %d, %v, dropped %d", k, err, n.Dropped())
	}
	// The address can be reused.
	n.Conn(addrB).Close()
}

func TestTruncated(t *testing.T) {
	var n Network
	a, b := n.Conn(addrA), n.Conn(addrB)
	defer a.Close()
	defer b.Close()
	a.WriteBatch([][]byte{make([]byte, 20), []byte("ok")}, []netip.AddrPort{b.LocalAddr(), b.LocalAddr()}, []uint32{0, 0})
	bufs, sizes, from := batch(2, 10)
	k, err := b.ReadBatch(bufs, sizes, from)
	if err != nil || k != 1 || string(bufs[0][:sizes[0]]) != "ok" {
		t.Fatalf("ReadBatch = %d, %v, %q", k, err, bufs[0][:sizes[0]])
	}
	if s := b.Stats(); s.RxTruncated != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCloseUnblocks(t *testing.T) {
	var n Network
	a := n.Conn(addrA)
	errc := make(chan error, 1)
	go func() {
		bufs, sizes, from := batch(1, 10)
		_, err := a.ReadBatch(bufs, sizes, from)
		errc <- err
	}()
	a.Close()
	select {
	case err := <-errc:
		if err != net.ErrClosed {
			t.Fatalf("ReadBatch = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch blocked after Close")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteBatch([][]byte{{1}}, []netip.AddrPort{a.LocalAddr()}, []uint32{0}); err != net.ErrClosed {
		t.Fatalf("WriteBatch after Close = %v", err)
	}
}

func TestDuplicateAddressPanics(t *testing.T) {
	var n Network
	defer n.Conn(addrA).Close()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for duplicate address")
		}
	}()
	n.Conn(netip.AddrFrom16(addrA.As16())) // same address, IPv4-mapped
}

// TestConcurrent exercises writers, a reader and Close together (run with -race).
func TestConcurrent(t *testing.T) {
	var n Network
	r := n.Conn(addrA)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		c := n.Conn(netip.AddrFrom4([4]byte{10, 0, 1, byte(w)}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for i := 0; i < 200; i++ {
				if _, err := c.WriteBatch([][]byte{{byte(i)}}, []netip.AddrPort{r.LocalAddr()}, []uint32{0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// 800 < QueueLen, so nothing may be dropped and the reader gets all.
	done := make(chan int)
	go func() {
		bufs, sizes, from := batch(BatchSize, 10)
		got := 0
		for got < 800 {
			k, err := r.ReadBatch(bufs, sizes, from)
			if err != nil {
				break
			}
			got += k
		}
		done <- got
	}()
	wg.Wait()
	timer := time.AfterFunc(10*time.Second, func() { r.Close() })
	defer timer.Stop()
	if got := <-done; got != 800 || n.Dropped() != 0 {
		t.Fatalf("received %d, dropped %d of 800", got, n.Dropped())
	}
	r.Close()
}
