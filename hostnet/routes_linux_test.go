package hostnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// route4 is a /proc/net/route line as this machine's kernel prints it.
func route4(dev, dst, mask string) string {
	h := func(s string) string {
		a := netip.MustParseAddr(s).As4()
		return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[:]))
	}
	return fmt.Sprintf("%s\t%s\t00000000\t0001\t0\t0\t0\t%s\t0\t0\t0", dev, h(dst), h(mask))
}

func TestParseRoutes4(t *testing.T) {
	text := strings.Join([]string{
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
		route4("eth0", "0.0.0.0", "0.0.0.0"),                // default: not kept
		route4("eth0", "192.0.2.0", "255.255.255.0"),        // the LAN
		route4("wg0", "10.20.0.0", "255.255.0.0"),           // a VPN's
		route4("vxg-0a1b2c3d", "10.0.9.0", "255.255.255.0"), // vxnet's own
		route4("eth0", "169.254.0.0", "255.255.0.0"),        // link-local
		route4("eth0", "10.1.0.0", "255.0.255.0"),           // not a mask
		"eth0\tzz\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
		"short line",
	}, "\n")
	got := parseRoutes4(text)
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.20.0.0/16")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseRoutes6(t *testing.T) {
	text := `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0
fd180137000000000000000000000000 30 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003      wg0
fd180137000000000000000000000000 zz 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003      wg0
fd180137000000000000000000000000 90 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003      wg0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000004 00000000 00000001     eth0
`
	got := parseRoutes6(text)
	want := []netip.Prefix{netip.MustParsePrefix("fd00::/64"), netip.MustParsePrefix("fd18:137::/48")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Whatever the files hold, the parsers keep only masked prefixes that
// routeKept allows, and never panic.
func FuzzParseRoutes(f *testing.F) {
	f.Add(route4("eth0", "192.0.2.0", "255.255.255.0"))
	f.Add("fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0")
	f.Fuzz(func(t *testing.T, text string) {
		for _, p := range append(parseRoutes4("header\n"+text), parseRoutes6(text)...) {
			if !p.IsValid() || p != p.Masked() || p.Bits() == 0 || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
				t.Errorf("kept %v", p)
			}
		}
	})
}

// The machine's own routing table reads without error.
func TestRoutedNetworks_thisHost(t *testing.T) {
	ps, err := RoutedNetworks()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p != p.Masked() || p.Bits() == 0 {
			t.Errorf("%v", p)
		}
	}
}
