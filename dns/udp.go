package dns

import (
	"net/netip"

	mdns "github.com/miekg/dns"
)

// forwardUDP asks the upstreams for q on a goroutine of its own and sends
// the answer to client. q is borrowed only for this call (it is unpacked
// before return).
func (l *Listener) forwardUDP(q []byte, client netip.AddrPort) {
	m := new(mdns.Msg)
	if err := m.Unpack(q); err != nil {
		m = new(mdns.Msg) // our parser took it, miekg did not: send an empty SERVFAIL
		m.Id = be16(q, 0)
		m.Response, m.Rcode = true, mdns.RcodeServerFailure
		l.sendUDP(m, client)
		return
	}
	f := l.srv.fwd
	if !f.tryAcquire() {
		l.count.forwardFailed.Add(1)
		l.sendUDP(servfail(m), client)
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer f.release()
		if r := f.exchangeHeld(m, false, udpLimit(m, l.srv.cfg.UDPSize), &l.count); r != nil {
			l.sendUDP(r, client)
		}
	}()
}

func (l *Listener) sendUDP(m *mdns.Msg, to netip.AddrPort) {
	b, err := m.Pack()
	if err != nil {
		l.srv.log.Warn("packing a forwarded answer", "error", err)
		return
	}
	l.udp.writeTo(l.conns.UDP, b, to)
}
