package dataplane

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/internal/testutil"
	"golang.org/x/sys/unix"
)

// sinkUnderlay swallows writes from any number of loops at once, without
// allocating, and never delivers reads.
type sinkUnderlay struct{ sent atomic.Uint64 }

func (u *sinkUnderlay) ReadBatch([][]byte, []int, []netip.AddrPort) (int, error) {
	return 0, os.ErrClosed
}
func (u *sinkUnderlay) WriteBatch(bufs [][]byte, _ []netip.AddrPort, _ []uint32) (int, error) {
	u.sent.Add(uint64(len(bufs)))
	return len(bufs), nil
}
func (u *sinkUnderlay) NewWriter() udp.BatchWriter { return u }
func (u *sinkUnderlay) BatchSize() int             { return 64 }
func (u *sinkUnderlay) Close() error               { return nil }

// tunRig is a switch with real TUN devices as its ports, in a namespace of
// its own, on an underlay that swallows what it is given.
type tunRig struct {
	sw    *Switch
	ports []*Port
	sock  int                  // a UDP socket in the namespace: the containers
	peers []unix.SockaddrInet4 // port i's remote peer, behind vtep2
}

func newTunRig(t *testing.T, name string, ports int) *tunRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace with real TUN devices")
	}
	ns := fmt.Sprintf("%s%d", name, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	// No IPv6: router solicitations and MLD reports would be packets the
	// test does not expect.
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	sw, err := New(DefaultConfig(), &sinkUnderlay{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	r := &tunRig{sw: sw}
	var specs []EndpointSpec
	for i := range ports {
		addr, peer := netip.AddrFrom4([4]byte{10, 77, byte(i), 1}), netip.AddrFrom4([4]byte{10, 77, byte(i), 2})
		dev, err := tun.Create(tun.Config{Name: fmt.Sprintf("p%d", i), Netns: ns, Addresses: []netip.Prefix{netip.PrefixFrom(addr, 24)}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := sw.AddPort(fmt.Sprintf("p%d", i), dev)
		if err != nil {
			t.Fatal(err)
		}
		r.ports = append(r.ports, p)
		r.peers = append(r.peers, unix.SockaddrInet4{Port: 9, Addr: peer.As4()})
		specs = append(specs,
			EndpointSpec{MAC: vxlan.MAC{2, 0x42, 10, 77, byte(i), 1}, Addrs: []netip.Addr{addr}, Port: p},
			EndpointSpec{MAC: vxlan.MAC{2, 0x42, 10, 77, byte(i), 2}, Addrs: []netip.Addr{peer}, VTEP: vtep2})
	}
	tbl, err := NewTable([]NetworkSpec{{VNI: testVNI, Endpoints: specs}})
	if err != nil {
		t.Fatal(err)
	}
	sw.SetTable(tbl)
	inNamespace(t, ns, func() (err error) {
		r.sock, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		return err
	})
	t.Cleanup(func() { unix.Close(r.sock) })
	return r
}

// send has the namespace send a datagram to port i's peer, which leaves
// through port i.
func (r *tunRig) send(t *testing.T, i int, payload []byte) {
	if err := unix.Sendto(r.sock, payload, 0, &r.peers[i]); err != nil {
		t.Fatalf("send through port %d: %v", i, err)
	}
}

// TestPort_idleHoldsNoBuffers: a port read through tun.Raw has no read
// buffers of its own, and once the traffic through every port has been
// forwarded, every batch the ports borrowed is back in the pool: the
// ports, idle, hold none, and they borrowed no more than the pool's bound.
func TestPort_idleHoldsNoBuffers(t *testing.T) {
	const ports = 8
	r := newTunRig(t, "vxidle", ports)
	if l := r.sw.newInsideLoop(r.ports[0]); r.ports[0].raw == nil || l.readBufs != nil || l.b != nil {
		t.Fatalf("a TUN port's loop: raw %v, %d read buffers, batch %p; want raw reads and no buffers", r.ports[0].raw != nil, len(l.readBufs), l.b)
	}
	payload := make([]byte, 1000)
	for round := range 20 {
		for i := range ports {
			r.send(t, i, payload)
		}
		want := uint64((round + 1) * ports)
		testutil.WaitFor(t, "the datagrams to be forwarded", 10*time.Second, func() bool { return r.sw.stats.udpTx.Load() >= want })
	}
	bp := r.sw.batches
	testutil.WaitFor(t, "every batch back in the pool", 10*time.Second, func() bool { return len(bp.free) == int(bp.made.Load()) })
	if made := bp.made.Load(); made < 1 || made > bp.max {
		t.Errorf("%d batches made, want 1 to %d", made, bp.max)
	}
}

// TestPort_readLoopZeroAllocs: a datagram through a real TUN port, read
// with a borrowed batch, forwarded and the batch returned, allocates
// nothing.
func TestPort_readLoopZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	r := newTunRig(t, "vxalloc", 2)
	payload := make([]byte, 100)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		want := r.sw.stats.udpTx.Load() + 1
		r.send(t, i%2, payload)
		i++
		// AllocsPerRun runs on one P: a goroutine that spun here would
		// keep the port's loop from running until it is preempted.
		for r.sw.stats.udpTx.Load() < want {
			time.Sleep(20 * time.Microsecond)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet through a port, want 0", allocs)
	}
	if i < 200 {
		t.Fatalf("only %d datagrams went through", i)
	}
}
