package vxlan_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

func TestParseMAC(t *testing.T) {
	good := []struct {
		in   string
		want vxlan.MAC
	}{
		{"02:42:0a:00:09:02", macDst},
		{"02-42-0A-00-09-02", macDst},
		{"FF:ff:Ff:fF:ff:ff", vxlan.Broadcast},
		{"00:00:00:00:00:00", vxlan.MAC{}},
		{"01:00:5e:7f:ff:fa", vxlan.MAC{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa}},
	}
	for _, tc := range good {
		got, err := vxlan.ParseMAC(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []string{
		"",
		"02:42:0a:00:09",          // too few groups
		"02:42:0a:00:09:02:03",    // too many
		"02:42:0a:00:09:0",        // short last group
		"02:42:0a:00:09:020",      // long last group
		"02:42-0a:00:09:02",       // mixed separators
		"02.42.0a.00.09.02",       // wrong separator
		"0242.0a00.0902",          // Cisco form unsupported
		"024:2:0a:00:09:02",       // misplaced separator
		"02:42:0g:00:09:02",       // non-hex
		"02:42:0a:00:09:0 ",       // space
		" 02:42:0a:00:09:02",      // leading space
		"02:42:0a:00:09:02\x00",   // trailing NUL
		"00:00:00:00:00:00:00:00", // EUI-64
	}
	for _, in := range bad {
		m, err := vxlan.ParseMAC(in)
		if err == nil {
			t.Errorf("ParseMAC(%q) = %v, want error", in, m)
			continue
		}
		if !errors.Is(err, vxlan.ErrInvalidMAC) {
			t.Errorf("ParseMAC(%q) error %v does not wrap ErrInvalidMAC", in, err)
		}
		if want := "vxlan: invalid mac address " + strconv.Quote(in); err.Error() != want {
			t.Errorf("ParseMAC(%q) error = %q, want %q", in, err, want)
		}
	}
}

func TestMACString(t *testing.T) {
	tests := []struct {
		m    vxlan.MAC
		want string
	}{
		{macDst, "02:42:0a:00:09:02"},
		{vxlan.Broadcast, "ff:ff:ff:ff:ff:ff"},
		{vxlan.MAC{}, "00:00:00:00:00:00"},
		{vxlan.MAC{0xab, 0xcd, 0xef, 0x01, 0x23, 0x45}, "ab:cd:ef:01:23:45"},
	}
	for _, tc := range tests {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		back, err := vxlan.ParseMAC(tc.want)
		if err != nil || back != tc.m {
			t.Errorf("ParseMAC(String()) = %v, %v", back, err)
		}
	}
}

func TestMACPredicates(t *testing.T) {
	tests := []struct {
		m               vxlan.MAC
		multicast, zero bool
	}{
		{vxlan.MAC{}, false, true},
		{macDst, false, false},
		{vxlan.Broadcast, true, false},
		{vxlan.MAC{0x01, 0x00, 0x5e, 0, 0, 0xfb}, true, false},
		{vxlan.MAC{0x33, 0x33, 0, 0, 0, 1}, true, false},
		{vxlan.MAC{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}, false, false}, // locally administered unicast
		{vxlan.MAC{0, 0, 0, 0, 0, 1}, false, false},
	}
	for _, tc := range tests {
		if got := tc.m.IsMulticast(); got != tc.multicast {
			t.Errorf("%v.IsMulticast() = %v", tc.m, got)
		}
		if got := tc.m.IsZero(); got != tc.zero {
			t.Errorf("%v.IsZero() = %v", tc.m, got)
		}
	}
}

func TestMulticastMAC(t *testing.T) {
	tests := []struct {
		ip   string
		want string
	}{
		{"224.0.0.251", "01:00:5e:00:00:fb"}, // mDNS
		{"239.255.255.250", "01:00:5e:7f:ff:fa"},
		{"239.128.1.2", "01:00:5e:00:01:02"}, // high bit of 2nd octet dropped
		{"::ffff:224.0.0.251", "01:00:5e:00:00:fb"},
		{"ff02::1", "33:33:00:00:00:01"},
		{"ff02::1:ff00:1234", "33:33:ff:00:12:34"},
		{"10.0.9.2", "00:00:00:00:00:00"},        // unicast
		{"255.255.255.255", "00:00:00:00:00:00"}, // broadcast is the caller's job
		{"fe80::1", "00:00:00:00:00:00"},
	}
	for _, tc := range tests {
		if got := vxlan.MulticastMAC(netip.MustParseAddr(tc.ip)).String(); got != tc.want {
			t.Errorf("MulticastMAC(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if got := vxlan.MulticastMAC(netip.Addr{}); !got.IsZero() {
		t.Errorf("MulticastMAC(invalid) = %v", got)
	}
	if m := vxlan.MulticastMAC(netip.MustParseAddr("224.0.0.1")); !m.IsMulticast() {
		t.Errorf("%v is not a group address", m)
	}
}

func TestStableMAC(t *testing.T) {
	if m := vxlan.StableMAC(netip.MustParseAddr("10.0.9.2")); m != (vxlan.MAC{2, 0x42, 10, 0, 9, 2}) {
		t.Errorf("v4: %v", m)
	}
	a, b := vxlan.StableMAC(netip.MustParseAddr("fd00::2")), vxlan.StableMAC(netip.MustParseAddr("fd00::3"))
	if a == b || a[0] != 2 || a.IsMulticast() || a != vxlan.StableMAC(netip.MustParseAddr("fd00::2")) {
		t.Errorf("v6 MACs %v %v: want distinct, stable, locally administered unicast", a, b)
	}
}

func TestMACJSON(t *testing.T) {
	type config struct {
		Gateway vxlan.MAC            `json:"gateway"`
		Peers   []vxlan.MAC          `json:"peers"`
		ByMAC   map[vxlan.MAC]string `json:"by_mac"`
		Opt     *vxlan.MAC           `json:"opt,omitempty"`
	}
	in := config{
		Gateway: macDst,
		Peers:   []vxlan.MAC{macSrc, vxlan.Broadcast},
		ByMAC:   map[vxlan.MAC]string{macSrc: "node-b"},
		Opt:     &vxlan.MAC{0x0a},
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"gateway":"02:42:0a:00:09:02","peers":["02:42:0a:00:09:03","ff:ff:ff:ff:ff:ff"],` +
		`"by_mac":{"02:42:0a:00:09:03":"node-b"},"opt":"0a:00:00:00:00:00"}`
	if string(data) != want {
		t.Errorf("json.Marshal = %s\nwant           %s", data, want)
	}
	var out config
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.Gateway != in.Gateway || len(out.Peers) != 2 || out.Peers[1] != vxlan.Broadcast ||
		out.ByMAC[macSrc] != "node-b" || out.Opt == nil || *out.Opt != *in.Opt {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}

	var m vxlan.MAC = macSrc
	err = json.Unmarshal([]byte(`"02:42:zz:00:09:02"`), &m)
	if !errors.Is(err, vxlan.ErrInvalidMAC) || !strings.Contains(err.Error(), "02:42:zz:00:09:02") {
		t.Errorf("bad JSON MAC: err = %v", err)
	}
	if m != macSrc {
		t.Errorf("failed UnmarshalText modified MAC to %v", m)
	}
	if err := json.Unmarshal([]byte(`12`), &m); err == nil {
		t.Error("JSON number accepted as MAC")
	}
}

// TestMACPlan: the three kinds of made-up MAC are unicast, locally
// administered, told apart by their second byte, and stable.
func TestMACPlan(t *testing.T) {
	ep, dh, gw := vxlan.StableMAC(netip.MustParseAddr("10.0.9.2")), vxlan.DHCPMAC("lan", "web"), vxlan.GatewayMAC(4242)
	for _, m := range []vxlan.MAC{ep, dh, gw} {
		if m[0] != 0x02 || m.IsMulticast() {
			t.Errorf("%v is not a locally administered unicast MAC", m)
		}
	}
	if ep[1] == dh[1] || dh[1] == gw[1] || ep[1] == gw[1] {
		t.Errorf("kinds share a second byte: %v %v %v", ep, dh, gw)
	}
	if dh != vxlan.DHCPMAC("lan", "web") || dh == vxlan.DHCPMAC("lan", "db") || gw != (vxlan.MAC{2, 0x76, 0x67, 0, 0x10, 0x92}) {
		t.Errorf("not stable or not distinct: %v %v", dh, gw)
	}
}
