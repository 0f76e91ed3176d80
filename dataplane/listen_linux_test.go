package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// freeUDPPort returns a port nothing on 127.0.0.1 listens on right now.
func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func TestListen_receiveQueuesShareThePort(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	sw, err := Listen(ListenConfig{Addr: lo, Port: freeUDPPort(t), RxQueues: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if len(sw.queues) != 2 {
		t.Errorf("%d receive queues besides the underlay, want 2", len(sw.queues))
	}
}

// The agent retries a bind while its address is in use; it can tell only
// if Listen keeps the system's error.
func TestListen_portInUseKeepsTheErrno(t *testing.T) {
	cfg := ListenConfig{Addr: netip.MustParseAddr("127.0.0.1"), Port: freeUDPPort(t), RxQueues: 1}
	sw, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if sw2, err := Listen(cfg); err == nil {
		sw2.Close()
		t.Fatal("a second switch listened on the same port")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
}

func TestDefaultRxQueues(t *testing.T) {
	if n := DefaultRxQueues(); n < 1 || n > 4 {
		t.Errorf("DefaultRxQueues() = %d, want 1-4", n)
	}
}
