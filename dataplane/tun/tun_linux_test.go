package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// TestCreate_inNamespace creates a TUN device inside a namespace of the
// test's own and checks, through the kernel, its name, MTU, addresses and
// state; then that Close removes it.
func TestCreate_inNamespace(t *testing.T) {
	ns := testNetns(t, "vxtun")

	addrs := []netip.Prefix{netip.MustParsePrefix("10.0.9.2/24"), netip.MustParsePrefix("fd00:9::2/64")}
	dev, err := Create(Config{Name: "eth0", Netns: ns, MTU: 1400, Addresses: addrs, Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v %s", err, out)
	}
	for _, want := range []string{"10.0.9.2/24 brd 10.0.9.255", "fd00:9::2/64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("eth0 in %s lacks %q:\n%s", ns, want, out)
		}
	}
	link, err := exec.Command("ip", "-n", ns, "-d", "-o", "link", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(link), "mtu 1400") || !strings.Contains(string(link), "UP") {
		t.Errorf("eth0 link: %v %s", err, link)
	}
	// Super-packets no larger than one underlay train: 65000 / (1400 + 50).
	if want := fmt.Sprintf("gso_max_segs %d ", vxlan.SegmentsPerTrain(1400)); !strings.Contains(string(link), want) || vxlan.SegmentsPerTrain(1400) != 44 {
		t.Errorf("eth0 link lacks %q:\n%s", want, link)
	}
	if r, err := exec.Command("ip", "-n", ns, "route", "show", "default").CombinedOutput(); err != nil || !strings.Contains(string(r), "default dev eth0") {
		t.Errorf("no default route through eth0: %v %s", err, r)
	}
	// A name another device holds: this one's, in use, or the loopback's.
	for _, name := range []string{"eth0", "lo"} {
		if _, err := Create(Config{Name: name, Netns: ns}); !errors.Is(err, ErrNameTaken) {
			t.Errorf("a device named %s, taken: %v, want ErrNameTaken", name, err)
		}
	}
	// A second network with a way out: its device comes up, the default
	// route used stays the first's (the second's has a higher metric);
	// its other routes are its own.
	dev1, err := Create(Config{Name: "eth1", Netns: ns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.8.2/24")},
		Routes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.7.0.0/16")}})
	if err != nil {
		t.Fatalf("a second device asking for a default route too: %v", err)
	}
	defer dev1.Close()
	if r, err := exec.Command("ip", "-n", ns, "route", "show").CombinedOutput(); err != nil || !strings.Contains(string(r), "default dev eth0 scope link \n") ||
		!strings.Contains(string(r), "default dev eth1 scope link metric 100") || !strings.Contains(string(r), "10.7.0.0/16 dev eth1") {
		t.Errorf("routes with two devices: %v\n%s", err, r)
	}
	if r, err := exec.Command("ip", "-n", ns, "route", "get", "192.0.2.1").CombinedOutput(); err != nil || !strings.Contains(string(r), "dev eth0") {
		t.Errorf("the default route used is not the first network's: %v\n%s", err, r)
	}
	dev.Close()
	if out, err := exec.Command("ip", "-n", ns, "link", "show", "dev", "eth0").CombinedOutput(); err == nil {
		t.Errorf("eth0 still exists after Close:\n%s", out)
	}
}

func TestCreate_missingNamespace(t *testing.T) {
	_, err := Create(Config{Netns: "vxnet-no-such-namespace"})
	if err == nil || !strings.Contains(err.Error(), `Netns "vxnet-no-such-namespace"`) {
		t.Errorf("error %v, want one naming the namespace", err)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Logf("note: error does not wrap ErrNotExist: %v", err)
	}
}

// testNetns creates a network namespace named prefix<pid>, removed when the
// test ends; without root the test skips.
func testNetns(t *testing.T, prefix string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates a network namespace and a TUN device)")
	}
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// TestReaddress_swapsAddresses: the old address leaves the device and the
// new one arrives, with its broadcast; the default route, which the kernel
// drops with the last address, is back; a second removal is no error.
func TestReaddress_swapsAddresses(t *testing.T) {
	ns := testNetns(t, "vxtunre")
	old, nu := netip.MustParsePrefix("10.0.9.2/24"), netip.MustParsePrefix("10.0.10.7/24")
	def := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	dev, err := Create(Config{Name: "eth0", Netns: ns, Addresses: []netip.Prefix{old}, Routes: def})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := Readdress(ns, "eth0", []netip.Prefix{old}, []netip.Prefix{nu}, def); err != nil {
		t.Fatal(err)
	}
	if r, err := exec.Command("ip", "-n", ns, "route", "show", "default").CombinedOutput(); err != nil || !strings.Contains(string(r), "default dev eth0") {
		t.Errorf("no default route through eth0 after readdress: %v %s", err, r)
	}
	out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v %s", err, out)
	}
	if strings.Contains(string(out), "10.0.9.2/") || !strings.Contains(string(out), "10.0.10.7/24 brd 10.0.10.255") {
		t.Errorf("after readdress:\n%s", out)
	}
	if err := Readdress(ns, "eth0", []netip.Prefix{old}, nil, nil); err != nil {
		t.Errorf("removing an address already gone: %v", err)
	}
	if err := Readdress(ns, "nope0", nil, nil, nil); err == nil {
		t.Error("readdress of a missing device: no error")
	}
}
