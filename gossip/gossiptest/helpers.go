package gossiptest

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip/memnet"
)

// Recv returns the next packet of tr or fails after timeout.
func Recv(tb testing.TB, tr *memnet.Transport, timeout time.Duration) *memberlist.Packet {
	tb.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(timeout):
		tb.Fatalf("no packet for %s within %v", tr.Name(), timeout)
		return nil
	}
}

// NoPacket asserts that tr has nothing queued. Delivery without delay is
// synchronous, so this is exact when no delay is set.
func NoPacket(tb testing.TB, tr *memnet.Transport) {
	tb.Helper()
	if k := len(tr.PacketCh()); k != 0 {
		tb.Fatalf("%s has %d unexpected packets queued", tr.Name(), k)
	}
}

// Send sends msg from one transport to another; only a shut-down sender
// fails, as with UDP.
func Send(tb testing.TB, from, to *memnet.Transport, msg string) {
	tb.Helper()
	if _, err := from.WriteTo([]byte(msg), to.Addr()); err != nil {
		tb.Fatalf("WriteTo: %v", err)
	}
}

// DialOK opens a stream from -> to and checks data flows both ways.
func DialOK(tb testing.TB, from, to *memnet.Transport) {
	tb.Helper()
	c, err := from.DialTimeout(to.Addr(), time.Second)
	if err != nil {
		tb.Fatalf("dial %s -> %s: %v", from.Name(), to.Name(), err)
	}
	defer c.Close()
	var r net.Conn
	select {
	case r = <-to.StreamCh():
	case <-time.After(time.Second):
		tb.Fatal("no stream delivered")
	}
	defer r.Close()
	if r.RemoteAddr().String() != from.Addr() || c.RemoteAddr().String() != to.Addr() {
		tb.Fatalf("remote addrs %s / %s", r.RemoteAddr(), c.RemoteAddr())
	}
	deadline := time.Now().Add(5 * time.Second)
	c.SetDeadline(deadline)
	r.SetDeadline(deadline)
	exchange(tb, c, r, "ping")
	exchange(tb, r, c, "pong")
}

// exchange writes msg on w and reads it back on r: a pipe blocks the
// writer until the reader takes the bytes, so the write runs apart.
func exchange(tb testing.TB, w, r net.Conn, msg string) {
	tb.Helper()
	wrote := make(chan error, 1)
	go func() { _, err := w.Write([]byte(msg)); wrote <- err }()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
		tb.Fatalf("read %q, %v", buf, err)
	}
	if err := <-wrote; err != nil {
		tb.Fatal(err)
	}
}

// DialFails asserts that a dial from -> to fails, and fast: not after the
// dial's 30 s timeout.
func DialFails(tb testing.TB, from, to *memnet.Transport) {
	tb.Helper()
	start := time.Now()
	c, err := from.DialAddressTimeout(memberlist.Address{Addr: to.Addr(), Name: to.Name()}, 30*time.Second)
	if err == nil {
		c.Close()
		tb.Fatalf("dial %s -> %s succeeded, want error", from.Name(), to.Name())
	}
	if time.Since(start) > 20*time.Second {
		tb.Fatalf("dial took %v to fail", time.Since(start))
	}
}

// DrainStreams closes the streams queued on tr.
func DrainStreams(tr *memnet.Transport) {
	for len(tr.StreamCh()) > 0 {
		(<-tr.StreamCh()).Close()
	}
}
