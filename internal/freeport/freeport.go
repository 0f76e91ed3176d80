// Package freeport picks loopback ports for servers a test or a benchmark
// starts as other processes (etcd) or binds later (an agent's gossip port).
//
// A port from the kernel (bind to port 0, then close) lies in the
// ephemeral range, where any outgoing connection on the machine may take it
// before the server binds it. Ports from here lie below that range (where
// it starts above 21000, as it does by default), are free when picked, and
// are never handed out twice by one process; two processes may still pick
// the same one, rarely, so a server that cannot bind its port should be
// started again on another.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
)

// Floor is the lowest port picked.
const Floor = 20000

var (
	mu        sync.Mutex
	handedOut = map[int]bool{}
)

// EphemeralStart is the start of the kernel's ephemeral port range
// (net.ipv4.ip_local_port_range), 32768 where it cannot be read or lies
// too close to Floor.
func EphemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > Floor+1000 {
			return lo
		}
	}
	return 32768
}

// Loopback returns a port of 127.0.0.1 in [Floor, EphemeralStart()) free
// for TCP and, when udp is set, for UDP too.
func Loopback(udp bool) (int, error) {
	return pick(Floor, EphemeralStart(), udp)
}

// pick returns a port in [lo, hi) that is free and not handed out yet: a
// few random tries, then every port in turn.
func pick(lo, hi int, udp bool) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	ok := func(p int) bool { return !handedOut[p] && free(p, udp) }
	for range 50 {
		if p := lo + rand.IntN(hi-lo); ok(p) {
			handedOut[p] = true
			return p, nil
		}
	}
	for p := lo; p < hi; p++ {
		if ok(p) {
			handedOut[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port left in 127.0.0.1:%d-%d", lo, hi-1)
}

func free(p int, udp bool) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	if udp {
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}
