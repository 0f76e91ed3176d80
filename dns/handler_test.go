package dns

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vxnet/vxnet/dns/dnstest"
)

// rdata lists the answer section as "TYPE value" strings, sorted.
func rdata(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[3]+" "+strings.Join(f[4:], " "))
	}
	slices.Sort(out)
	return out
}

func TestHandler_ServeDNS_answers(t *testing.T) {
	s, up := newTestServer(t)
	web := View{Networks: []string{"web"}}
	type tc struct {
		view   View
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  int // additional records besides OPT
	}
	cases := map[string]tc{
		"A by name":                {web, "api1.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.1.2"}, 0},
		"AAAA by name":             {web, "api1.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"AAAA fd00:1::2"}, 0},
		"alias, any case":          {web, "aPi.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.1.2"}, 0},
		"name.network":             {web, "api1.web.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.1.2"}, 0},
		"service: all endpoints":   {web, "apisvc.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.1.2", "A 10.0.1.3"}, 0},
		"tasks.service":            {web, "tasks.apisvc.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"AAAA fd00:1::2", "AAAA fd00:1::3"}, 0},
		"PTR v4":                   {web, "3.1.0.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR api2.web."}, 0},
		"PTR v6":                   {web, mustReverse("fd00:1::2"), mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR api1.web."}, 0},
		"SRV with glue":            {web, "_http._tcp.apisvc.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV 0 0 8080 api1.web.", "SRV 0 0 8080 api2.web."}, 4},
		"ANY: A and AAAA":          {web, "api2.", mdns.TypeANY, mdns.RcodeSuccess, []string{"A 10.0.1.3", "AAAA fd00:1::3"}, 0},
		"NODATA: A but no AAAA":    {View{Networks: []string{"db"}}, "v4only.", mdns.TypeAAAA, mdns.RcodeSuccess, nil, 0},
		"NODATA: type we lack":     {web, "api1.", mdns.TypeMX, mdns.RcodeSuccess, nil, 0},
		"other network: forwarded": {web, "v4only.", mdns.TypeA, mdns.RcodeNameError, nil, 0},
		"union of two networks":    {View{Networks: []string{"web", "db"}}, "shared.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.1.9", "A 10.0.2.9"}, 0},
		"local scope: this host":   {View{Networks: []string{"loc"}}, "l1.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.3.2"}, 0},
		"local scope: other host":  {View{Networks: []string{"loc"}}, "l2.", mdns.TypeA, mdns.RcodeNameError, nil, 0},
		"forwarded upstream":       {web, "example.com.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 192.0.2.1"}, 0},
		"upstream NXDOMAIN kept":   {web, "nowhere.example.", mdns.TypeA, mdns.RcodeNameError, nil, 0},
		"internal: ours answer":    {View{Networks: []string{"intnet"}}, "secret.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.0.4.2"}, 0},
		"internal: never forwards": {View{Networks: []string{"intnet"}}, "example.com.", mdns.TypeA, mdns.RcodeNameError, nil, 0},
	}
	run := func(t *testing.T, c tc, network string, edns bool) {
		h := s.Handler(c.view)
		q := new(mdns.Msg).SetQuestion(c.name, c.qtype)
		if edns {
			q.SetEdns0(1232, false)
		}
		rec := dnstest.NewRecorder(network)
		h.ServeDNS(rec, q)
		if rec.N != 1 || rec.Err != nil {
			t.Fatalf("wrote %d responses, unpack error %v", rec.N, rec.Err)
		}
		m := rec.Msg
		if m.Id != q.Id || !m.Response || m.Rcode != c.rcode {
			t.Fatalf("id %d/%d response %v rcode %s, want rcode %s\n%v", m.Id, q.Id, m.Response, mdns.RcodeToString[m.Rcode], mdns.RcodeToString[c.rcode], m)
		}
		if got := rdata(m); !slices.Equal(got, c.answer) {
			t.Errorf("answer %q, want %q", got, c.answer)
		}
		if len(m.Question) != 1 || m.Question[0].Name != c.name {
			t.Errorf("question %v, want %s as sent", m.Question, c.name)
		}
		extra := len(m.Extra)
		if m.IsEdns0() != nil {
			extra--
		} else if edns {
			t.Errorf("no OPT in the answer to an EDNS0 query")
		}
		if extra != c.extra {
			t.Errorf("%d additional records, want %d", extra, c.extra)
		}
	}
	for name, c := range cases {
		for _, network := range []string{"udp", "tcp"} {
			for _, edns := range []bool{false, true} {
				t.Run(name+"/"+network+map[bool]string{true: "/edns"}[edns], func(t *testing.T) { run(t, c, network, edns) })
			}
		}
	}
	if up.Queries() == 0 {
		t.Error("nothing reached the upstream")
	}
}

func mustReverse(a string) string {
	r, err := mdns.ReverseAddr(a)
	if err != nil {
		panic(err)
	}
	return r
}

func TestHandler_ServeDNS_internalNeverForwards(t *testing.T) {
	s, up := newTestServer(t)
	h := s.Handler(View{Networks: []string{"intnet"}})
	for _, n := range []string{"example.com.", "api1.", "x."} {
		rec := dnstest.NewRecorder("udp")
		h.ServeDNS(rec, new(mdns.Msg).SetQuestion(n, mdns.TypeA))
		if rec.Msg.Rcode != mdns.RcodeNameError || rec.Msg.RecursionAvailable {
			t.Errorf("%s: rcode %s RA %v, want NXDOMAIN without RA", n, mdns.RcodeToString[rec.Msg.Rcode], rec.Msg.RecursionAvailable)
		}
	}
	if up.Queries() != 0 {
		t.Errorf("an internal network forwarded %d queries", up.Queries())
	}
}

func TestHandler_ServeDNS_serviceShuffled(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler(View{Networks: []string{"web"}})
	firsts := map[string]bool{}
	for range 200 {
		rec := dnstest.NewRecorder("tcp")
		h.ServeDNS(rec, new(mdns.Msg).SetQuestion("many.", mdns.TypeA))
		if len(rec.Msg.Answer) != 100 {
			t.Fatalf("%d answers, want 100", len(rec.Msg.Answer))
		}
		firsts[rec.Msg.Answer[0].String()] = true
	}
	if len(firsts) < 20 {
		t.Errorf("only %d different first answers in 200 queries: not shuffled", len(firsts))
	}
	rec := dnstest.NewRecorder("tcp")
	h.ServeDNS(rec, new(mdns.Msg).SetQuestion("tasks.many.", mdns.TypeA))
	if !strings.HasSuffix(rec.Msg.Answer[0].String(), "10.0.5.1") {
		t.Errorf("tasks. answer not in address order: %v", rec.Msg.Answer[0])
	}
}

func TestHandler_ServeDNS_truncatedOverUDP(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler(View{Networks: []string{"web"}})
	for _, c := range []struct {
		network string
		edns    uint16
		tc      bool
		max     int
	}{{"udp", 0, true, 512}, {"udp", 1232, true, 1232}, {"udp", 4096, true, 1232}, {"tcp", 0, false, 65535}} {
		q := new(mdns.Msg).SetQuestion("many.", mdns.TypeA)
		if c.edns > 0 {
			q.SetEdns0(c.edns, false)
		}
		rec := dnstest.NewRecorder(c.network)
		h.ServeDNS(rec, q)
		m := rec.Msg
		if m.Truncated != c.tc || len(rec.Raw) > c.max {
			t.Errorf("%s edns %d: TC %v with %d bytes, want TC %v, at most %d", c.network, c.edns, m.Truncated, len(rec.Raw), c.tc, c.max)
		}
		if !c.tc && len(m.Answer) != 100 && c.network == "tcp" {
			t.Errorf("tcp: %d answers, want 100", len(m.Answer))
		}
		if c.tc && len(m.Answer) == 0 {
			t.Errorf("%s edns %d: truncated to nothing", c.network, c.edns)
		}
	}
}

// raw builds a query by hand, for what miekg would refuse to pack.
func raw(id uint16, flags uint16, qd, an, ns, ar uint16, rest ...byte) []byte {
	b := make([]byte, 12, 12+len(rest))
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return append(b, rest...)
}

var apiQuestion = []byte{4, 'a', 'p', 'i', '1', 0, 0, 1, 0, 1}

func TestHandler_answer_malformed(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler(View{Networks: []string{"web"}})
	opt := func(ver byte, rdlen uint16, extra ...byte) []byte {
		return append([]byte{0, 0, 41, 4, 0, 0, ver, 0, 0, byte(rdlen >> 8), byte(rdlen)}, extra...)
	}
	cases := map[string]struct {
		q     []byte
		drop  bool
		rcode int
	}{
		"empty":              {q: nil, drop: true},
		"runt":               {q: []byte{1, 2, 3}, drop: true},
		"a response":         {q: raw(1, 0x8000, 1, 0, 0, 0, apiQuestion...), drop: true},
		"two questions":      {q: raw(1, 0, 2, 0, 0, 0, append(apiQuestion, apiQuestion...)...), rcode: rcodeFormErr},
		"no question":        {q: raw(1, 0, 0, 0, 0, 0), rcode: rcodeFormErr},
		"answer in query":    {q: raw(1, 0, 1, 1, 0, 0, apiQuestion...), rcode: rcodeFormErr},
		"short question":     {q: raw(1, 0, 1, 0, 0, 0, 4, 'a', 'p'), rcode: rcodeFormErr},
		"no type":            {q: raw(1, 0, 1, 0, 0, 0, 4, 'a', 'p', 'i', '1', 0, 0), rcode: rcodeFormErr},
		"compression ptr":    {q: raw(1, 0, 1, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1), rcode: rcodeFormErr},
		"label too long":     {q: raw(1, 0, 1, 0, 0, 0, 64), rcode: rcodeFormErr},
		"update opcode":      {q: raw(1, 5<<11, 1, 0, 0, 0, apiQuestion...), rcode: rcodeNotImp},
		"bad OPT":            {q: raw(1, 0, 1, 0, 0, 1, append(apiQuestion, 0, 0, 1)...), rcode: rcodeFormErr},
		"OPT rdlen too long": {q: raw(1, 0, 1, 0, 0, 1, append(apiQuestion, opt(0, 4)...)...), rcode: rcodeFormErr},
		"OPT with cookie":    {q: raw(1, 0, 1, 0, 0, 1, append(apiQuestion, opt(0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8)...)...), rcode: rcodeSuccess},
		"EDNS version 1":     {q: raw(1, 0, 1, 0, 0, 1, append(apiQuestion, opt(1, 0)...)...), rcode: 16},
		"trailing garbage":   {q: raw(1, 0, 1, 0, 0, 0, append(apiQuestion, 9, 9)...), rcode: rcodeSuccess},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, act := h.answer(c.q, nil, true, newScratch())
			if c.drop {
				if act != actDrop {
					t.Fatalf("action %d, want drop", act)
				}
				return
			}
			m := new(mdns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("unpacking our response: %v (% x)", err, out)
			}
			if m.Rcode != c.rcode || m.Id != 1 || !m.Response {
				t.Errorf("rcode %d id %d qr %v, want rcode %d", m.Rcode, m.Id, m.Response, c.rcode)
			}
		})
	}
}

func TestForwarder_allUpstreamsFail_servfailPromptly(t *testing.T) {
	up, err := dnstest.StartUpstream(nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := up.Addr // closed below: connection refused
	up.Close()
	blackhole, err := Listen(netip.MustParseAddrPort("127.0.0.1:0")) // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []netip.AddrPort{dead, blackhole.UDP.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()}
	cfg.UpstreamTimeout = 200 * time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetRecords(fixtureTable(t))
	h := s.Handler(View{Networks: []string{"web"}})
	start := time.Now()
	rec := dnstest.NewRecorder("udp")
	h.ServeDNS(rec, new(mdns.Msg).SetQuestion("example.com.", mdns.TypeA))
	if took := time.Since(start); rec.Msg.Rcode != mdns.RcodeServerFailure || took > 2*time.Second {
		t.Errorf("rcode %s after %v, want SERVFAIL within 2 s", mdns.RcodeToString[rec.Msg.Rcode], took)
	}
	if st := h.Stats(); st.ForwardFailed != 1 || st.Forwarded != 1 {
		t.Errorf("stats %+v, want 1 forwarded and 1 failed", st)
	}
}

func TestHandler_ServeDNS_noRecordsYet_servfail(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Upstreams = nil
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler(View{Networks: []string{"web"}})
	rec := dnstest.NewRecorder("udp")
	h.ServeDNS(rec, new(mdns.Msg).SetQuestion("api1.", mdns.TypeA))
	if rec.Msg.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode %s before any records, want SERVFAIL", mdns.RcodeToString[rec.Msg.Rcode])
	}
	s.SetRecords(fixtureTable(t))
	h.ServeDNS(rec, new(mdns.Msg).SetQuestion("api1.", mdns.TypeA))
	if rdata(rec.Msg)[0] != "A 10.0.1.2" {
		t.Errorf("after SetRecords: %v", rec.Msg)
	}
}

// TestHandler_catchingUp_missesHeld: while the server catches up, a name
// it does not know gets no answer at all (an internal network's NXDOMAIN
// is held; a forwarded name's denial from upstream is held), counted as
// held; a known name is answered, and an upstream's positive answer
// passes; once caught up, denials are answered again.
func TestHandler_catchingUp_missesHeld(t *testing.T) {
	s, up := newTestServer(t)
	h := s.Handler(View{Networks: []string{"intnet"}})
	ext := s.Handler(View{Networks: []string{"web"}})
	s.SetCatchingUp(true)
	for _, hh := range []*Handler{h, ext} {
		rec := dnstest.NewRecorder("udp")
		hh.ServeDNS(rec, new(mdns.Msg).SetQuestion("nobody.", mdns.TypeA))
		if rec.Msg != nil {
			t.Errorf("a miss while catching up was answered: %v", rec.Msg)
		}
	}
	if st, se := h.Stats(), ext.Stats(); st.Held != 1 || st.NXDomain != 0 || se.Held != 1 {
		t.Errorf("stats %+v %+v, want 1 held each", st, se)
	}
	rec := dnstest.NewRecorder("udp")
	ext.ServeDNS(rec, new(mdns.Msg).SetQuestion("api1.", mdns.TypeA))
	if rec.Msg == nil || len(rdata(rec.Msg)) == 0 || rdata(rec.Msg)[0] != "A 10.0.1.2" {
		t.Errorf("a known name while catching up: %v", rec.Msg)
	}
	// A name the upstream knows passes.
	rec = dnstest.NewRecorder("udp")
	ext.ServeDNS(rec, new(mdns.Msg).SetQuestion("example.com.", mdns.TypeA))
	if rec.Msg == nil || rec.Msg.Rcode != mdns.RcodeSuccess || len(rec.Msg.Answer) == 0 {
		t.Errorf("an outside name while catching up: %v (%d forwarded)", rec.Msg, up.Queries())
	}
	s.SetCatchingUp(false)
	rec = dnstest.NewRecorder("udp")
	h.ServeDNS(rec, new(mdns.Msg).SetQuestion("nobody.", mdns.TypeA))
	if rec.Msg == nil || rec.Msg.Rcode != mdns.RcodeNameError {
		t.Errorf("a miss once caught up: %v, want NXDOMAIN", rec.Msg)
	}
	rec = dnstest.NewRecorder("udp")
	ext.ServeDNS(rec, new(mdns.Msg).SetQuestion("nobody.", mdns.TypeA))
	if rec.Msg == nil || rec.Msg.Rcode != mdns.RcodeNameError {
		t.Errorf("a forwarded miss once caught up: %v, want the upstream's NXDOMAIN", rec.Msg)
	}
}

func TestHandler_answer_zeroAllocs(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler(View{Networks: []string{"web", "db"}})
	sc := newScratch()
	out := make([]byte, 0, 1232)
	for name, q := range map[string][]byte{
		"hit":      raw(7, 0x0100, 1, 0, 0, 0, apiQuestion...),
		"service":  raw(7, 0x0100, 1, 0, 0, 0, 6, 'a', 'p', 'i', 's', 'v', 'c', 0, 0, 1, 0, 1),
		"nodata":   raw(7, 0x0100, 1, 0, 0, 0, 6, 'v', '4', 'o', 'n', 'l', 'y', 0, 0, 28, 0, 1),
		"formerr":  raw(7, 0x0100, 2, 0, 0, 0),
		"truncate": raw(7, 0x0100, 1, 0, 0, 0, 4, 'm', 'a', 'n', 'y', 0, 0, 1, 0, 1),
	} {
		if n := testing.AllocsPerRun(100, func() { out, _ = h.answer(q, out[:0], true, sc) }); n != 0 {
			t.Errorf("%s: %v allocations per answer, want 0", name, n)
		}
	}
	// A miss held while the server catches up (an internal network: a
	// forwarding one's misses go to the forwarder).
	s.SetCatchingUp(true)
	hi := s.Handler(View{Networks: []string{"intnet"}})
	miss := raw(7, 0x0100, 1, 0, 0, 0, 6, 'n', 'o', 'b', 'o', 'd', 'y', 0, 0, 1, 0, 1)
	var act action
	if n := testing.AllocsPerRun(100, func() { out, act = hi.answer(miss, out[:0], true, sc) }); n != 0 || act != actDrop {
		t.Errorf("held miss: %v allocations, action %v; want 0 and a drop", n, act)
	}
}

func BenchmarkHandler(b *testing.B) {
	s, _ := newTestServer(b)
	h := s.Handler(View{Networks: []string{"web"}})
	for name, q := range map[string]*mdns.Msg{
		"A":       new(mdns.Msg).SetQuestion("api1.", mdns.TypeA),
		"service": new(mdns.Msg).SetQuestion("apisvc.", mdns.TypeA),
		"NODATA":  new(mdns.Msg).SetQuestion("api1.", mdns.TypeMX),
	} {
		wire, _ := q.Pack()
		b.Run("answer/"+name, func(b *testing.B) {
			sc, out := newScratch(), make([]byte, 0, 1232)
			b.ReportAllocs()
			for b.Loop() {
				out, _ = h.answer(wire, out[:0], true, sc)
			}
		})
		b.Run("ServeDNS/"+name, func(b *testing.B) {
			rec := dnstest.NewRecorder("udp")
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(nopWriter{rec}, q)
			}
		})
	}
}

// nopWriter drops what is written, to time ServeDNS alone.
type nopWriter struct{ *dnstest.Recorder }

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
