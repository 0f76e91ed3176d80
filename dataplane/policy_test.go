package dataplane

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPolicy_allows(t *testing.T) {
	deny, err := ParsePolicyRules("10.0.9.3:5201/tcp, 10.0.8.0/24, fd00:9::/64:53", false)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := ParsePolicyRules("10.0.8.7", true)
	if err != nil {
		t.Fatal(err)
	}
	// Allow rules first: they carve holes in the deny rules.
	p := compilePolicy(&Policy{Rules: append(allow, deny...), Default: true})
	for _, tc := range []struct {
		pkt  []byte
		want bool
	}{
		{tcpPacketTo("10.0.9.3", 5201), false},
		{tcpPacketTo("10.0.9.3", 80), true},
		{ipv4UDP(ip1, netip.MustParseAddr("10.0.9.3"), 1, 5201, nil), true}, // tcp only
		{ipv4UDP(ip1, netip.MustParseAddr("10.0.8.9"), 1, 9, nil), false},
		{ipv4UDP(ip1, netip.MustParseAddr("10.0.8.7"), 1, 9, nil), true},
		{ipv6UDP(ip6a, netip.MustParseAddr("fd00:9::3"), nil), true}, // port 2 (helper), not 53
		{ipv4UDP(ip1, netip.MustParseAddr("10.0.7.1"), 1, 9, nil), true},
	} {
		info, ok := parseIP(tc.pkt)
		if !ok {
			t.Fatal("bad test packet")
		}
		if got := p.allows(tc.pkt, &info); got != tc.want {
			t.Errorf("packet to %v: allows %v, want %v", info.dst, got, tc.want)
		}
	}
	// A fragment's ports cannot be read: deny rules with ports match it,
	// allow rules with ports do not.
	frag := tcpPacketTo("10.0.9.3", 5201)
	frag[6] |= 0x20 // more fragments
	info, _ := parseIP(frag)
	if p.allows(frag, &info) {
		t.Error("a first fragment got past 'deny 10.0.9.3:5201/tcp'")
	}
	allowPort, _ := ParsePolicyRules("10.0.9.3:5201/tcp", true)
	if compilePolicy(&Policy{Rules: allowPort, Default: false}).allows(frag, &info) {
		t.Error("a fragment was let through by an allow rule on a port it may not have")
	}
	other, _ := ParsePolicyRules("10.0.7.0/24", true)
	pkt := tcpPacketTo("10.0.9.3", 1)
	pi, _ := parseIP(pkt)
	if compilePolicy(&Policy{Rules: other, Default: false}).allows(pkt, &pi) {
		t.Error("default deny allowed a packet no rule matches")
	}
	if !compilePolicy(&Policy{Rules: other, Default: true}).allows(pkt, &pi) {
		t.Error("default allow refused a packet no rule matches")
	}
}

func TestParsePolicyRules_errors(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.9.3:0":    `port "0"`,
		"10.0.9.300":    `address "10.0.9.300"`,
		"10.0.9.0/33":   `address "10.0.9.0/33"`,
		"host:80/tcp":   `address "host"`,
		"10.0.9.3:http": `port "http"`,
		"[fd00::3:22":   "want [IPV6]:PORT",
		"[fd00::3]22":   "want [IPV6]:PORT",
		"[fd00::3]:0":   `port "0"`,
		"[fd00::zz]:22": `address "fd00::zz"`,
	} {
		if _, err := ParsePolicyRules(in, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicyRules(%q): %v, want an error naming %s", in, err, want)
		}
	}
}

func tcpPacketTo(dst string, port uint16) []byte {
	p := tcpPacket([]byte("x"))
	copy(p[16:20], netip.MustParseAddr(dst).AsSlice())
	p[22], p[23] = byte(port>>8), byte(port)
	return p
}

// TestParsePolicyRules_ipv6Ports: an IPv6 address or prefix takes a port
// in brackets, as in a URL, or written as a prefix; without either, the
// whole is the address.
func TestParsePolicyRules_ipv6Ports(t *testing.T) {
	for in, want := range map[string]PolicyRule{
		"[fd00:72::/64]:22/tcp": {Dst: netip.MustParsePrefix("fd00:72::/64"), Port: 22, Proto: "tcp"},
		"[fd00:72::5]:80":       {Dst: netip.MustParsePrefix("fd00:72::5/128"), Port: 80},
		"[fd00:72::5]":          {Dst: netip.MustParsePrefix("fd00:72::5/128")},
		"fd00:72::5/128:80":     {Dst: netip.MustParsePrefix("fd00:72::5/128"), Port: 80},
		"fd00:72::5:22":         {Dst: netip.MustParsePrefix("fd00:72::5:22/128")},
	} {
		got, err := ParsePolicyRules(in, true)
		want.Allow = true
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("ParsePolicyRules(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
