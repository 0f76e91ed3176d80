package bindretry

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

func listenUDP(addr string) func() (net.PacketConn, error) {
	return func() (net.PacketConn, error) { return net.ListenPacket("udp", addr) }
}

// TestRetry_waitsForTheAddress: a bind whose address another socket
// holds is retried, with one log line, and succeeds once it is freed.
func TestRetry_waitsForTheAddress(t *testing.T) {
	holder, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.LocalAddr().String()
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan error, 1)
	go func() {
		c, err := Retry(log, "gossip", addr, time.Minute, listenUDP(addr))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	testutil.WaitFor(t, "the retry to be logged", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "gossip: address in use")
	})
	holder.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bind after the address was freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no bind 10 s after the address was freed")
	}
	out := logs.String()
	if strings.Count(out, "address in use") != 1 || !strings.Contains(out, "gossip: bound once the address was free") ||
		!strings.Contains(out, "listenAddr="+addr) {
		t.Errorf("log:\n%s\nwant one retry line and one success line naming %s", out, addr)
	}
}

// TestRetry_givesUp: past the timeout the error says the address is
// still in use, and wraps the bind's own.
func TestRetry_givesUp(t *testing.T) {
	holder, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	addr := holder.LocalAddr().String()
	start := time.Now()
	_, err = Retry(slog.New(slog.DiscardHandler), "vxlan", addr, 300*time.Millisecond, listenUDP(addr))
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "still in use after 300ms") || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %v, want address in use, still after 300ms, naming %s", err, addr)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", time.Since(start))
	}
	if _, err := Retry(slog.New(slog.DiscardHandler), "vxlan", addr, -1, listenUDP(addr)); !errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "still") {
		t.Errorf("no retry: error %v, want the bind's own", err)
	}
}

// TestRetry_otherErrorsAtOnce: only an address in use is retried.
func TestRetry_otherErrorsAtOnce(t *testing.T) {
	var calls atomic.Int32
	_, err := Retry(slog.New(slog.DiscardHandler), "x", "a", time.Minute, func() (int, error) {
		calls.Add(1)
		return 0, errors.New("permission denied")
	})
	if err == nil || calls.Load() != 1 {
		t.Errorf("error %v after %d calls, want the error at once", err, calls.Load())
	}
	for _, msg := range []string{
		`failed to start TCP listener on "198.18.0.1" port 7946: listen tcp 198.18.0.1:7946: bind: address already in use`,
		"listen udp 0.0.0.0:4789: bind: Only one usage of each socket address (protocol/network address/port) is normally permitted.",
	} {
		if !InUse(errors.New(msg)) {
			t.Errorf("%q is not taken for an address in use", msg)
		}
	}
	if InUse(errors.New("bind: permission denied")) || InUse(nil) {
		t.Error("other errors taken for an address in use")
	}
}
