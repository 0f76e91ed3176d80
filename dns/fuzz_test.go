package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzHandler feeds raw datagrams to the handler's fast path, as the UDP
// loop does: it must never panic, and whatever it answers must be a valid
// DNS response to that query (same ID, QR set) that miekg can unpack.
func FuzzHandler(f *testing.F) {
	for _, q := range []*mdns.Msg{
		new(mdns.Msg).SetQuestion("api1.", mdns.TypeA),
		new(mdns.Msg).SetQuestion("many.", mdns.TypeA),
		new(mdns.Msg).SetQuestion("_http._tcp.apisvc.web.", mdns.TypeSRV),
		new(mdns.Msg).SetQuestion("3.1.0.10.in-addr.arpa.", mdns.TypePTR),
		new(mdns.Msg).SetEdns0(4096, true).SetQuestion("v4only.", mdns.TypeAAAA),
	} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Add(raw(1, 0, 2, 0, 0, 0, append(apiQuestion, apiQuestion...)...))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 2, 0, 0, 1, 0, 0, 0, 0})
	s, _ := newTestServer(f)
	s.cfg.Upstreams = nil // nothing leaves the process: unknown names get SERVFAIL
	h := s.Handler(View{Networks: []string{"web", "db", "loc"}})
	sc := newScratch()
	f.Fuzz(func(t *testing.T, q []byte) {
		for _, udp := range []bool{true, false} {
			out, act := h.answer(q, nil, udp, sc)
			if act != actReply {
				continue
			}
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("our response does not unpack: %v\nquery % x\nanswer % x", err, q, out)
			}
			if m.Id != be16(q, 0) || !m.Response {
				t.Fatalf("response id %d qr %v to query % x", m.Id, m.Response, q)
			}
			if udp && len(out) > int(s.cfg.UDPSize) && len(out) > len(q) {
				t.Fatalf("%d-byte UDP answer", len(out))
			}
		}
	})
}
