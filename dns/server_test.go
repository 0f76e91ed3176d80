package dns

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vxnet/vxnet/internal/testutil"
)

// TestServer_Serve_udpAndTCP queries a listener on loopback over real
// sockets: the batched UDP loop, miekg's TCP server, TC then TCP retry,
// and forwarding from the UDP loop.
func TestServer_Serve_udpAndTCP(t *testing.T) {
	before := runtime.NumGoroutine()
	s, _ := newTestServer(t)
	c, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Serve(c, View{Networks: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	for _, network := range []string{"udp", "tcp"} {
		cl := &mdns.Client{Net: network, Timeout: 5 * time.Second}
		for _, q := range []struct {
			name  string
			qtype uint16
			want  string
		}{{"api1.", mdns.TypeA, "10.0.1.2"}, {"API1.web.", mdns.TypeAAAA, "fd00:1::2"}, {"example.com.", mdns.TypeA, "192.0.2.1"}} {
			r, _, err := cl.Exchange(new(mdns.Msg).SetQuestion(q.name, q.qtype), addr)
			if err != nil {
				t.Fatalf("%s %s: %v", network, q.name, err)
			}
			if len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), q.want) {
				t.Errorf("%s %s: %v, want %s", network, q.name, r.Answer, q.want)
			}
		}
		r, _, err := cl.Exchange(new(mdns.Msg).SetQuestion("many.", mdns.TypeA), addr)
		if err != nil {
			t.Fatal(err)
		}
		if network == "udp" && (!r.Truncated || len(r.Answer) == 0) {
			t.Errorf("udp: TC %v with %d answers, want truncated", r.Truncated, len(r.Answer))
		}
		if network == "tcp" && (r.Truncated || len(r.Answer) != 100) {
			t.Errorf("tcp: TC %v with %d answers, want all 100", r.Truncated, len(r.Answer))
		}
	}
	// A batch: many queries in flight at once on one socket.
	conn, err := mdns.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 64 {
		m := new(mdns.Msg).SetQuestion("apisvc.", mdns.TypeA)
		m.Id = uint16(i)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 64 {
		r, err := conn.ReadMsg()
		if err != nil || len(r.Answer) != 2 {
			t.Fatalf("batched answer: %v, %v", r, err)
		}
	}
	if st := s.Stats(); st.Queries < 70 || st.Forwarded != 2 || st.Truncated != 1 {
		t.Errorf("stats %+v", st)
	}
	l.Close()
	l.Close()
	s.Close()
	if _, err := s.Serve(Conns{UDP: c.UDP, TCP: c.TCP}, View{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}
	testutil.WaitFor(t, "listener goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before+4 })
}

func TestNew_badConfig(t *testing.T) {
	for name, c := range map[string]struct {
		cfg   Config
		field string
	}{
		"4 upstreams": {Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("192.0.2.2:53"),
			netip.MustParseAddrPort("192.0.2.3:53"), netip.MustParseAddrPort("192.0.2.4:53")}}, "upstreams"},
		"port 0":         {Config{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:0")}}, "upstreams[0]"},
		"udp size":       {Config{UDPSize: 100}, "udpSize"},
		"negative wait":  {Config{UpstreamTimeout: -1}, "upstreamTimeout"},
		"negative limit": {Config{MaxForwards: -1}, "maxForwards"},
		"negative idle":  {Config{TCPIdleTimeout: -1}, "tcpIdleTimeout"},
		"negative read":  {Config{TCPReadTimeout: -1}, "tcpReadTimeout"},
		"negative conns": {Config{MaxTCPConns: -1}, "maxTCPConns"},
		"negative per":   {Config{MaxTCPConnsPerClient: -1}, "maxTCPConnsPerClient"},
	} {
		_, err := New(c.cfg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want an error on %s", name, err, c.field)
		}
	}
}

func TestListenNetns_badPath(t *testing.T) {
	_, err := ListenNetns("/nonexistent/netns", ContainerAddr)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/netns") {
		t.Errorf("error %v, want one naming the path", err)
	}
}

// TestListener_Close_releasesUDP closes an idle listener: the UDP loop,
// asleep in the kernel on Linux, wakes and the port is free at once.
func TestListener_Close_releasesUDP(t *testing.T) {
	s, _ := newTestServer(t)
	c, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Serve(c, View{Networks: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &mdns.Client{Net: "udp", Timeout: 5 * time.Second}
	if _, _, err := cl.Exchange(new(mdns.Msg).SetQuestion("api1.", mdns.TypeA), l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	u.Close()
}
