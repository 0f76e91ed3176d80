package driver

import (
	"net/netip"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	for _, name := range []string{"overlay", "nat", "l2tunnel", "transparent", "l2bridge"} {
		d, err := Get(name)
		if err != nil || d.Name() != name {
			t.Errorf("Get(%q) = %v, %v", name, d, err)
		}
	}
	if _, err := Get("bridge"); err == nil || !strings.Contains(err.Error(), `unknown driver "bridge"`) || !strings.Contains(err.Error(), "l2bridge, l2tunnel, nat, overlay, transparent") {
		t.Errorf("unknown driver: %v", err)
	}
	nat, _ := Get("nat")
	if nat.Scope() != ScopeLocal || !nat.Publishes() {
		t.Error("nat must be local and publish ports")
	}
	ov, _ := Get("overlay")
	if ov.Scope() != ScopeGlobal || ov.Publishes() || ov.HostGateway() {
		t.Error("overlay must be global, publish nothing and need no gateway")
	}
}

func TestNAT_containerRoutes(t *testing.T) {
	d, _ := Get("nat")
	n := Network{Name: "n", Subnet: netip.MustParsePrefix("172.30.0.0/24")}
	if r := d.ContainerRoutes(n); len(r) != 1 || r[0].String() != "0.0.0.0/0" {
		t.Errorf("routes %v, want a default route", r)
	}
	n.Internal = true
	if r := d.ContainerRoutes(n); len(r) != 0 {
		t.Errorf("internal network got routes %v", r)
	}
}

func TestParsePublish(t *testing.T) {
	good := map[string]string{
		"8080:80":     "8080:80/tcp",
		"8080:80/tcp": "8080:80/tcp",
		"53:53/UDP":   "53:53/udp",
		"443":         "443:443/tcp",
	}
	for in, want := range good {
		p, err := ParsePublish(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePublish(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	bad := map[string]string{
		"8080:80/sctp": `protocol "sctp"`,
		"x:80":         `host port "x"`,
		"8080:0":       `container port "0"`,
		"70000:80":     `host port "70000"`,
		"":             `host port ""`,
	}
	for in, want := range bad {
		if _, err := ParsePublish(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "publish") {
			t.Errorf("ParsePublish(%q) error %v, want one naming %s", in, err, want)
		}
	}
}

func TestL2TunnelPolicy(t *testing.T) {
	host, p, err := L2TunnelPolicy(map[string]string{"policy-host": "198.18.0.3", "policy-deny": "10.0.9.3:5201/tcp", "policy-allow": "10.0.9.0/24", "policy-default": "deny"})
	if err != nil || host.String() != "198.18.0.3" || p.Default || len(p.Rules) != 2 || !p.Rules[0].Allow || p.Rules[1].Allow {
		t.Fatalf("got %v %+v %v", host, p, err)
	}
	for opts, want := range map[*map[string]string]string{
		{}:                    "policy-host is required",
		{"policy-host": "h3"}: "policy-host=\"h3\"",
		{"policy-host": "198.18.0.3", "policy-default": "x"}: "policy-default=\"x\"",
		{"policy-host": "198.18.0.3", "policy-deny": "a:1"}:  "option policy-deny: policy rule \"a:1\"",
	} {
		if _, _, err := L2TunnelPolicy(*opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error saying %s", *opts, err, want)
		}
	}
}

func TestUplinkName(t *testing.T) {
	if n, err := UplinkName("transparent", map[string]string{"uplink": "eth0"}); err != nil || n != "eth0" {
		t.Errorf("got %q %v", n, err)
	}
	if _, err := UplinkName("l2bridge", nil); err == nil || !strings.Contains(err.Error(), "option uplink is required for l2bridge") {
		t.Errorf("missing uplink: %v", err)
	}
	if _, err := UplinkName("l2bridge", map[string]string{"uplink": "a-very-long-interface"}); err == nil || !strings.Contains(err.Error(), `uplink="a-very-long-interface"`) {
		t.Errorf("long name: %v", err)
	}
	d, _ := Get("l2bridge")
	tr, _ := Get("transparent")
	if !IsL2Bridge(d) || IsL2Bridge(tr) || !UsesUplink(tr) {
		t.Error("IsL2Bridge/UsesUplink wrong")
	}
}

func TestUplinkOptions(t *testing.T) {
	tr, _ := Get("transparent")
	l2, _ := Get("l2bridge")
	if err := tr.CheckOptions(map[string]string{"uplink": "eth0", "dhcp": "yes"}); err == nil || !strings.Contains(err.Error(), `dhcp="yes"`) {
		t.Errorf("dhcp=yes: %v", err)
	}
	if !UsesDHCP(tr, map[string]string{"dhcp": "true"}) || UsesDHCP(tr, nil) || UsesDHCP(l2, map[string]string{"dhcp": "true"}) {
		t.Error("UsesDHCP wrong")
	}
	own, rest := SplitOptions(l2, map[string]string{"uplink": "eth0", "dhcp": "true"})
	if own["uplink"] != "eth0" || rest["dhcp"] != "true" {
		t.Errorf("l2bridge takes no dhcp option: own %v rest %v", own, rest)
	}
}
