//go:build linux

package udp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallMTUNetns makes two namespaces of the test's own joined by a veth
// pair at MTU 1400, 198.18.77.1/24 in the first and 198.18.77.2/24 in the
// second, and returns a function that runs fn on a thread inside one of
// them (0 or 1; sockets opened there stay in it).
func smallMTUNetns(t *testing.T) func(which int, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces of its own)")
	}
	ns := []string{fmt.Sprintf("vxudp%da", os.Getpid()), fmt.Sprintf("vxudp%db", os.Getpid())}
	del := func() {
		for _, n := range ns {
			exec.Command("ip", "netns", "del", n).Run()
		}
	}
	for _, args := range [][]string{
		{"netns", "add", ns[0]},
		{"netns", "add", ns[1]},
		{"-n", ns[0], "link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1", "mtu", "1400", "netns", ns[1]},
		{"-n", ns[0], "addr", "add", "198.18.77.1/24", "dev", "v0"},
		{"-n", ns[1], "addr", "add", "198.18.77.2/24", "dev", "v1"},
		{"-n", ns[0], "link", "set", "v0", "up"},
		{"-n", ns[1], "link", "set", "v1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			del()
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(del)
	return func(which int, fn func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			// The thread is left locked: it dies with the goroutine
			// rather than run other code in the namespace.
			target, err := unix.Open("/var/run/netns/"+ns[which], unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Close(target)
			if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
				t.Error(err)
				return
			}
			fn()
		}()
		<-done
	}
}

// TestTooBig_neverFragmented: with an underlay MTU of 1400, a datagram
// whose packet would exceed it is not sent in fragments but dropped,
// counted, and its destination named (single datagrams and GSO trains
// alike); GSO stays on for datagrams that fit; PathMTU says 1400.
func TestTooBig_neverFragmented(t *testing.T) {
	in := smallMTUNetns(t)
	var tx *Conn
	var rx *net.UDPConn
	var err error
	var rxErr error
	in(0, func() { tx, err = Listen(Config{Addr: netip.MustParseAddr("198.18.77.1"), Port: 4789, SourcePorts: 2}) })
	in(1, func() { rx, rxErr = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("198.18.77.2"), Port: 4789}) })
	if err != nil || rxErr != nil {
		t.Fatal(err, rxErr)
	}
	defer tx.Close()
	defer rx.Close()
	dst := netip.MustParseAddrPort("198.18.77.2:4789")
	// 1372 bytes of payload fill a 1400-byte packet exactly.
	fits, over := bytes.Repeat([]byte{'f'}, 1372), bytes.Repeat([]byte{'o'}, 1373)
	send := func(bufs ...[]byte) {
		t.Helper()
		to := make([]netip.AddrPort, len(bufs))
		hashes := make([]uint32, len(bufs))
		for i := range to {
			to[i] = dst
		}
		if _, err := tx.WriteBatch(bufs, to, hashes); err != nil {
			t.Fatal(err)
		}
	}
	small := bytes.Repeat([]byte{'s'}, 100)
	send(over)                   // one datagram
	send(over, over, over)       // a GSO train of three
	send(over, small)            // a train whose short last datagram fits: it goes alone
	send(fits, fits, fits, fits) // a GSO train that fits
	s := tx.Stats()
	if s.TxTooBig != 5 || s.TxPackets != 5 {
		t.Errorf("stats %+v: want 5 too big and the 5 that fit sent", s)
	}
	if tx.gsoOff.Load() {
		t.Error("GSO turned off by datagrams too big for the path")
	}
	select {
	case <-tx.TooBig():
	default:
		t.Error("TooBig not signalled")
	}
	if d := tx.TooBigDestinations(); len(d) != 1 || d[0] != dst.Addr() {
		t.Errorf("TooBigDestinations = %v, want [%v]", d, dst.Addr())
	}
	if d := tx.TooBigDestinations(); len(d) != 0 {
		t.Errorf("TooBigDestinations again = %v, want none", d)
	}
	// Only whole datagrams that fit arrive: no fragment, nothing reassembled.
	buf := make([]byte, 4096)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := rx.Read(buf); err != nil || n != len(small) || buf[0] != 's' {
		t.Fatalf("first datagram: %d bytes of %q (%v), want the short one sent alone", n, buf[0], err)
	}
	for i := 0; i < 4; i++ {
		rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if n != len(fits) || buf[0] != 'f' {
			t.Fatalf("datagram %d: %d bytes of %q, want %d of 'f'", i, n, buf[0], len(fits))
		}
	}
	rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := rx.Read(buf); err == nil {
		t.Errorf("a fifth datagram arrived: %d bytes of %q", n, buf[0])
	}
	var mtu int
	in(0, func() { mtu, err = PathMTU(netip.MustParseAddr("198.18.77.1"), dst.Addr()) })
	if err != nil || mtu != 1400 {
		t.Errorf("PathMTU = %d, %v; want 1400", mtu, err)
	}
}
