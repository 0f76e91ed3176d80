package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkPortMemory measures what endpoints cost in resident memory: a
// switch on a real UDP underlay with 1, 100 or 500 real TUN devices as its
// ports, all in a network namespace the benchmark creates, after traffic
// went both ways through every port (small datagrams and a UDP GSO
// super-packet from the "container", datagrams from a remote VTEP to it).
// It reports the process's VmRSS once the traffic has passed (MB-rss) and
// what it grew by since before the switch existed, per endpoint
// (KB-rss/endpoint, fixed costs of the switch included, so the figure for
// one endpoint is the highest), and the live heap per endpoint after a
// collection (KB-heap/endpoint), pages never touched included: it is what
// GOGC scales, so garbage may take as much again before a collection. Each iteration is one more round of that
// traffic. Run each size in a process of its own for figures that owe
// nothing to memory an earlier size freed:
//
//	go test -run '^$' -bench 'PortMemory/500$' -benchtime 1x ./dataplane
//
// It needs root and skips without it.
func BenchmarkPortMemory(b *testing.B) {
	for _, n := range []int{1, 100, 500} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchPortMemory(b, n) })
	}
}

func benchPortMemory(b *testing.B, endpoints int) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates a network namespace with real TUN devices")
	}
	ns := fmt.Sprintf("vxmem%d-%d", os.Getpid(), endpoints)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, cmd := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		// No IPv6: router solicitations and MLD reports would be traffic
		// the benchmark does not count.
		{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
		{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v %s", cmd, err, out)
		}
	}

	runtime.GC()
	debug.FreeOSMemory()
	base := vmRSS(b)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	baseHeap := ms0.HeapAlloc

	local, remote := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	var under, peer *udp.Conn
	var sock int // the containers' side: a UDP socket in the namespace
	inNamespace(b, ns, func() (err error) {
		if under, err = udp.Listen(udp.Config{Addr: local}); err != nil {
			return err
		}
		if peer, err = udp.Listen(udp.Config{Addr: remote, SourcePorts: -1}); err != nil {
			return err
		}
		sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		return err
	})
	b.Cleanup(func() { peer.Close(); unix.Close(sock) })
	gso := unix.SetsockoptInt(sock, unix.SOL_UDP, unix.UDP_SEGMENT, 1400) == nil

	sw, err := New(DefaultConfig(), under)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})

	// Endpoint i: 10.a.b.1/24 on TUN device m<i>; its peer 10.a.b.2 is
	// behind the remote VTEP.
	type endpoint struct {
		addr, peer netip.Addr
		mac        vxlan.MAC
	}
	eps := make([]endpoint, endpoints)
	specs := []EndpointSpec{}
	for i := range eps {
		a, c := byte(64+i/256), byte(i%256)
		eps[i] = endpoint{netip.AddrFrom4([4]byte{10, a, c, 1}), netip.AddrFrom4([4]byte{10, a, c, 2}), vxlan.MAC{2, 0x42, 10, a, c, 1}}
		dev, err := tun.Create(tun.Config{Name: fmt.Sprintf("m%d", i), Netns: ns, Addresses: []netip.Prefix{netip.PrefixFrom(eps[i].addr, 24)}})
		if err != nil {
			b.Fatal(err)
		}
		p, err := sw.AddPort(fmt.Sprintf("m%d", i), dev)
		if err != nil {
			b.Fatal(err)
		}
		specs = append(specs,
			EndpointSpec{MAC: eps[i].mac, Addrs: []netip.Addr{eps[i].addr}, Port: p},
			EndpointSpec{MAC: vxlan.MAC{2, 0x42, 10, a, c, 2}, Addrs: []netip.Addr{eps[i].peer}, VTEP: remote})
	}
	tbl, err := NewTable([]NetworkSpec{{VNI: testVNI, Subnets: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/10")}, Endpoints: specs}})
	if err != nil {
		b.Fatal(err)
	}
	sw.SetTable(tbl)

	// The remote VTEP reads what the switch sends it, so that its socket
	// never fills.
	go func() {
		bufs := newBuffers(peer.BatchSize(), 2048)
		sizes, from := make([]int, len(bufs)), make([]netip.AddrPort, len(bufs))
		for {
			if _, err := peer.ReadBatch(bufs, sizes, from); err != nil {
				return
			}
		}
	}()

	// Per endpoint and round: a few small datagrams and a super-packet,
	// three times over, from the container (the number of small ones
	// varies, so that over the rounds super-packets land at all places
	// of a batch, as a TCP flow's would), and small datagrams from the
	// remote VTEP to it. Everything is made beforehand: the rounds
	// allocate nothing, so what the RSS shows is the switch's and the
	// devices', not garbage of the benchmark's waiting for a collection.
	const (
		supers   = 3
		segs     = 40
		fromVTEP = 8
	)
	payload := make([]byte, 1400*segs)
	toSwitch := netip.AddrPortFrom(local, vxlan.DefaultPort)
	peers := make([]unix.SockaddrInet4, endpoints)
	frames := make([][][]byte, endpoints)
	for i, ep := range eps {
		peers[i] = unix.SockaddrInet4{Port: 9, Addr: ep.peer.As4()}
		f := frame(testVNI, ep.mac, vxlan.MAC{2, 0x42, 1}, vxlan.EtherTypeIPv4, ipv4UDP(ep.peer, ep.addr, 9, 9, payload[:1000]))
		for range fromVTEP {
			frames[i] = append(frames[i], f)
		}
	}
	to := make([]netip.AddrPort, fromVTEP)
	for i := range to {
		to[i] = toSwitch
	}
	hashes := make([]uint32, fromVTEP)
	rounds := 0
	round := func() {
		rx, tx := sw.stats.portRx.Load(), sw.stats.portTx.Load()
		for i := range eps {
			for j := range supers {
				for range 1 + (rounds+j)%7 {
					if err := unix.Sendto(sock, payload[:100], 0, &peers[i]); err != nil {
						b.Fatalf("send from the namespace: %v", err)
					}
					rx++
				}
				if gso {
					if err := unix.Sendto(sock, payload, 0, &peers[i]); err != nil {
						b.Fatalf("GSO send from the namespace: %v", err)
					}
					rx += segs
				}
			}
			if n, err := peer.WriteBatch(frames[i], to, hashes); n != fromVTEP || err != nil {
				b.Fatalf("remote VTEP sent %d of %d: %v", n, fromVTEP, err)
			}
			tx += fromVTEP
		}
		rounds++
		// Everything the containers sent was read and forwarded, and
		// everything the VTEP sent was written to the ports.
		testutil.WaitFor(b, "the round's traffic", time.Minute, func() bool {
			return sw.stats.portRx.Load() >= rx && sw.stats.portTx.Load() >= tx
		})
	}
	for b.Loop() {
		round()
	}
	b.StopTimer()
	rss := vmRSS(b)
	b.ReportMetric(float64(rss)/(1<<20), "MB-rss")
	b.ReportMetric(float64(rss-base)/1024/float64(endpoints), "KB-rss/endpoint")
	// The live heap, resident or not, sets how much garbage the process
	// may gather before the next collection (GOGC): per endpoint it says
	// what an endpoint adds to that.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc-baseHeap)/1024/float64(endpoints), "KB-heap/endpoint")
	if !gso {
		b.Log("no UDP GSO here: the rounds had no super-packets")
	}
}

// inNamespace runs fn on an OS thread in the named network namespace;
// sockets it opens stay in that namespace.
func inNamespace(tb testing.TB, name string, fn func() error) {
	tb.Helper()
	target, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Fatal(err) // the thread stays locked and dies with the goroutine
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		tb.Fatal(err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		tb.Fatal(err)
	}
	runtime.UnlockOSThread()
	if ferr != nil {
		tb.Fatal(ferr)
	}
}

// vmRSS is the process's resident set size in bytes.
func vmRSS(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
