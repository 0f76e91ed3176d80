//go:build linux

package udp

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testListen opens a Conn on an ephemeral listening port.
func testListen(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := listen(cfg, true)
	if err != nil {
		t.Fatalf("listen(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	if c.LocalAddr().Port() == 0 {
		t.Fatalf("LocalAddr %v has no port", c.LocalAddr())
	}
	return c
}

type received struct {
	data string
	from netip.AddrPort
}

// readN reads until n datagrams arrived. If that takes longer than timeout
// the conn is closed, which unblocks ReadBatch, and the test fails.
func readN(t testing.TB, c *Conn, n int, bufSize int, timeout time.Duration) []received {
	t.Helper()
	timer := time.AfterFunc(timeout, func() { c.Close() })
	defer timer.Stop()
	bufs := make([][]byte, c.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, len(bufs))
	from := make([]netip.AddrPort, len(bufs))
	var out []received
	for len(out) < n {
		k, err := c.ReadBatch(bufs, sizes, from)
		if err != nil {
			t.Fatalf("ReadBatch after %d/%d datagrams: %v", len(out), n, err)
		}
		if k < 1 || k > len(bufs) {
			t.Fatalf("ReadBatch returned %d", k)
		}
		for i := 0; i < k; i++ {
			out = append(out, received{string(bufs[i][:sizes[i]]), from[i]})
		}
	}
	return out
}

func writeAll(t testing.TB, c *Conn, payloads [][]byte, to netip.AddrPort, hash func(i int) uint32) {
	t.Helper()
	dst := make([]netip.AddrPort, len(payloads))
	hashes := make([]uint32, len(payloads))
	for i := range payloads {
		dst[i] = to
		hashes[i] = hash(i)
	}
	n, err := c.WriteBatch(payloads, dst, hashes)
	if err != nil || n != len(payloads) {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(payloads))
	}
}

func contains(ports []uint16, p uint16) bool {
	for _, q := range ports {
		if q == p {
			return true
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		send Config
		recv Config
		dst  string // empty: receiver's LocalAddr
	}{
		{name: "ipv4", send: Config{Addr: netip.MustParseAddr("127.0.0.1")}, recv: Config{Addr: netip.MustParseAddr("127.0.0.1")}},
		{name: "ipv6", send: Config{Addr: netip.IPv6Loopback()}, recv: Config{Addr: netip.IPv6Loopback()}},
		{name: "ipv4 to dual stack", send: Config{Addr: netip.MustParseAddr("127.0.0.1")}, recv: Config{}, dst: "127.0.0.1"},
		{name: "dual stack to ipv4", send: Config{}, recv: Config{Addr: netip.MustParseAddr("127.0.0.1")}},
		{name: "ipv4 single socket", send: Config{Addr: netip.MustParseAddr("127.0.0.1"), SourcePorts: -1, BatchSize: 7}, recv: Config{Addr: netip.MustParseAddr("127.0.0.1"), BatchSize: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testListen(t, tc.send)
			b := testListen(t, tc.recv)
			to := b.LocalAddr()
			if tc.dst != "" {
				to = netip.AddrPortFrom(netip.MustParseAddr(tc.dst), to.Port())
			}
			const n = 100
			payloads := make([][]byte, n)
			want := make(map[string]bool)
			for i := range payloads {
				payloads[i] = []byte(strings.Repeat(string(rune('a'+i%26)), i+1) + "#" + string(rune('0'+i%10)))
				want[string(payloads[i])] = true
			}
			writeAll(t, a, payloads, to, func(i int) uint32 { return uint32(i) })
			got := readN(t, b, n, 2048, 10*time.Second)
			ports := a.SourcePorts()
			wantAddr := a.LocalAddr().Addr()
			if wantAddr.IsUnspecified() {
				wantAddr = to.Addr()
			}
			for _, r := range got {
				if !want[r.data] {
					t.Fatalf("unexpected or duplicate payload %q", r.data)
				}
				delete(want, r.data)
				if r.from.Addr() != wantAddr || !contains(ports, r.from.Port()) {
					t.Errorf("payload from %v, want %v with port in %v", r.from, wantAddr, ports)
				}
				if r.from.Addr().Is4In6() {
					t.Errorf("sender %v reported as IPv4-mapped", r.from)
				}
			}
			if len(want) != 0 {
				t.Fatalf("%d payloads missing", len(want))
			}
			if s := a.Stats(); s.TxPackets != n || s.TxErrors != 0 {
				t.Errorf("sender stats %+v", s)
			}
			if s := b.Stats(); s.RxPackets != n || s.RxTruncated != 0 {
				t.Errorf("receiver stats %+v", s)
			}
		})
	}
}

func TestSourcePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo, SourcePorts: 8})
	b := testListen(t, Config{Addr: lo})
	ports := a.SourcePorts()
	if len(ports) != 8 {
		t.Fatalf("SourcePorts = %v, want 8", ports)
	}
	seen := map[uint16]bool{}
	for _, p := range ports {
		if p == 0 || p == a.LocalAddr().Port() || seen[p] {
			t.Fatalf("bad source ports %v (listening %v)", ports, a.LocalAddr())
		}
		if p < SourcePortMin {
			t.Errorf("source port %d outside RFC 7348's %d-%d", p, SourcePortMin, SourcePortMax)
		}
		seen[p] = true
	}
	// Each hash is sent three times (in different batches); all copies must
	// come from port ports[hash%8].
	const hashes = 64
	for round := 0; round < 3; round++ {
		payloads := make([][]byte, hashes)
		for h := range payloads {
			payloads[h] = []byte{byte(h), byte(round)}
		}
		writeAll(t, a, payloads, b.LocalAddr(), func(i int) uint32 { return uint32(i) * 0x9e3779b1 })
	}
	got := readN(t, b, 3*hashes, 64, 10*time.Second)
	byHash := map[byte]uint16{}
	distinct := map[uint16]bool{}
	for _, r := range got {
		h := r.data[0]
		if !contains(ports, r.from.Port()) {
			t.Fatalf("source port %d not among %v", r.from.Port(), ports)
		}
		if want := ports[(uint32(h)*0x9e3779b1)%8]; r.from.Port() != want {
			t.Errorf("hash %d sent from %d, want %d", h, r.from.Port(), want)
		}
		if p, ok := byHash[h]; ok && p != r.from.Port() {
			t.Errorf("hash %d seen from ports %d and %d", h, p, r.from.Port())
		}
		byHash[h] = r.from.Port()
		distinct[r.from.Port()] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("only %d distinct source ports seen", len(distinct))
	}
}

func TestNoSourcePorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo, SourcePorts: -1})
	b := testListen(t, Config{Addr: lo})
	if p := a.SourcePorts(); len(p) != 1 || p[0] != a.LocalAddr().Port() {
		t.Fatalf("SourcePorts = %v, want [%d]", p, a.LocalAddr().Port())
	}
	writeAll(t, a, [][]byte{[]byte("x"), []byte("y")}, b.LocalAddr(), func(i int) uint32 { return uint32(i) })
	for _, r := range readN(t, b, 2, 64, 10*time.Second) {
		if r.from != a.LocalAddr() {
			t.Errorf("from %v, want %v", r.from, a.LocalAddr())
		}
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	c := testListen(t, Config{Addr: netip.MustParseAddr("127.0.0.1")})
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		bufs := [][]byte{make([]byte, 1500)}
		close(started)
		_, err := c.ReadBatch(bufs, make([]int, 1), make([]netip.AddrPort, 1))
		errc <- err
	}()
	<-started
	// Whether or not the reader is already parked, Close must make it return.
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) || err != net.ErrClosed {
			t.Fatalf("ReadBatch after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.WriteBatch([][]byte{{1}}, []netip.AddrPort{c.LocalAddr()}, []uint32{0}); err != net.ErrClosed {
		t.Fatalf("WriteBatch after Close = %v", err)
	}
	if _, err := c.ReadBatch([][]byte{make([]byte, 10)}, make([]int, 1), make([]netip.AddrPort, 1)); err != net.ErrClosed {
		t.Fatalf("ReadBatch after Close = %v", err)
	}
}

// TestCloseUnblocksParkedRead makes sure the reader really is parked in the
// netpoller (a first datagram proves the read loop runs) before closing.
func TestCloseUnblocksParkedRead(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	c := testListen(t, Config{Addr: lo})
	w := testListen(t, Config{Addr: lo})
	errc := make(chan error, 2)
	go func() {
		bufs := [][]byte{make([]byte, 1500)}
		for {
			_, err := c.ReadBatch(bufs, make([]int, 1), make([]netip.AddrPort, 1))
			errc <- err
			if err != nil {
				return
			}
		}
	}()
	writeAll(t, w, [][]byte{[]byte("hi")}, c.LocalAddr(), func(int) uint32 { return 0 })
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("first ReadBatch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("datagram not received")
	}
	c.Close()
	select {
	case err := <-errc:
		if err != net.ErrClosed {
			t.Fatalf("ReadBatch after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
}

func TestTruncatedDropped(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo})
	b := testListen(t, Config{Addr: lo})
	payloads := [][]byte{[]byte("short1"), make([]byte, 100), []byte("short2"), make([]byte, 200), []byte("short3")}
	writeAll(t, a, payloads, b.LocalAddr(), func(int) uint32 { return 0 }) // one socket keeps order
	got := readN(t, b, 3, 50, 10*time.Second)
	for i, r := range got {
		if want := "short" + string(rune('1'+i)); r.data != want {
			t.Errorf("datagram %d = %q, want %q", i, r.data, want)
		}
	}
	if s := b.Stats(); s.RxTruncated != 2 || s.RxPackets != 3 {
		t.Fatalf("stats %+v, want 2 truncated, 3 received", s)
	}
}

func TestWriteUnreachable(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo, SourcePorts: 2})
	b := testListen(t, Config{Addr: lo})
	// A port that is certainly closed: bind one, note it, close it.
	tmp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	closed := udpAddrPort(tmp.LocalAddr())
	tmp.Close()

	good := 0
	for round := 0; round < 5; round++ {
		var bufs [][]byte
		var to []netip.AddrPort
		var hashes []uint32
		for i := 0; i < 20; i++ {
			dst := closed
			switch i % 4 {
			case 1, 3:
				dst = b.LocalAddr()
				good++
			case 2:
				if round == 4 {
					// Kernel-side per-packet failure: too big for UDP.
					bufs = append(bufs, make([]byte, 70000))
					to = append(to, b.LocalAddr())
					hashes = append(hashes, uint32(i))
					continue
				}
			}
			bufs = append(bufs, []byte{byte(round), byte(i)})
			to = append(to, dst)
			hashes = append(hashes, uint32(i))
		}
		// Unsendable destinations on an IPv4 socket.
		bufs = append(bufs, []byte("v6"), []byte("invalid"))
		to = append(to, netip.AddrPortFrom(netip.IPv6Loopback(), b.LocalAddr().Port()), netip.AddrPort{})
		hashes = append(hashes, 0, 1)
		n, err := a.WriteBatch(bufs, to, hashes)
		if err != nil {
			t.Fatalf("round %d: WriteBatch error %v", round, err)
		}
		if n < 10 {
			t.Fatalf("round %d: only %d sent", round, n)
		}
	}
	got := readN(t, b, good, 100, 10*time.Second)
	if len(got) != good {
		t.Fatalf("got %d datagrams, want %d", len(got), good)
	}
	s := a.Stats()
	// 2 bad destinations per round plus 5 oversized datagrams.
	if s.TxErrors < 2*5+5 {
		t.Fatalf("TxErrors = %d, want >= 15 (stats %+v)", s.TxErrors, s)
	}
	t.Logf("stats %+v", s)
}

func TestWriteBatchLargerThanBatchSize(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	a := testListen(t, Config{Addr: lo, BatchSize: 4, SourcePorts: 3})
	b := testListen(t, Config{Addr: lo, BatchSize: 8})
	payloads := make([][]byte, 50)
	for i := range payloads {
		payloads[i] = []byte{byte(i)}
	}
	writeAll(t, a, payloads, b.LocalAddr(), func(i int) uint32 { return uint32(i * 7) })
	got := readN(t, b, 50, 10, 10*time.Second)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.data] = true
	}
	if len(seen) != 50 {
		t.Fatalf("got %d distinct payloads, want 50", len(seen))
	}
}

func TestArgumentChecks(t *testing.T) {
	c := testListen(t, Config{Addr: netip.MustParseAddr("127.0.0.1")})
	if _, err := c.ReadBatch(make([][]byte, 2), make([]int, 1), make([]netip.AddrPort, 2)); err == nil {
		t.Error("ReadBatch with short sizes succeeded")
	}
	if _, err := c.WriteBatch(make([][]byte, 2), make([]netip.AddrPort, 2), make([]uint32, 1)); err == nil {
		t.Error("WriteBatch with short hashes succeeded")
	}
	if n, err := c.ReadBatch(nil, nil, nil); n != 0 || err != nil {
		t.Errorf("empty ReadBatch = %d, %v", n, err)
	}
	if n, err := c.WriteBatch(nil, nil, nil); n != 0 || err != nil {
		t.Errorf("empty WriteBatch = %d, %v", n, err)
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) {
			a := testListen(t, Config{Addr: addr})
			b := testListen(t, Config{Addr: addr})
			const n = 32
			rt := newRoundTripper(a, b, n, 1400)
			timer := time.AfterFunc(30*time.Second, func() { b.Close() })
			defer timer.Stop()
			for i := 0; i < 10; i++ { // warm up
				if err := rt.cycle(); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				if e := rt.cycle(); e != nil && err == nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Fatalf("WriteBatch+ReadBatch of %d packets: %v allocs per run, want 0", n, allocs)
			}
		})
	}
}

// roundTripper writes n packets from a to b and reads them back.
type roundTripper struct {
	a, b   *Conn
	out    [][]byte
	to     []netip.AddrPort
	hashes []uint32
	in     [][]byte
	sizes  []int
	from   []netip.AddrPort
}

var errShort = errors.New("short write")

func newRoundTripper(a, b *Conn, n, size int) *roundTripper {
	rt := &roundTripper{a: a, b: b,
		out: make([][]byte, n), to: make([]netip.AddrPort, n), hashes: make([]uint32, n),
		in: make([][]byte, n), sizes: make([]int, n), from: make([]netip.AddrPort, n)}
	for i := 0; i < n; i++ {
		rt.out[i] = make([]byte, size)
		rt.out[i][0] = byte(i)
		rt.to[i] = b.LocalAddr()
		rt.hashes[i] = uint32(i)
		rt.in[i] = make([]byte, 2048)
	}
	return rt
}

func (rt *roundTripper) cycle() error {
	n, err := rt.a.WriteBatch(rt.out, rt.to, rt.hashes)
	if err != nil {
		return err
	}
	if n != len(rt.out) {
		return errShort
	}
	for got := 0; got < n; {
		k, err := rt.b.ReadBatch(rt.in[:n-got], rt.sizes, rt.from)
		if err != nil {
			return err
		}
		got += k
	}
	return nil
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1400} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			lo := netip.MustParseAddr("127.0.0.1")
			x := testListen(b, Config{Addr: lo})
			y := testListen(b, Config{Addr: lo})
			const n = 32
			rt := newRoundTripper(x, y, n, size)
			timer := time.AfterFunc(5*time.Minute, func() { y.Close() })
			defer timer.Stop()
			b.SetBytes(int64(n * size))
			b.ReportAllocs()
			iters := 0
			for b.Loop() {
				if err := rt.cycle(); err != nil {
					b.Fatal(err)
				}
				iters++
			}
			b.ReportMetric(float64(iters*n)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// TestReusePort_splitsByFlow: two Conns on one port with ReusePort share
// the datagrams, and every source port (flow) lands on one of them only.
func TestReusePort_splitsByFlow(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	q0 := testListen(t, Config{Addr: lo, ReusePort: true, SourcePorts: -1})
	q1, err := Listen(Config{Addr: lo, Port: q0.LocalAddr().Port(), ReusePort: true, SourcePorts: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q1.Close() })
	if _, err := Listen(Config{Addr: lo, Port: q0.LocalAddr().Port(), SourcePorts: -1}); err == nil {
		t.Error("a third socket without ReusePort bound the same port")
	}
	const flows = 32 // all on one queue by chance: 2 in 2^32
	a := testListen(t, Config{Addr: lo, SourcePorts: flows})
	payloads := make([][]byte, 4*flows)
	for i := range payloads {
		payloads[i] = []byte{byte(i % flows)}
	}
	writeAll(t, a, payloads, q0.LocalAddr(), func(i int) uint32 { return uint32(i % flows) })

	// Both queues read until all have arrived.
	type res struct {
		q   int
		got []received
	}
	ch := make(chan res, 2)
	var total atomic.Int64
	read := func(q int, c *Conn) {
		var out []received
		bufs := [][]byte{make([]byte, 64)}
		sizes, from := make([]int, 1), make([]netip.AddrPort, 1)
		for total.Load() < int64(len(payloads)) {
			n, err := c.ReadBatch(bufs, sizes, from)
			if err != nil {
				break
			}
			for i := 0; i < n; i++ {
				out = append(out, received{string(bufs[i][:sizes[i]]), from[i]})
			}
			if total.Add(int64(n)) >= int64(len(payloads)) {
				q0.Close()
				q1.Close()
			}
		}
		ch <- res{q, out}
	}
	timer := time.AfterFunc(10*time.Second, func() { q0.Close(); q1.Close() })
	defer timer.Stop()
	go read(0, q0)
	go read(1, q1)
	queueOf := map[uint16]int{}
	counts := [2]int{}
	for i := 0; i < 2; i++ {
		r := <-ch
		for _, d := range r.got {
			if q, ok := queueOf[d.from.Port()]; ok && q != r.q {
				t.Errorf("flow from port %d reached both queues", d.from.Port())
			}
			queueOf[d.from.Port()] = r.q
			counts[r.q]++
		}
	}
	if counts[0]+counts[1] != len(payloads) {
		t.Fatalf("received %d+%d datagrams, want %d", counts[0], counts[1], len(payloads))
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("one queue got everything: %v", counts)
	}
}
