package freeport

import (
	"net"
	"strconv"
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
