package tun

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRaw_readsWhatTheKernelSends reads, through Raw, the echo requests a
// real ping inside the namespace sends: a waiting read returns the packet
// behind its virtio header, and after Close reads fail with os.ErrClosed.
// A Writer writes without allocating.
func TestRaw_readsWhatTheKernelSends(t *testing.T) {
	ns := testNetns(t, "vxraw")
	dev, err := Create(Config{Name: "eth0", Netns: ns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.10.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r, err := NewRaw(dev)
	if err != nil {
		t.Fatal(err)
	}
	if !r.VnetHdr() {
		t.Error("VnetHdr false: the device was opened without offloads")
	}
	if uname, err := exec.Command("uname", "-r").Output(); err == nil {
		t.Logf("kernel %s: USO %v", strings.TrimSpace(string(uname)), r.USO())
	}
	bufs, sizes := [][]byte{make([]byte, 70000)}, make([]int, 1)
	// Drain what the kernel sent on its own when the link came up.
	for {
		n, _, err := r.ReadBatch(bufs, 0, sizes, false)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	// A writer of its own writes whole packets (virtio header first)
	// without allocating: a UDP datagram to the device's own address.
	w := r.NewWriter()
	pkt := make([]byte, 10+28)
	ip := pkt[10:]
	ip[0], ip[3], ip[8], ip[9] = 0x45, 28, 64, 17
	copy(ip[12:16], []byte{10, 0, 10, 9})
	copy(ip[16:20], []byte{10, 0, 10, 2})
	csum(ip[:20], 10)
	ip[21], ip[23], ip[25] = 9, 9, 8
	if _, err := w.Write(pkt); err != nil {
		t.Fatalf("raw write: %v", err)
	}
	if a := testing.AllocsPerRun(50, func() { w.Write(pkt) }); a != 0 {
		t.Errorf("%v allocations per raw write, want 0", a)
	}

	ping := exec.Command("ip", "netns", "exec", ns, "ping", "-c", "20", "-i", "0.2", "-W", "1", "10.0.10.9")
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ping.Process.Kill(); ping.Wait() })
	// A reader waiting in ReadBatch must come back once the device
	// closes.
	timer := time.AfterFunc(10*time.Second, func() { dev.Close() })
	defer timer.Stop()
	found := false
	for !found {
		n, _, err := r.ReadBatch(bufs, 0, sizes, true)
		if err != nil {
			t.Fatalf("waiting read: %v (no echo request within 10 s?)", err)
		}
		if n != 1 || sizes[0] < 10+20 {
			t.Fatalf("read %d packets, %d bytes: want one with a virtio header and an IPv4 header", n, sizes[0])
		}
		p := bufs[0][10:sizes[0]]
		found = p[0]>>4 == 4 && p[9] == 1 && netip.AddrFrom4([4]byte(p[16:20])) == netip.MustParseAddr("10.0.10.9")
	}
	dev.Close()
	if _, _, err := r.ReadBatch(bufs, 0, sizes, true); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v, want os.ErrClosed", err)
	}
}

func TestNewRaw_rejectsDevicesWithoutFile(t *testing.T) {
	if _, err := NewRaw(nil); err == nil {
		t.Error("NewRaw(nil) returned no error")
	}
}

// TestRaw_readBatchTakesWhatIsQueued writes five echo requests into the
// device for its own address; the kernel's five replies wait on the device,
// and one ReadBatch takes them all and says the queue is drained. With
// nothing queued it returns at once, without allocating.
func TestRaw_readBatchTakesWhatIsQueued(t *testing.T) {
	ns := testNetns(t, "vxrawb")
	// No IPv6 on the device: its router solicitations and MLD reports
	// would join the queue at moments of their own.
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	dev, err := Create(Config{Name: "eth0", Netns: ns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.12.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r, err := NewRaw(dev)
	if err != nil {
		t.Fatal(err)
	}
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 70000)
	}
	sizes := make([]int, len(bufs))
	for { // what the kernel sent on its own when the link came up
		n, _, err := r.ReadBatch(bufs, 0, sizes, false)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if a := testing.AllocsPerRun(100, func() { r.ReadBatch(bufs, 0, sizes, false) }); a != 0 {
		t.Errorf("%v allocations per ReadBatch that finds nothing, want 0", a)
	}

	w := r.NewWriter()
	for seq := range 5 {
		if _, err := w.Write(echoRequest(seq)); err != nil {
			t.Fatalf("write echo request: %v", err)
		}
	}
	const hdr = 10 // the virtio-net header
	n, drained, err := r.ReadBatch(bufs, 0, sizes, true)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || !drained {
		t.Fatalf("ReadBatch took %d packets (drained %v), want the 5 replies and drained", n, drained)
	}
	for i := range n {
		p := bufs[i][hdr:sizes[i]]
		if sizes[i] != hdr+28 || p[9] != 1 || p[20] != 0 || int(p[27]) != i {
			t.Errorf("packet %d (%d bytes) is not echo reply %d: % x", i, sizes[i], i, p)
		}
	}
}

// lender counts what it lends ReadBatchLent, and says when it takes the
// buffers back.
type lender struct {
	mu            sync.Mutex
	bufs          [][]byte
	sizes         []int
	lent          bool
	lends, unlent int
	waiting       chan struct{} // a send per Unlend, unless one is pending
}

func (l *lender) Lend() ([][]byte, []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lent = true
	l.lends++
	return l.bufs, l.sizes
}

func (l *lender) Unlend() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lent = false
	l.unlent++
	select {
	case l.waiting <- struct{}{}:
	default: // the test has not taken the last one yet
	}
}

// TestRaw_readBatchLentHoldsNoBuffersWhileWaiting: ReadBatchLent on an
// empty device takes the buffers back before it waits, borrows them again
// when a packet comes, and returns with the packet in them; closed while
// waiting, it returns os.ErrClosed with nothing lent.
func TestRaw_readBatchLentHoldsNoBuffersWhileWaiting(t *testing.T) {
	ns := testNetns(t, "vxrawl")
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	dev, err := Create(Config{Name: "eth0", Netns: ns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.12.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r, err := NewRaw(dev)
	if err != nil {
		t.Fatal(err)
	}
	l := &lender{bufs: make([][]byte, 4), sizes: make([]int, 4), waiting: make(chan struct{}, 1)}
	for i := range l.bufs {
		l.bufs[i] = make([]byte, 70000)
	}
	for { // what the kernel sent on its own when the link came up
		n, _, err := r.ReadBatch(l.bufs, 0, l.sizes, false)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	read := func() {
		n, _, err := r.ReadBatchLent(l, 0)
		done <- result{n, err}
	}
	go read()
	<-l.waiting // nothing queued: the buffers came back before the wait
	l.mu.Lock()
	lent, lends := l.lent, l.lends
	l.mu.Unlock()
	if lent {
		t.Fatalf("the buffers are lent while the reader waits (%d lends)", lends)
	}
	if _, err := r.NewWriter().Write(echoRequest(7)); err != nil {
		t.Fatalf("write echo request: %v", err)
	}
	res := <-done
	if res.err != nil || res.n != 1 {
		t.Fatalf("ReadBatchLent: n=%d err=%v, want the echo reply", res.n, res.err)
	}
	if !l.lent || l.lends != l.unlent+1 {
		t.Fatalf("lent %v after %d lends and %d returns, want the buffers lent once more than returned", l.lent, l.lends, l.unlent)
	}
	if p := l.bufs[0][10:l.sizes[0]]; l.sizes[0] != 10+28 || p[20] != 0 || p[27] != 7 {
		t.Errorf("the lent buffer does not hold echo reply 7: % x", p)
	}

	l.lent = false
	go read()
	<-l.waiting
	dev.Close()
	res = <-done
	if !errors.Is(res.err, os.ErrClosed) || res.n != 0 {
		t.Errorf("closed while waiting: n=%d err=%v, want 0 and os.ErrClosed", res.n, res.err)
	}
	if l.lent {
		t.Error("closed while waiting: the buffers are still lent")
	}
}

// echoRequest is an ICMP echo request from 10.0.12.9 to 10.0.12.2 behind a
// zero virtio-net header.
func echoRequest(seq int) []byte {
	pkt := make([]byte, 10+28)
	ip := pkt[10:]
	ip[0], ip[3], ip[8], ip[9] = 0x45, 28, 64, 1
	copy(ip[12:16], []byte{10, 0, 12, 9})
	copy(ip[16:20], []byte{10, 0, 12, 2})
	csum(ip[:20], 10)
	icmp := ip[20:]
	icmp[0], icmp[5], icmp[7] = 8, 42, byte(seq)
	csum(icmp, 2)
	return pkt
}

// csum puts the Internet checksum of b at b[at:].
func csum(b []byte, at int) {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	b[at], b[at+1] = byte(^s>>8), byte(^s)
}
