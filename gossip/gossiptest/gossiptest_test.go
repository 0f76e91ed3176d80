package gossiptest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// recv returns the next packet of tr or fails after timeout.
func recv(t testing.TB, tr *Transport, timeout time.Duration) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(timeout):
		t.Fatalf("no packet for %s within %v", tr.name, timeout)
		return nil
	}
}

// noPacket asserts that tr has nothing queued. Delivery without delay is
// synchronous, so this is exact when no delay is set.
func noPacket(t testing.TB, tr *Transport) {
	t.Helper()
	if k := len(tr.PacketCh()); k != 0 {
		t.Fatalf("%s has %d unexpected packets queued", tr.name, k)
	}
}

func mustSend(t testing.TB, from, to *Transport, msg string) {
	t.Helper()
	if _, err := from.WriteTo([]byte(msg), to.Addr()); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
}

func TestAddresses(t *testing.T) {
	n := NewNetwork(1)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tr := n.NewTransport(fmt.Sprint("n", i))
		host, p, err := net.SplitHostPort(tr.Addr())
		if err != nil || p != "7946" || net.ParseIP(host).To4() == nil {
			t.Fatalf("bad address %q: %v", tr.Addr(), err)
		}
		if seen[tr.Addr()] {
			t.Fatalf("duplicate address %q", tr.Addr())
		}
		seen[tr.Addr()] = true
		ip, port, err := tr.FinalAdvertiseAddr("", 0)
		if err != nil || net.JoinHostPort(ip.String(), fmt.Sprint(port)) != tr.Addr() {
			t.Fatalf("FinalAdvertiseAddr = %v %v %v, want %s", ip, port, err, tr.Addr())
		}
	}
}

func TestPacketDelivery(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")

	buf := []byte("hello")
	sent, err := a.WriteTo(buf, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X' // the transport must have copied the packet
	p := recv(t, b, time.Second)
	if string(p.Buf) != "hello" {
		t.Fatalf("got %q, want %q", p.Buf, "hello")
	}
	if p.From.String() != a.Addr() {
		t.Fatalf("From = %s, want %s", p.From, a.Addr())
	}
	if p.Timestamp.Before(sent) {
		t.Fatalf("receive timestamp %v before send timestamp %v", p.Timestamp, sent)
	}

	if _, err := b.WriteToAddress([]byte("back"), memberlist.Address{Addr: a.Addr(), Name: "a"}); err != nil {
		t.Fatal(err)
	}
	p = recv(t, a, time.Second)
	if string(p.Buf) != "back" || p.From.String() != b.Addr() {
		t.Fatalf("got %q from %s", p.Buf, p.From)
	}

	// Unknown destinations are dropped silently, like UDP.
	if _, err := a.WriteTo([]byte("x"), "10.255.255.255:7946"); err != nil {
		t.Fatalf("WriteTo unknown address: %v", err)
	}
	st := n.Stats()
	if st.Packets != 3 || st.Dropped != 1 || st.Bytes != 5+4+1 {
		t.Fatalf("stats = %+v", st)
	}
	if got := n.BytesSentBy("a"); got != 6 {
		t.Fatalf("BytesSentBy(a) = %d, want 6", got)
	}
	if got := n.BytesSentBy("b"); got != 4 {
		t.Fatalf("BytesSentBy(b) = %d, want 4", got)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	for i := 0; i < packetBuffer+100; i++ {
		mustSend(t, a, b, "p")
	}
	if k := len(b.PacketCh()); k != packetBuffer {
		t.Fatalf("queued %d, want %d", k, packetBuffer)
	}
	if d := n.Stats().Dropped; d != 100 {
		t.Fatalf("dropped %d, want 100", d)
	}
}

func TestLoss(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")

	n.SetLoss(1)
	for i := 0; i < 500; i++ {
		mustSend(t, a, b, "lost")
	}
	noPacket(t, b)
	if st := n.Stats(); st.Dropped != 500 || st.Packets != 500 {
		t.Fatalf("stats = %+v", st)
	}

	n.SetLoss(0)
	for i := 0; i < 1000; i++ {
		mustSend(t, a, b, "kept")
	}
	if k := len(b.PacketCh()); k != 1000 {
		t.Fatalf("delivered %d of 1000 with loss 0", k)
	}
	if st := n.Stats(); st.Dropped != 500 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestLossDeterministicPerSeed(t *testing.T) {
	pattern := func(seed int64) string {
		n := NewNetwork(seed)
		a, b := n.NewTransport("a"), n.NewTransport("b")
		n.SetLoss(0.5)
		var s []byte
		for i := 0; i < 200; i++ {
			mustSend(t, a, b, "x")
			if len(b.PacketCh()) > 0 {
				<-b.PacketCh()
				s = append(s, '1')
			} else {
				s = append(s, '0')
			}
		}
		return string(s)
	}
	p1, p2, p3 := pattern(42), pattern(42), pattern(43)
	if p1 != p2 {
		t.Fatalf("same seed gave different loss patterns:\n%s\n%s", p1, p2)
	}
	if p1 == p3 {
		t.Fatalf("different seeds gave the same loss pattern")
	}
	ones := bytes.Count([]byte(p1), []byte("1"))
	if ones < 50 || ones > 150 {
		t.Fatalf("loss 0.5 delivered %d of 200", ones)
	}
}

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
		noPacket(t, b)
	}
	for i := 0; i < count; i++ {
		p := recv(t, b, 10*time.Second)
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
	mustSend(t, a, b, "now")
	if len(b.PacketCh()) != 1 {
		t.Fatal("packet not delivered immediately after SetDelay(0, 0)")
	}
}

// dialOK opens a stream from -> to and checks data flows both ways.
func dialOK(t testing.TB, from, to *Transport) {
	t.Helper()
	c, err := from.DialTimeout(to.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial %s -> %s: %v", from.name, to.name, err)
	}
	defer c.Close()
	var r net.Conn
	select {
	case r = <-to.StreamCh():
	case <-time.After(time.Second):
		t.Fatal("no stream delivered")
	}
	defer r.Close()
	if r.RemoteAddr().String() != from.Addr() || c.RemoteAddr().String() != to.Addr() {
		t.Fatalf("remote addrs %s / %s", r.RemoteAddr(), c.RemoteAddr())
	}
	deadline := time.Now().Add(5 * time.Second)
	c.SetDeadline(deadline)
	r.SetDeadline(deadline)
	wrote := make(chan error, 1)
	go func() { _, err := c.Write([]byte("ping")); wrote <- err }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	go func() { _, err := r.Write([]byte("pong")); wrote <- err }()
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// drainStreams closes the streams queued on tr.
func drainStreams(tr *Transport) {
	for len(tr.StreamCh()) > 0 {
		(<-tr.StreamCh()).Close()
	}
}

func dialFails(t testing.TB, from, to *Transport) {
	t.Helper()
	start := time.Now()
	c, err := from.DialAddressTimeout(memberlist.Address{Addr: to.Addr(), Name: to.name}, 30*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s -> %s succeeded, want error", from.name, to.name)
	}
	// Failing fast (not after the 30s timeout) is the documented behaviour.
	if time.Since(start) > 20*time.Second {
		t.Fatalf("dial took %v to fail", time.Since(start))
	}
}

func TestStreams(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	dialOK(t, a, b)
	if st := n.Stats(); st.StreamsOpened != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if got := n.BytesSentBy("a"); got != 4 {
		t.Fatalf("BytesSentBy(a) = %d, want 4", got)
	}
	if got := n.BytesSentBy("b"); got != 4 {
		t.Fatalf("BytesSentBy(b) = %d, want 4", got)
	}

	if _, err := a.DialTimeout("10.255.255.255:7946", time.Second); err == nil {
		t.Fatal("dial to unknown address succeeded")
	}

	// A full stream queue makes the dial time out without blocking forever.
	for i := 0; i < streamBuffer; i++ {
		if _, err := a.DialTimeout(b.Addr(), time.Second); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	start := time.Now()
	if _, err := a.DialTimeout(b.Addr(), 20*time.Millisecond); err == nil {
		t.Fatal("dial to full stream queue succeeded")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("dial to full stream queue failed before its timeout")
	}
	// Shutdown closes the queued streams.
	b.Shutdown()
	for i := 0; i < streamBuffer; i++ {
		c := <-b.StreamCh()
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read from stream of shut down transport succeeded")
		}
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
	for _, pair := range [][2]*Transport{{a, b}, {b, a}, {a, c}, {c, a}, {b, d}, {d, b}} {
		mustSend(t, pair[0], pair[1], "x")
		noPacket(t, pair[1])
		dialFails(t, pair[0], pair[1])
	}
	// Unnamed nodes are together.
	mustSend(t, c, d, "cd")
	if string(recv(t, d, time.Second).Buf) != "cd" {
		t.Fatal("bad packet")
	}
	dialOK(t, d, c)
	// The existing stream was cut.
	ab.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ab.Write([]byte("x")); err == nil {
		t.Fatal("write on stream across partition succeeded")
	}

	n.Heal()
	drainStreams(b) // the stream cut by the partition
	for _, pair := range [][2]*Transport{{a, b}, {b, a}, {a, c}, {d, b}} {
		mustSend(t, pair[0], pair[1], "healed")
		if p := recv(t, pair[1], time.Second); string(p.Buf) != "healed" || p.From.String() != pair[0].Addr() {
			t.Fatalf("bad packet after heal: %q from %s", p.Buf, p.From)
		}
		dialOK(t, pair[0], pair[1])
	}
}

func TestKillRevive(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	ab, err := a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()

	n.Kill("b")
	mustSend(t, a, b, "in")
	mustSend(t, b, a, "out") // no error: the node doesn't know it is dead
	noPacket(t, a)
	noPacket(t, b)
	dialFails(t, a, b)
	dialFails(t, b, a)
	ab.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ab.Write([]byte("x")); err == nil {
		t.Fatal("write on stream to killed node succeeded")
	}

	n.Revive("b")
	drainStreams(b) // the stream cut by Kill
	mustSend(t, a, b, "in")
	mustSend(t, b, a, "out")
	if string(recv(t, b, time.Second).Buf) != "in" || string(recv(t, a, time.Second).Buf) != "out" {
		t.Fatal("bad packets after revive")
	}
	dialOK(t, a, b)
	dialOK(t, b, a)
}

func TestKillDropsDelayedPackets(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	n.SetDelay(time.Hour, time.Hour) // never due during the test
	mustSend(t, a, b, "late")
	n.SetDelay(0, 0)
	n.Kill("b")
	n.Revive("b")
	drainStreams(b) // the stream cut by Kill
	mustSend(t, a, b, "now")
	if string(recv(t, b, time.Second).Buf) != "now" {
		t.Fatal("bad packet")
	}
	// Shutdown discards the pending delayed packet, and the delivery
	// goroutine exits once nothing is pending.
	b.Shutdown()
	waitFor(t, 5*time.Second, "delivery goroutine to exit", func() bool {
		n.sched.mu.Lock()
		defer n.sched.mu.Unlock()
		return !n.sched.running
	})
	if d := n.Stats().Dropped; d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
}

func TestShutdown(t *testing.T) {
	n := NewNetwork(1)
	a, b := n.NewTransport("a"), n.NewTransport("b")
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	mustSend(t, a, b, "x")
	noPacket(t, b)
	dialFails(t, a, b)
	if _, err := b.WriteTo([]byte("x"), a.Addr()); err == nil {
		t.Fatal("WriteTo on shut down transport succeeded")
	}
	if _, err := b.DialTimeout(a.Addr(), time.Second); err == nil {
		t.Fatal("dial from shut down transport succeeded")
	}
	// The name can be reused by a new transport.
	b2 := n.NewTransport("b")
	mustSend(t, a, b2, "y")
	if string(recv(t, b2, time.Second).Buf) != "y" {
		t.Fatal("bad packet")
	}
}

func TestConcurrentFaults(t *testing.T) {
	n := NewNetwork(7)
	const nodes = 20
	trs := make([]*Transport, nodes)
	for i := range trs {
		trs[i] = n.NewTransport(fmt.Sprint("n", i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range trs {
		wg.Add(2)
		go func(tr *Transport) { // drain
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
				trs[i].WriteToAddress([]byte("payload"), memberlist.Address{Addr: dst.Addr(), Name: dst.name})
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

// cluster is a set of memberlist instances on one Network.
type cluster struct {
	net   *Network
	names []string
	trs   []*Transport
	mls   []*memberlist.Memberlist
}

func newCluster(t testing.TB, size int, tweak func(*memberlist.Config)) *cluster {
	t.Helper()
	c := &cluster{net: NewNetwork(1)}
	for i := 0; i < size; i++ {
		name := fmt.Sprintf("node-%03d", i)
		tr := c.net.NewTransport(name)
		conf := Config(tr, name, nil)
		if tweak != nil {
			tweak(conf)
		}
		ml, err := memberlist.Create(conf)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		c.names = append(c.names, name)
		c.trs = append(c.trs, tr)
		c.mls = append(c.mls, ml)
	}
	t.Cleanup(c.shutdown)
	// Node i joins through node 0 and two random earlier nodes, with bounded
	// parallelism so the seeds are not swamped by simultaneous push/pulls
	// (net.Pipe is unbuffered, and memberlist bounds each with TCPTimeout).
	rng := rand.New(rand.NewSource(1))
	sem := make(chan struct{}, 16)
	errs := make(chan error, size)
	for i := 1; i < size; i++ {
		seeds := []string{c.trs[0].Addr()}
		for k := 0; k < 2 && i > 1; k++ {
			seeds = append(seeds, c.trs[1+rng.Intn(i-1)].Addr())
		}
		sem <- struct{}{}
		go func(ml *memberlist.Memberlist) {
			defer func() { <-sem }()
			_, err := ml.Join(seeds)
			errs <- err
		}(c.mls[i])
	}
	for i := 1; i < size; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	return c
}

// testConfig shortens the push/pull interval. With default settings
// memberlist's gossip alone reaches almost, but not always, every node (each
// broadcast is retransmitted only a few times), and the stragglers are
// repaired by push/pull anti-entropy every 15s.
func testConfig(conf *memberlist.Config) {
	conf.PushPullInterval = time.Second
}

func (c *cluster) shutdown() {
	var wg sync.WaitGroup
	for _, ml := range c.mls {
		wg.Add(1)
		go func(ml *memberlist.Memberlist) {
			defer wg.Done()
			ml.Shutdown()
		}(ml)
	}
	wg.Wait()
}

// converged reports whether every instance sees exactly want alive members.
func (c *cluster) converged(want int, skip int) bool {
	for i, ml := range c.mls {
		if i == skip {
			continue
		}
		if ml.NumMembers() != want {
			return false
		}
	}
	return true
}

func waitConverged(t testing.TB, c *cluster, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, fmt.Sprintf("%d nodes to see each other", len(c.mls)), func() bool {
		return c.converged(len(c.mls), -1)
	})
	return time.Since(start)
}

func TestCluster20(t *testing.T) {
	base := runtime.NumGoroutine()
	start := time.Now()
	c := newCluster(t, 20, testConfig)
	took := waitConverged(t, c, 30*time.Second)
	t.Logf("20 nodes converged %v after joins (%v after start); stats %+v", took, time.Since(start), c.net.Stats())

	victim := 7
	c.net.Kill(c.names[victim])
	killed := time.Now()
	waitFor(t, 40*time.Second, "killed node to be declared dead", func() bool {
		for i, ml := range c.mls {
			if i == victim {
				continue
			}
			for _, m := range ml.Members() {
				if m.Name == c.names[victim] && m.State != memberlist.StateDead {
					return false
				}
			}
		}
		return true
	})
	t.Logf("killed node declared dead by all after %v", time.Since(killed))
	if c.net.BytesSentBy(c.names[0]) == 0 {
		t.Fatal("no bytes accounted to node-000")
	}

	c.shutdown()
	waitFor(t, 20*time.Second, "goroutines to return to baseline", func() bool {
		return runtime.NumGoroutine() <= base+5
	})
}

func TestCluster200(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 200-node cluster in short mode")
	}
	tweak := testConfig
	if raceEnabled {
		// The race detector slows memberlist down by an order of magnitude;
		// with default timings 200 nodes on a small machine miss their
		// stream and probe deadlines and flap. Give them slack.
		tweak = func(conf *memberlist.Config) {
			conf.EnableCompression = false
			conf.TCPTimeout = 10 * time.Second
			conf.ProbeInterval = 3 * time.Second
			conf.ProbeTimeout = 1500 * time.Millisecond
			conf.SuspicionMult = 8
			conf.GossipInterval = 200 * time.Millisecond
			conf.PushPullInterval = 2 * time.Second
		}
	}
	start := time.Now()
	c := newCluster(t, 200, tweak)
	joined := time.Since(start)
	took := waitConverged(t, c, 45*time.Second)
	st := c.net.Stats()
	t.Logf("200 nodes (race=%v): joins took %v, converged %v later; stats %+v; node-000 sent %d bytes",
		raceEnabled, joined, took, st, c.net.BytesSentBy(c.names[0]))
}
