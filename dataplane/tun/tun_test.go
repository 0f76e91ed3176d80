package tun

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfig_validate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"long name":    {Config{Name: "a-name-longer-than-15"}, `Name "a-name-longer-than-15"`},
		"slash":        {Config{Name: "a/b"}, `Name "a/b"`},
		"mtu too low":  {Config{MTU: 100}, "MTU 100"},
		"mtu too high": {Config{MTU: 70000}, "MTU 70000"},
		"bad prefix":   {Config{Addresses: []netip.Prefix{{}}}, "invalid prefix"},
	} {
		t.Run(name, func(t *testing.T) {
			c := tc.cfg
			c.setDefaults()
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	c := Config{}
	c.setDefaults()
	if err := c.validate(); err != nil || c.Name != DefaultName || c.MTU != DefaultMTU {
		t.Errorf("defaults %+v: %v", c, err)
	}
}

func TestBroadcastOf(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.9.2/24":    "10.0.9.255",
		"10.0.9.2/32":    "10.0.9.2",
		"10.0.0.0/8":     "10.255.255.255",
		"192.168.1.5/30": "192.168.1.7",
		"0.0.0.0/0":      "255.255.255.255",
	} {
		if got := BroadcastOf(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("BroadcastOf(%s) = %v, want %s", in, got, want)
		}
	}
}
