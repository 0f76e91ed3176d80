package dns

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vxnet/vxnet/internal/testutil"
)

// limitServer serves an empty view on a loopback listener with cfg.
func limitServer(t *testing.T, cfg Config) (*Server, *Listener) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Serve(c, View{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, l
}

// dialFrom opens a TCP connection to l from the loopback address from.
func dialFrom(t *testing.T, l *Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether the server answers a query on c.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	co := &mdns.Conn{Conn: c}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := co.WriteMsg(new(mdns.Msg).SetQuestion("x.", mdns.TypeA)); err != nil {
		return false
	}
	_, err := co.ReadMsg()
	return err == nil
}

// closedByServer waits for the server to close c: a read that ends in
// EOF or a reset, not a timeout.
func closedByServer(t *testing.T, c net.Conn, within time.Duration) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// TestServer_capsTCPConnections holds real connections to a listener on
// loopback: past the per-client cap a new connection from that address is
// closed at once, past the total cap one from any address; each is
// counted, and a connection closed makes room again.
func TestServer_capsTCPConnections(t *testing.T) {
	s, l := limitServer(t, Config{MaxTCPConns: 5, MaxTCPConnsPerClient: 3, TCPReadTimeout: time.Minute, TCPIdleTimeout: time.Minute})
	var first []net.Conn
	for range 3 {
		c := dialFrom(t, l, "127.0.0.1")
		if !served(t, c) {
			t.Fatal("a connection within the caps is not served")
		}
		first = append(first, c)
	}
	if c := dialFrom(t, l, "127.0.0.1"); !closedByServer(t, c, 5*time.Second) {
		t.Error("a 4th connection from one client was not closed")
	}
	for range 2 {
		if c := dialFrom(t, l, "127.0.0.2"); !served(t, c) {
			t.Fatal("another client's connection within the caps is not served")
		}
	}
	if c := dialFrom(t, l, "127.0.0.3"); !closedByServer(t, c, 5*time.Second) {
		t.Error("a 6th connection in all was not closed")
	}
	if st := s.Stats(); st.TCPRefused != 2 {
		t.Errorf("%d connections counted refused, want 2", st.TCPRefused)
	}
	if n := s.OpenTCPConns(); n != 5 {
		t.Errorf("%d connections open, want 5", n)
	}
	first[0].Close()
	testutil.WaitFor(t, "the closed connection to be counted out", 5*time.Second, func() bool { return s.OpenTCPConns() == 4 })
	if c := dialFrom(t, l, "127.0.0.1"); !served(t, c) {
		t.Error("after a close, a new connection from the client is not served")
	}
}

// TestServer_closesSilentTCPConnections: a connection that sends nothing
// is closed after TCPReadTimeout, and one that goes quiet after a query
// after TCPIdleTimeout; both are counted out.
func TestServer_closesSilentTCPConnections(t *testing.T) {
	s, l := limitServer(t, Config{TCPReadTimeout: 100 * time.Millisecond, TCPIdleTimeout: 100 * time.Millisecond})
	silent := dialFrom(t, l, "127.0.0.1")
	if !closedByServer(t, silent, 5*time.Second) {
		t.Error("a connection that never sent a query is still open")
	}
	quiet := dialFrom(t, l, "127.0.0.1")
	if !served(t, quiet) {
		t.Fatal("no answer")
	}
	if !closedByServer(t, quiet, 5*time.Second) {
		t.Error("a connection idle after its query is still open")
	}
	testutil.WaitFor(t, "the connections to be counted out", 5*time.Second, func() bool { return s.OpenTCPConns() == 0 })
	if st := s.Stats(); st.TCPRefused != 0 {
		t.Errorf("%d connections counted refused, want 0", st.TCPRefused)
	}
}

// TestServer_manyTCPConnections: a client opening thousands of
// connections holds no more than the cap.
func TestServer_manyTCPConnections(t *testing.T) {
	s, l := limitServer(t, Config{TCPReadTimeout: time.Minute})
	var held []net.Conn
	for range 200 {
		held = append(held, dialFrom(t, l, "127.0.0.1"))
	}
	testutil.WaitFor(t, "the connections past the cap to be refused", 10*time.Second, func() bool {
		return s.Stats().TCPRefused == uint64(len(held)-DefaultMaxTCPConnsPerClient)
	})
	if n := s.OpenTCPConns(); n != DefaultMaxTCPConnsPerClient {
		t.Errorf("%d connections open, want the cap, %d", n, DefaultMaxTCPConnsPerClient)
	}
}
