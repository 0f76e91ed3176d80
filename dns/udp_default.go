//go:build !linux

package dns

import (
	"errors"
	"net"
	"net/netip"
)

// routineServeUDP answers one datagram at a time (Linux batches them).
func (l *Listener) routineServeUDP() {
	defer l.wg.Done()
	log := l.srv.log.With("listenAddr", l.addr.String())
	log.Debug("udp serving")
	defer log.Debug("udp stopped")
	sc := newScratch()
	in := make([]byte, udpRecvLen)
	out := make([]byte, 0, l.srv.cfg.UDPSize)
	for {
		n, from, err := l.conns.UDP.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		resp, act := l.answer(in[:n], out, true, sc)
		switch act {
		case actReply:
			l.conns.UDP.WriteToUDPAddrPort(resp, from)
		case actForward:
			l.forwardUDP(in[:n], from)
		}
		out = resp[:0]
	}
}

// udpSocket is the listener's UDP socket as the serve loop sees it; here,
// the net.UDPConn itself (Linux takes the descriptor out of the netpoller).
type udpSocket struct{}

// take keeps c as it is.
func (u *udpSocket) take(*net.UDPConn) error { return nil }

// shutdown closes c: the loop's read fails with net.ErrClosed.
func (u *udpSocket) shutdown(c *net.UDPConn) { c.Close() }

// close has nothing left to release.
func (u *udpSocket) close() {}

// writeTo sends one datagram (a forwarded answer) from any goroutine.
func (u *udpSocket) writeTo(c *net.UDPConn, b []byte, to netip.AddrPort) {
	c.WriteToUDPAddrPort(b, to)
}
