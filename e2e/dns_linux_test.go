package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/dns/dnstest"
)

// digResult is what one dig run showed.
type digResult struct {
	status string   // NOERROR, NXDOMAIN, ...
	flags  []string // qr aa rd ra tc ...
	answer []string // "TYPE rdata", sorted
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
)

// dig runs the real dig inside ns and parses its output.
func (l *lab) dig(ns string, args ...string) digResult {
	l.t.Helper()
	out := l.in(ns, append([]string{"dig", "+time=2", "+tries=1"}, args...)...)
	var r digResult
	if m := digStatus.FindStringSubmatch(out); m != nil {
		r.status = m[1]
	}
	if m := digFlags.FindStringSubmatch(out); m != nil {
		r.flags = strings.Fields(m[1])
	}
	inAnswer := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			inAnswer = true
		case inAnswer && strings.TrimSpace(line) == "":
			inAnswer = false
		case inAnswer:
			f := strings.Fields(line)
			if len(f) >= 5 {
				r.answer = append(r.answer, f[3]+" "+strings.Join(f[4:], " "))
			}
		}
	}
	slices.Sort(r.answer)
	return r
}

// TestDNS_digInNamespace serves a container namespace on 127.0.0.11:53
// (opened inside it, resolv.conf pointing there) and asks the real dig,
// over UDP and TCP, for every kind of record; forwarding goes to an
// upstream on the host's loopback that the test runs.
func TestDNS_digInNamespace(t *testing.T) {
	l := newLab(t)
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig not found: run `make deps` (installs dnsutils)")
	}
	c1 := l.netns("c1")
	rcPath := dns.NetnsResolvConfPath(c1)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(rcPath)) })
	if err := dns.WriteResolvConf(rcPath, nil); err != nil {
		t.Fatal(err)
	}
	up, err := dnstest.StartUpstream(map[string]netip.Addr{"outside.example.": netip.MustParseAddr("192.0.2.7")})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()

	a := netip.MustParseAddr
	eps := []dns.Endpoint{
		{Name: "api1", Aliases: []string{"api"}, Service: "apisvc", Network: "web", Addrs: []netip.Addr{a("10.0.9.2"), a("fd00:9::2")}, Local: true,
			Ports: []dns.Port{{Name: "http", Proto: "tcp", Port: 8080}}},
		{Name: "api2", Service: "apisvc", Network: "web", Addrs: []netip.Addr{a("10.0.9.3"), a("fd00:9::3")},
			Ports: []dns.Port{{Name: "http", Proto: "tcp", Port: 8080}}},
		{Name: "v4only", Network: "web", Addrs: []netip.Addr{a("10.0.9.4")}, Local: true},
		{Name: "hidden", Network: "other", Addrs: []netip.Addr{a("10.0.8.2")}, Local: true},
	}
	for i := range 60 {
		eps = append(eps, dns.Endpoint{Name: fmt.Sprintf("w%d", i), Service: "wide", Network: "web", Addrs: []netip.Addr{a(fmt.Sprintf("10.0.10.%d", i+1))}})
	}
	tab, err := dns.NewTable([]dns.Network{{Name: "web", Scope: dns.ScopeGlobal}, {Name: "other", Scope: dns.ScopeGlobal}}, eps, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dns.DefaultConfig()
	cfg.Upstreams = []netip.AddrPort{up.Addr}
	s, err := dns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetRecords(tab)
	conns, err := dns.ListenNetns("/var/run/netns/"+c1, dns.ContainerAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Serve(conns, dns.View{Networks: []string{"web"}}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		args   []string
		status string
		answer []string
	}{
		{"A", []string{"api1", "A"}, "NOERROR", []string{"A 10.0.9.2"}},
		{"AAAA", []string{"API1", "AAAA"}, "NOERROR", []string{"AAAA fd00:9::2"}},
		{"alias.network", []string{"api.web", "A"}, "NOERROR", []string{"A 10.0.9.2"}},
		{"service", []string{"apisvc", "A"}, "NOERROR", []string{"A 10.0.9.2", "A 10.0.9.3"}},
		{"tasks", []string{"tasks.apisvc", "AAAA"}, "NOERROR", []string{"AAAA fd00:9::2", "AAAA fd00:9::3"}},
		{"PTR", []string{"-x", "10.0.9.3"}, "NOERROR", []string{"PTR api2.web."}},
		{"SRV", []string{"_http._tcp.apisvc", "SRV"}, "NOERROR", []string{"SRV 0 0 8080 api1.web.", "SRV 0 0 8080 api2.web."}},
		{"NODATA", []string{"v4only", "AAAA"}, "NOERROR", nil},
		{"other network", []string{"hidden", "A"}, "NXDOMAIN", nil}, // forwarded: the upstream does not know it
		{"forwarded", []string{"outside.example", "A"}, "NOERROR", []string{"A 192.0.2.7"}},
		{"NXDOMAIN", []string{"nosuchname.example", "A"}, "NXDOMAIN", nil},
	}
	for _, c := range cases {
		for _, transport := range []string{"+notcp", "+tcp"} {
			t.Run(c.name+"/"+transport[1:], func(t *testing.T) {
				// No @server: dig reads the namespace's resolv.conf.
				r := l.dig(c1, append([]string{transport}, c.args...)...)
				if r.status != c.status || !slices.Equal(r.answer, c.answer) {
					t.Errorf("dig %v: %s %q, want %s %q", c.args, r.status, r.answer, c.status, c.answer)
				}
			})
		}
	}
	t.Run("truncated over UDP, whole over TCP", func(t *testing.T) {
		r := l.dig(c1, "@127.0.0.11", "+ignore", "+noedns", "wide", "A")
		if !slices.Contains(r.flags, "tc") || len(r.answer) == 0 || len(r.answer) >= 60 {
			t.Errorf("UDP: flags %v with %d answers, want tc and some", r.flags, len(r.answer))
		}
		r = l.dig(c1, "@127.0.0.11", "+tcp", "wide", "A")
		if slices.Contains(r.flags, "tc") || len(r.answer) != 60 {
			t.Errorf("TCP: flags %v with %d answers, want all 60", r.flags, len(r.answer))
		}
		r = l.dig(c1, "+noedns", "wide", "A") // dig retries over TCP by itself
		if len(r.answer) != 60 {
			t.Errorf("UDP then TCP: %d answers, want 60", len(r.answer))
		}
	})
	t.Run("glibc resolver", func(t *testing.T) {
		l := &lab{t: t, prefix: l.prefix, dir: l.dir}
		// getaddrinfo's AI_ADDRCONFIG wants an address besides loopback:
		// give the container an eth0 (a veth whose peer stays inside it).
		l.run("ip", "-n", c1, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
		l.run("ip", "-n", c1, "addr", "add", "10.0.9.2/24", "dev", "eth0")
		l.run("ip", "-n", c1, "link", "set", "eth0", "up")
		out, err := l.tryIn(c1, "getent", "ahostsv4", "api2")
		if !strings.Contains(out, "10.0.9.3") {
			t.Errorf("getent ahostsv4 api2: %v %q", err, out)
		}
	})
}
