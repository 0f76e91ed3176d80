package agent

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
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

// TestRetryBind_waitsForTheAddress: a bind whose address another socket
// holds is retried, with one log line, and succeeds once it is freed.
func TestRetryBind_waitsForTheAddress(t *testing.T) {
	holder, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.LocalAddr().String()
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan error, 1)
	go func() {
		c, err := retryBind(log, "gossip", addr, time.Minute, listenUDP(addr))
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

// TestRetryBind_givesUp: past the timeout the error says the address is
// still in use, and wraps the bind's own.
func TestRetryBind_givesUp(t *testing.T) {
	holder, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	addr := holder.LocalAddr().String()
	start := time.Now()
	_, err = retryBind(slog.New(slog.DiscardHandler), "vxlan", addr, 300*time.Millisecond, listenUDP(addr))
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "still in use after 300ms") || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %v, want address in use, still after 300ms, naming %s", err, addr)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", time.Since(start))
	}
	if _, err := retryBind(slog.New(slog.DiscardHandler), "vxlan", addr, -1, listenUDP(addr)); !errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "still") {
		t.Errorf("no retry: error %v, want the bind's own", err)
	}
}

// TestRetryBind_otherErrorsAtOnce: only an address in use is retried.
func TestRetryBind_otherErrorsAtOnce(t *testing.T) {
	var calls atomic.Int32
	_, err := retryBind(slog.New(slog.DiscardHandler), "x", "a", time.Minute, func() (int, error) {
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
		if !addrInUse(errors.New(msg)) {
			t.Errorf("%q is not taken for an address in use", msg)
		}
	}
	if addrInUse(errors.New("bind: permission denied")) || addrInUse(nil) {
		t.Error("other errors taken for an address in use")
	}
}

// TestServeAPI_waitsForTheRunningAgent: a second agent on the same API
// socket waits while the first answers on it, takes it once the first has
// stopped, and the first's stop does not remove the second's socket. A
// socket file nobody answers on is replaced at once.
func TestServeAPI_waitsForTheRunningAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	var logs testutil.SyncBuffer
	first := &Agent{cfg: Config{BindTimeout: time.Minute}, log: slog.New(slog.DiscardHandler)}
	second := &Agent{cfg: Config{BindTimeout: time.Minute}, log: slog.New(slog.NewTextHandler(&logs, nil))}
	stop1, err := first.serveAPI(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		stop func()
		err  error
	}
	done := make(chan result, 1)
	go func() {
		stop, err := second.serveAPI(path)
		done <- result{stop, err}
	}()
	testutil.WaitFor(t, "the second agent to wait for the socket", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "api-socket: address in use")
	})
	stop1()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the second agent did not take the socket")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !answers(path) {
		t.Error("the second agent's socket does not answer: the first removed it on stop")
	}
	r.stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}

	// A stale socket file: replaced at once.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	start := time.Now()
	stop3, err := first.serveAPI(path)
	if err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("over a stale socket: %v after %v", err, time.Since(start))
	}
	stop3()
}

// answers reports whether something listens on the unix socket at path.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
