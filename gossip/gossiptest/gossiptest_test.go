package gossiptest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip/memnet"
	"github.com/vxnet/vxnet/internal/testutil"
)

func TestDelay(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	const min, max = 40 * time.Millisecond, 60 * time.Millisecond
	n.SetDelay(min, max)

	const count = 50
	sent := make(map[string]time.Time)
	start := time.Now()
	for i := 0; i < count; i++ {
		msg := fmt.Sprint(i)
		ts, err := a.WriteTo([]byte(msg), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		sent[msg] = ts
	}
	// Sending must not have waited for delivery: if we are still inside the
	// minimum delay, nothing can have arrived yet.
	if time.Since(start) < min {
		NoPacket(t, b)
	}
	for i := 0; i < count; i++ {
		p := Recv(t, b, 10*time.Second)
		ts, ok := sent[string(p.Buf)]
		if !ok {
			t.Fatalf("unexpected packet %q", p.Buf)
		}
		delete(sent, string(p.Buf))
		if d := p.Timestamp.Sub(ts); d < min {
			t.Fatalf("packet %q delivered after %v, before min delay %v", p.Buf, d, min)
		}
		if p.From.String() != a.Addr() {
			t.Fatalf("From = %s", p.From)
		}
	}

	// Back to immediate delivery.
	n.SetDelay(0, 0)
	Send(t, a, b, "now")
	if len(b.PacketCh()) != 1 {
		t.Fatal("packet not delivered immediately after SetDelay(0, 0)")
	}
}

func TestPartition(t *testing.T) {
	n := NewNetwork(1)
	a, b, c, d := n.NewTransport("a"), n.NewTransport("b"), n.NewTransport("c"), n.NewTransport("d")

	// An open stream across the future cut.
	ab, err := a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()

	n.Partition([]string{"a"}, []string{"b"}) // c and d form the rest group
	for _, pair := range [][2]*memnet.Transport{{a, b}, {b, a}, {a, c}, {c, a}, {b, d}, {d, b}} {
		Send(t, pair[0], pair[1], "x")
		NoPacket(t, pair[1])
		DialFails(t, pair[0], pair[1])
	}
	// Unnamed nodes are together.
	Send(t, c, d, "cd")
	if string(Recv(t, d, time.Second).Buf) != "cd" {
		t.Fatal("bad packet")
	}
	DialOK(t, d, c)
	// The existing stream was cut.
	ab.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ab.Write([]byte("x")); err == nil {
		t.Fatal("write on stream across partition succeeded")
	}

	n.Heal()
	DrainStreams(b) // the stream cut by the partition
	for _, pair := range [][2]*memnet.Transport{{a, b}, {b, a}, {a, c}, {d, b}} {
		Send(t, pair[0], pair[1], "healed")
		if p := Recv(t, pair[1], time.Second); string(p.Buf) != "healed" || p.From.String() != pair[0].Addr() {
			t.Fatalf("bad packet after heal: %q from %s", p.Buf, p.From)
		}
		DialOK(t, pair[0], pair[1])
	}
}

func TestKillDropsDelayedPackets(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	n.SetDelay(time.Hour, time.Hour) // never due during the test
	Send(t, a, b, "late")
	n.SetDelay(0, 0)
	n.Kill("b")
	n.Revive("b")
	DrainStreams(b) // the stream cut by Kill
	Send(t, a, b, "now")
	if string(Recv(t, b, time.Second).Buf) != "now" {
		t.Fatal("bad packet")
	}
	// Shutdown discards the pending delayed packet, and the delivery
	// goroutine exits once nothing is pending.
	b.Shutdown()
	testutil.WaitFor(t, "delivery goroutine to exit", 5*time.Second, func() bool {
		n.f.sched.mu.Lock()
		defer n.f.sched.mu.Unlock()
		return !n.f.sched.running
	})
	if d := n.Stats().Dropped; d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
}

func TestConcurrentFaults(t *testing.T) {
	n := NewNetwork(7)
	const nodes = 20
	trs := make([]*memnet.Transport, nodes)
	for i := range trs {
		trs[i] = n.NewTransport(fmt.Sprint("n", i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range trs {
		wg.Add(2)
		go func(tr *memnet.Transport) { // drain
			defer wg.Done()
			for {
				select {
				case <-tr.PacketCh():
				case c := <-tr.StreamCh():
					c.Close()
				case <-stop:
					return
				}
			}
		}(trs[i])
		go func(i int) { // send
			defer wg.Done()
			for k := 0; k < 300; k++ {
				dst := trs[(i+k+1)%nodes]
				trs[i].WriteToAddress([]byte("payload"), memberlist.Address{Addr: dst.Addr(), Name: dst.Name()})
				if k%30 == 0 {
					if c, err := trs[i].DialTimeout(dst.Addr(), 50*time.Millisecond); err == nil {
						// net.Pipe is unbuffered: bound the write like memberlist does.
						c.SetDeadline(time.Now().Add(50 * time.Millisecond))
						c.Write([]byte("s"))
						c.Close()
					}
				}
			}
		}(i)
	}
	for k := 0; k < 50; k++ {
		n.SetLoss(float64(k%3) / 4)
		n.SetDelay(0, time.Duration(k%4)*time.Millisecond)
		n.Partition([]string{"n1", "n2"}, []string{"n3"})
		n.Kill(fmt.Sprint("n", k%nodes))
		n.Heal()
		n.Revive(fmt.Sprint("n", k%nodes))
		_ = n.Stats()
		_ = n.BytesSentBy("n1")
	}
	close(stop)
	wg.Wait()
}
