package lab

import (
	"net/netip"
	"slices"
	"testing"
)

func TestSubnetFor_insideBenchmarkRangeAndStable(t *testing.T) {
	bench := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[netip.Prefix]string{}
	for _, id := range []string{"vxlab", "vxlab2", "e2e-1", "e2e-2", "bench", "a", "z9"} {
		p := SubnetFor(id)
		if p.Bits() != 24 || !bench.Contains(p.Addr()) || p.Masked() != p {
			t.Errorf("SubnetFor(%q) = %v, want a /24 inside %v", id, p, bench)
		}
		if SubnetFor(id) != p {
			t.Errorf("SubnetFor(%q) not stable", id)
		}
		seen[p] = id
	}
	if len(seen) < 6 {
		t.Errorf("7 ids gave only %d subnets: %v", len(seen), seen)
	}
}

func TestIsLabNetns(t *testing.T) {
	for name, want := range map[string]bool{
		"vxlab-bridge":     true,
		"vxlab-outside":    true,
		"vxlab-outside-c1": false,
		"vxlab-2-outside":  false, // another lab's outside
		"vxlab-h1-outside": false, // lab "vxlab-h1"'s outside
		"vxlab-h1":         true,
		"vxlab-h12":        true,
		"vxlab-h1-c2":      true,
		"vxlab":            false,
		"vxlab-":           false,
		"vxlab-h":          false,
		"vxlab-hx":         false,
		"vxlab-h1-c":       false,
		"vxlab-h1-x1":      false,
		"vxlab2-h1":        false, // another lab
		"vxlab-2-h1":       false, // another lab whose id starts with this one
		"vxlab-2-bridge":   false,
		"vxlab-h1-h1":      false, // lab "vxlab-h1"'s first host
		"vxlab-h1-bridge":  false, // lab "vxlab-h1"'s bridge
		"vxlab-h1-h1-c1":   false,
		"other-h1":         false,
		"vxlab-bridge-foo": false,
	} {
		if got := IsLabNetns("vxlab", name); got != want {
			t.Errorf("IsLabNetns(vxlab, %q) = %v, want %v", name, got, want)
		}
	}
}

func TestNewState_namesAddressesPaths(t *testing.T) {
	c := Config{ID: "t1", Hosts: 3, Dir: "/run/vxnet-lab/t1"}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	s := newState(c)
	sub := SubnetFor("t1")
	if s.Subnet != sub || s.BridgeNetns != "t1-bridge" || len(s.Hosts) != 3 {
		t.Fatalf("state %+v", s)
	}
	for i, h := range s.Hosts {
		n := i + 1
		if h.Name != HostName(n) || h.Netns != HostNetns("t1", n) || h.Addr != HostAddr(sub, n) || !sub.Contains(h.Addr) {
			t.Errorf("host %d: %+v", n, h)
		}
		if h.Socket != "/run/vxnet-lab/t1/"+h.Name+"/api.sock" || h.DataDir != "/run/vxnet-lab/t1/"+h.Name+"/data" {
			t.Errorf("host %d paths: %+v", n, h)
		}
		if !IsLabNetns("t1", h.Netns) || !IsLabNetns("t1", ContainerNetns("t1", n, 2)) {
			t.Errorf("host %d: namespaces do not follow the pattern Down removes", n)
		}
	}
	if got := s.Namespaces(); !slices.Equal(got, []string{"t1-h1", "t1-h2", "t1-h3", "t1-outside", "t1-bridge"}) {
		t.Errorf("Namespaces() = %v", got)
	}
	// The outside is on the underlay's /24, above every host, and Down
	// removes its namespace like the others.
	if o := s.Outside; o.Netns != "t1-outside" || !IsLabNetns("t1", o.Netns) || !sub.Contains(o.Addr) ||
		o.Addr.Compare(HostAddr(sub, MaxHosts)) <= 0 {
		t.Errorf("outside %+v", o)
	}
	if ContainerName(2, 1) != "h2c1" || ContainerNetns("t1", 2, 1) != "t1-h2-c1" {
		t.Error("container names")
	}
}

func TestConfig_validate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg Config
		ok  bool
	}{
		"defaults":      {Config{}, true},
		"max hosts":     {Config{Hosts: MaxHosts}, true},
		"too many":      {Config{Hosts: MaxHosts + 1}, false},
		"negative":      {Config{Hosts: -1}, false},
		"upper-case id": {Config{ID: "Lab"}, false},
		"dotted id":     {Config{ID: "a.b"}, false},
		"trailing dash": {Config{ID: "lab-"}, false},
		"long id":       {Config{ID: "abcdefghijklmnopq"}, false},
		"inner dash":    {Config{ID: "e2e-7"}, true},
		"profile":       {Config{Profile: "wan"}, false},
		"level":         {Config{LogLevel: "loud"}, false},
		"relative dir":  {Config{Dir: "lab"}, false},
		"long dir":      {Config{Dir: "/" + string(make([]byte, 100))}, false},
		"port":          {Config{GossipPort: 70000}, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.withDefaults().validate()
			if (err == nil) != tc.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
