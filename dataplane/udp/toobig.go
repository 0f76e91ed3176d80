package udp

import (
	"net/netip"
	"sync"
)

// tooBigLog keeps the destinations of datagrams dropped as too big for
// their path until the caller asks (Conn.TooBig, Conn.TooBigDestinations).
// The send path only ever tries its lock: a destination missed while the
// caller reads is noted again by the next datagram that fails.
type tooBigLog struct {
	mu    sync.Mutex
	dests [8]netip.Addr
	n     int
	ready chan struct{} // capacity 1: something is kept
}

func newTooBigLog() tooBigLog { return tooBigLog{ready: make(chan struct{}, 1)} }

// note keeps a (if there is room and it is not kept yet) and signals.
func (l *tooBigLog) note(a netip.Addr) {
	if !a.IsValid() || !l.mu.TryLock() {
		return
	}
	kept := false
	for _, d := range l.dests[:l.n] {
		kept = kept || d == a
	}
	if !kept && l.n < len(l.dests) {
		l.dests[l.n] = a
		l.n++
	}
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// take returns the kept destinations and forgets them.
func (l *tooBigLog) take() []netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]netip.Addr(nil), l.dests[:l.n]...)
	l.n = 0
	return out
}

// TooBig returns a channel that receives after a datagram was dropped as
// too big for the path to its destination (Stats.TxTooBig);
// TooBigDestinations then says where to.
func (c *Conn) TooBig() <-chan struct{} { return c.tooBig.ready }

// TooBigDestinations returns the destination addresses of the datagrams
// dropped as too big since the last call (at most 8), and forgets them.
func (c *Conn) TooBigDestinations() []netip.Addr { return c.tooBig.take() }
