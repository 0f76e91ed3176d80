package freeport

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// Ports handed out lie below the ephemeral range, are free when handed
// out, and are never handed out twice by one process.
func TestFreePort_belowEphemeralAndDistinct(t *testing.T) {
	top := EphemeralStart()
	seen := map[int]bool{}
	for range 50 {
		p, err := Loopback(true)
		if err != nil {
			t.Fatal(err)
		}
		if p < Floor || p >= top {
			t.Fatalf("port %d outside [%d, %d)", p, Floor, top)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out but not free: %v", p, err)
		}
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d handed out but not free for UDP: %v", p, err)
		}
		u.Close()
	}
}

// TestPick_eachPortOnce: in a small range, ports are handed out once each
// until the range is reported exhausted, naming it, and by then no port of
// the range is left both free and not handed out. Another process may hold
// one for a moment (packages' tests run in parallel, and pick itself
// probes a port by binding it): a port found free after an exhaustion must
// be handed out by a later pick.
func TestPick_eachPortOnce(t *testing.T) {
	const lo, hi = 29950, 29958 // a range no other test of this package uses
	mu.Lock()
	for p := lo; p < hi; p++ {
		delete(handedOut, p) // as if new: the test may run again in this process
	}
	mu.Unlock()
	seen := map[int]bool{}
	drain := func() {
		for {
			p, err := pick(lo, hi, true)
			if err != nil {
				if !strings.Contains(err.Error(), "127.0.0.1:29950-29957") {
					t.Errorf("error %q does not name the range", err)
				}
				return
			}
			if p < lo || p >= hi || seen[p] {
				t.Fatalf("port %d: outside [%d, %d) or handed out twice (%v)", p, lo, hi, seen)
			}
			seen[p] = true
		}
	}
	for try := 1; ; try++ {
		drain()
		var left []int
		for p := lo; p < hi; p++ {
			if !seen[p] && free(p, true) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		if try == 5 {
			t.Fatalf("ports %v are free, and pick gave up five times without them", left)
		}
	}
}
