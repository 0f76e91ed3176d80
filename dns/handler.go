package dns

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	mdns "github.com/miekg/dns"
)

// View is what one client (one container) may see: the networks it is
// attached to. Names are answered from these networks only; unknown names
// are forwarded if at least one of them is known and not internal.
type View struct {
	Networks []string
}

// binding is a view resolved against one Records snapshot. Immutable;
// rebuilt when either changes, loaded once per query.
type binding struct {
	rec     Records  // nil until the first SetRecords
	nets    []string // lower case
	forward bool     // unknown names go upstream
	nxRcode int      // otherwise they get this
	ra      bool     // recursion available (the RA flag)
}

func bind(rec Records, v View, haveUpstreams bool) *binding {
	b := &binding{rec: rec, nxRcode: rcodeServFail}
	known, external := false, false
	for _, n := range v.Networks {
		n = strings.ToLower(n)
		b.nets = append(b.nets, n)
		if rec == nil {
			continue
		}
		if nw, ok := rec.Network(n); ok {
			known = true
			external = external || !nw.Internal
		}
	}
	switch {
	case external && haveUpstreams:
		b.forward, b.ra = true, true
	case external:
		b.nxRcode = rcodeServFail // would forward, but there is no upstream
	case known:
		b.nxRcode = rcodeNXDomain // internal: nothing else exists
	}
	return b
}

// HandlerStats counts what one handler did. All fields only grow.
type HandlerStats struct {
	Queries       uint64 // well-formed queries answered locally or forwarded
	NXDomain      uint64 // local negative answers (NXDOMAIN)
	Forwarded     uint64 // sent to the upstream servers
	ForwardFailed uint64 // all upstreams failed, or too many in flight: SERVFAIL
	Malformed     uint64 // answered FORMERR or NOTIMP, or dropped
	Truncated     uint64 // answered with TC over UDP
	TCPRefused    uint64 // TCP connections closed at once: past a cap (limit.go)
	// Held are queries for names not (yet) known, left unanswered while
	// the server catches up (Server.SetCatchingUp): the client asks again.
	Held uint64
}

func (s *HandlerStats) add(o *HandlerStats) {
	s.Queries += o.Queries
	s.NXDomain += o.NXDomain
	s.Forwarded += o.Forwarded
	s.ForwardFailed += o.ForwardFailed
	s.Malformed += o.Malformed
	s.Truncated += o.Truncated
	s.TCPRefused += o.TCPRefused
	s.Held += o.Held
}

type counters struct {
	queries, nxdomain, forwarded, forwardFailed, malformed, truncated, tcpRefused, held atomic.Uint64
}

// Handler answers the queries of one view. It implements miekg's
// dns.Handler (the TCP transport and tests use it that way); the UDP fast
// path calls answer on the raw bytes. Safe for concurrent use.
type Handler struct {
	srv   *Server
	b     atomic.Pointer[binding]
	view  View // guarded by srv.mu
	count counters
}

var _ mdns.Handler = (*Handler)(nil)

// SetView changes the networks the handler answers from.
func (h *Handler) SetView(v View) {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	h.view = View{Networks: append([]string(nil), v.Networks...)}
	h.b.Store(bind(h.srv.records(), h.view, len(h.srv.cfg.Upstreams) > 0))
}

// Stats returns the handler's counters.
func (h *Handler) Stats() HandlerStats {
	return HandlerStats{
		Queries: h.count.queries.Load(), NXDomain: h.count.nxdomain.Load(),
		Forwarded: h.count.forwarded.Load(), ForwardFailed: h.count.forwardFailed.Load(),
		Malformed: h.count.malformed.Load(), Truncated: h.count.truncated.Load(),
		TCPRefused: h.count.tcpRefused.Load(), Held: h.count.held.Load(),
	}
}

// answer builds the response to the raw query q into out (whose capacity
// is reused; the result aliases it) and says what to do with it. udp is
// true for UDP, where the response is limited to the client's payload
// size. sc is the caller's scratch. answer never panics on any input.
func (h *Handler) answer(q, out []byte, udp bool, sc *scratch) ([]byte, action) {
	b := h.b.Load()
	qs, rcode, drop := parseQuestion(q, sc)
	if drop {
		h.count.malformed.Add(1)
		return out, actDrop
	}
	if rcode != rcodeSuccess {
		h.count.malformed.Add(1)
		return errorResp(out, q, &qs, rcode, b.ra), actReply
	}
	size := h.srv.cfg.UDPSize
	if qs.edns && qs.ednsVers != 0 {
		out = respHeader(out, q, qs.qEnd, rcodeSuccess, false, b.ra)
		out = appendOPT(out, &qs, size)
		out[len(out)-optLen+5] = 1 // extended RCODE 16: BADVERS (RFC 6891 6.1.3)
		return out, actReply
	}
	h.count.queries.Add(1)
	limit := maxMsgLen
	if udp {
		limit = minUDPSize
		if qs.edns && qs.udpSize > minUDPSize {
			limit = int(min(qs.udpSize, size))
		}
	}
	var sets []*RRSet
	exists := false
	if qs.nameOK && b.rec != nil && (qs.qclass == classINET || qs.qclass == mdns.ClassANY) {
		// The name is in sc.name, which Lookup must not retain.
		sets, exists = b.rec.Lookup(b.nets, unsafe.String(&qs.name[0], len(qs.name)), qs.qtype, sc.sets[:0])
	}
	if !exists {
		if b.forward {
			// While catching up the forwarder keeps a negative answer back.
			h.count.forwarded.Add(1)
			return out, actForward
		}
		if h.srv.catchingUp.Load() {
			// The name may exist where this server has not looked yet: no
			// answer beats a wrong one that the client would cache.
			h.count.held.Add(1)
			return out, actDrop
		}
		if b.nxRcode == rcodeNXDomain {
			h.count.nxdomain.Add(1)
		} else {
			h.count.forwardFailed.Add(1)
		}
		out = respHeader(out, q, qs.qEnd, b.nxRcode, b.nxRcode == rcodeNXDomain, b.ra)
		return appendOPT(out, &qs, size), actReply
	}
	reserve := 0
	if qs.edns {
		reserve = optLen
	}
	out = respHeader(out, q, qs.qEnd, rcodeSuccess, true, b.ra)
	out, whole := appendSets(out, sets, limit, reserve, sc)
	if whole {
		out = appendExtra(out, sets, limit, reserve)
	} else {
		out[offsetFlags] |= flagTC
		h.count.truncated.Add(1)
	}
	return appendOPT(out, &qs, size), actReply
}

// tcpScratch is the working memory of one ServeDNS call.
type tcpScratch struct {
	sc     *scratch
	q, out []byte
}

var tcpPool = sync.Pool{New: func() any {
	return &tcpScratch{sc: newScratch(), q: make([]byte, 0, 512), out: make([]byte, 0, 4096)}
}}

// ServeDNS implements mdns.Handler.
func (h *Handler) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	udp := true
	if a := w.LocalAddr(); a != nil {
		_, isTCP := a.(*net.TCPAddr)
		udp = !isTCP && a.Network() != "tcp"
	}
	ts := tcpPool.Get().(*tcpScratch)
	defer tcpPool.Put(ts)
	q, err := r.PackBuffer(ts.q[:cap(ts.q)])
	if err != nil {
		h.count.malformed.Add(1)
		m := new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	ts.q = q[:0]
	out, act := h.answer(q, ts.out, udp, ts.sc)
	ts.out = out[:0]
	switch act {
	case actReply:
		w.Write(out)
	case actForward:
		limit := 0
		if udp {
			limit = udpLimit(r, h.srv.cfg.UDPSize)
		}
		if m := h.srv.fwd.exchange(r, !udp, limit, &h.count); m != nil {
			w.WriteMsg(m)
		}
	}
}

// udpLimit is the largest UDP response the client of r takes.
func udpLimit(r *mdns.Msg, ours uint16) int {
	if o := r.IsEdns0(); o != nil && o.UDPSize() > minUDPSize {
		return int(min(o.UDPSize(), ours))
	}
	return minUDPSize
}
