package dns

import (
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// MaxUpstreams is how many upstream servers a server asks at most, in order.
const MaxUpstreams = 3

// forwarder asks the upstream servers, one after the other, each with its
// own timeout, and relays the first answer that is not SERVFAIL or
// REFUSED (NXDOMAIN is an answer and is relayed as it is: moby#45553).
// When all fail the client gets SERVFAIL, after at most
// len(upstreams) × timeout (3 s with the defaults; Docker waits 4 s per
// upstream, libnetwork#2374). Sockets are opened in the agent's own
// namespace, so a host resolver on loopback (127.0.0.53) works.
type forwarder struct {
	upstreams []string // host:port
	udp, tcp  *mdns.Client
	inflight  chan struct{} // a token per query in flight
	// catchingUp is the server's (Server.SetCatchingUp).
	catchingUp *atomic.Bool
}

func newForwarder(cfg *Config) *forwarder {
	f := &forwarder{
		udp:      &mdns.Client{Net: "udp", Timeout: cfg.UpstreamTimeout, UDPSize: cfg.UDPSize},
		tcp:      &mdns.Client{Net: "tcp", Timeout: cfg.UpstreamTimeout},
		inflight: make(chan struct{}, cfg.MaxForwards),
	}
	for _, u := range cfg.Upstreams {
		f.upstreams = append(f.upstreams, u.String())
	}
	return f
}

// tryAcquire takes an in-flight token, or reports false when MaxForwards
// queries are already waiting on upstreams.
func (f *forwarder) tryAcquire() bool {
	select {
	case f.inflight <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *forwarder) release() { <-f.inflight }

// exchange forwards q (which it may modify) over TCP or UDP and returns
// the response to send, SERVFAIL if none came, nil if none is to be sent
// (a negative answer while the server catches up). limit > 0 truncates a UDP
// response to what the client takes.
func (f *forwarder) exchange(q *mdns.Msg, tcp bool, limit int, c *counters) *mdns.Msg {
	if !f.tryAcquire() {
		c.forwardFailed.Add(1)
		return servfail(q)
	}
	defer f.release()
	return f.exchangeHeld(q, tcp, limit, c)
}

func (f *forwarder) exchangeHeld(q *mdns.Msg, tcp bool, limit int, c *counters) *mdns.Msg {
	id := q.Id
	defer func() { q.Id = id }()
	cl := f.udp
	if tcp {
		cl = f.tcp
	}
	for _, u := range f.upstreams {
		q.Id = mdns.Id() // a fresh ID per upstream query; the client's is restored
		r, _, err := cl.Exchange(q, u)
		if err != nil || r.Rcode == mdns.RcodeServerFailure || r.Rcode == mdns.RcodeRefused {
			continue
		}
		if f.catchingUp != nil && f.catchingUp.Load() && (r.Rcode == mdns.RcodeNameError || r.Rcode == mdns.RcodeSuccess && len(r.Answer) == 0) {
			// The name may be one of ours this server does not know yet:
			// the client asks again rather than cache a denial.
			c.held.Add(1)
			return nil
		}
		r.Id = id
		r.Compress = true
		if limit > 0 {
			r.Truncate(limit)
		}
		return r
	}
	q.Id = id
	c.forwardFailed.Add(1)
	return servfail(q)
}

// servfail is the SERVFAIL answer to q, with an OPT if q had one.
func servfail(q *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg).SetRcode(q, mdns.RcodeServerFailure)
	m.RecursionAvailable = true
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(minUDPSize, o.Do())
	}
	return m
}

// defaultUpstreamTimeout is each upstream's time to answer.
const defaultUpstreamTimeout = time.Second
