//go:build !linux

package dns

import (
	"errors"
	"net"
)

// routineServeUDP answers one datagram at a time (Linux batches them).
func (l *Listener) routineServeUDP() {
	defer l.wg.Done()
	log := l.srv.log.With("addr", l.conns.UDP.LocalAddr().String())
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
