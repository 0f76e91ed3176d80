// Package dnstest has test helpers for package dns: a response recorder
// for handler table tests, and a tiny upstream server on loopback.
package dnstest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/miekg/dns"
)

// Recorder is a dns.ResponseWriter that keeps what the handler wrote.
// Net "tcp" makes it look like a TCP connection; anything else is UDP.
type Recorder struct {
	Net string
	Msg *dns.Msg // the last response, unpacked
	Raw []byte   // and as written
	Err error    // unpacking Raw failed
	N   int      // responses written
}

var _ dns.ResponseWriter = (*Recorder)(nil)

// NewRecorder returns a recorder for network "udp" or "tcp".
func NewRecorder(network string) *Recorder { return &Recorder{Net: network} }

// LocalAddr implements dns.ResponseWriter.
func (r *Recorder) LocalAddr() net.Addr {
	if r.Net == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
}

// RemoteAddr implements dns.ResponseWriter.
func (r *Recorder) RemoteAddr() net.Addr {
	if r.Net == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// WriteMsg implements dns.ResponseWriter.
func (r *Recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}

// Write implements dns.ResponseWriter.
func (r *Recorder) Write(b []byte) (int, error) {
	r.N++
	r.Raw = append([]byte(nil), b...)
	r.Msg = new(dns.Msg)
	r.Err = r.Msg.Unpack(r.Raw)
	return len(b), nil
}

// Close implements dns.ResponseWriter.
func (r *Recorder) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter.
func (r *Recorder) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (r *Recorder) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (r *Recorder) Hijack() {}

// Upstream is a DNS server on loopback for forwarding tests: it answers
// A queries for the names in Answers, NXDOMAIN for the rest, and counts.
type Upstream struct {
	Addr    netip.AddrPort
	udp     *dns.Server
	tcp     *dns.Server
	mu      sync.Mutex
	answers map[string]netip.Addr
	queries int
}

// StartUpstream listens on 127.0.0.1, a free port, UDP and TCP.
func StartUpstream(answers map[string]netip.Addr) (*Upstream, error) {
	var pc net.PacketConn
	var ln net.Listener
	for tries := 1; ; tries++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if !errors.Is(err, syscall.EADDRINUSE) || tries == 10 {
			return nil, err
		}
		// The UDP port the kernel picked is taken for TCP (tests of
		// other packages run at once): another.
	}
	u := &Upstream{Addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), answers: answers}
	var wg sync.WaitGroup
	wg.Add(2)
	u.udp = &dns.Server{PacketConn: pc, Handler: u, NotifyStartedFunc: wg.Done}
	u.tcp = &dns.Server{Listener: ln, Handler: u, NotifyStartedFunc: wg.Done}
	go u.udp.ActivateAndServe()
	go u.tcp.ActivateAndServe()
	wg.Wait()
	return u, nil
}

// ServeDNS implements dns.Handler.
func (u *Upstream) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	u.mu.Lock()
	u.queries++
	u.mu.Unlock()
	m := new(dns.Msg).SetReply(q)
	m.RecursionAvailable = true
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	a, ok := u.answers[dns.CanonicalName(q.Question[0].Name)]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Question[0].Qtype == dns.TypeA && a.Is4():
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
	}
	w.WriteMsg(m)
}

// Queries is how many queries the upstream got.
func (u *Upstream) Queries() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queries
}

// Close stops the upstream.
func (u *Upstream) Close() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}
