package tun

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// TestHandover_moveAdoptRemove plays a runtime's part: a handover device
// is made in one namespace ("the host"), moved into another ("the
// container"), renamed and addressed there. Where follows it; the device
// outlives its descriptor (an agent killed); Adopt finds it again by its
// address; Remove then Close end it inside the container.
func TestHandover_moveAdoptRemove(t *testing.T) {
	host := testNetns(t, "vxho")
	ctr := testNetns(t, "vxhc")
	ctrPath := NetnsPath(ctr)

	var dev Device
	err := inNetns(host, func() error {
		var err error
		dev, err = CreateHandover("vxdtest0", 1400)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { dev.Close() }()
	if inside, _, err := Where(dev, ctrPath); err != nil || inside {
		t.Fatalf("Where before the move: inside %v, error %v; want outside", inside, err)
	}
	if inside, _, err := Where(dev, ctrPath+"-missing"); err != nil || inside {
		t.Fatalf("Where for a namespace not made yet: inside %v, error %v", inside, err)
	}
	if out := run(t, "ip", "-n", host, "-d", "-o", "link", "show", "dev", "vxdtest0"); !strings.Contains(out, "gso_max_segs 44 ") {
		t.Errorf("handover device's super-packets not limited to one train (gso_max_segs 44):\n%s", out)
	}
	run(t, "ip", "-n", host, "link", "set", "vxdtest0", "netns", ctr)
	run(t, "ip", "-n", ctr, "link", "set", "vxdtest0", "name", "eth3")
	run(t, "ip", "-n", ctr, "addr", "add", "10.0.9.7/24", "dev", "eth3")
	run(t, "ip", "-n", ctr, "link", "set", "eth3", "up")
	inside, name, err := Where(dev, ctrPath)
	if err != nil || !inside || name != "eth3" {
		t.Fatalf("Where after the move: inside %v, name %q, error %v; want inside as eth3", inside, name, err)
	}

	// The agent dies: the device stays, configured.
	dev.Close()
	out := run(t, "ip", "-n", ctr, "-o", "addr", "show", "dev", "eth3")
	if !strings.Contains(out, "10.0.9.7/24") {
		t.Fatalf("eth3 lost its address when its descriptor closed:\n%s", out)
	}
	if _, _, err := Adopt(ctr, netip.MustParseAddr("10.0.9.8"), 1400); err == nil {
		t.Fatal("Adopt found a device for an address no device holds")
	}
	dev, name, err = Adopt(ctr, netip.MustParseAddr("10.0.9.7"), 1400)
	if err != nil || name != "eth3" {
		t.Fatalf("Adopt: %q, %v; want eth3", name, err)
	}
	if out := run(t, "ip", "-n", ctr, "-o", "addr", "show", "dev", "eth3"); !strings.Contains(out, "10.0.9.7/24") {
		t.Fatalf("Adopt changed eth3's addresses:\n%s", out)
	}

	if err := Remove(dev); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if out, err := exec.Command("ip", "-n", ctr, "link", "show", "dev", "eth3").CombinedOutput(); err == nil {
		t.Fatalf("eth3 still exists after Remove and Close:\n%s", out)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSweep: persistent devices of the prefix that nothing holds go; one
// held open stays, and so do other names.
func TestSweep(t *testing.T) {
	ns := testNetns(t, "vxsw")
	var held Device
	var removed []string
	err := inNetns(ns, func() error {
		for _, name := range []string{"vxdleft0", "vxdleft1", "other0"} {
			d, err := CreateHandover(name, 1400)
			if err != nil {
				return err
			}
			d.Close() // persistent: stays
		}
		var err error
		if held, err = CreateHandover("vxdheld0", 1400); err != nil {
			return err
		}
		removed, err = Sweep("vxd")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { Remove(held); held.Close() }()
	if strings.Join(removed, ",") != "vxdleft0,vxdleft1" {
		t.Errorf("removed %v, want vxdleft0 and vxdleft1", removed)
	}
	out := run(t, "ip", "-n", ns, "-o", "link", "show")
	for _, name := range []string{"vxdheld0", "other0"} {
		if !strings.Contains(out, name+":") {
			t.Errorf("%s gone:\n%s", name, out)
		}
	}
	for _, name := range []string{"vxdleft0", "vxdleft1"} {
		if strings.Contains(out, name+":") {
			t.Errorf("%s left:\n%s", name, out)
		}
	}
}
