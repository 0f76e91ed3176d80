package config

import "testing"

func TestConfig_validateNamesField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Name: "h", AdvertiseAddr: "0.0.0.0"}, "advertise-addr"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Join: []string{"x"}}, "join"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", GossipKey: "AAAA"}, "gossip-key"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", Profile: "wan"}, "profile"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", MTU: 100}, "mtu"},
		{Config{Name: "h", AdvertiseAddr: "198.18.0.1", VXLANPort: 70000}, "vxlan-port"},
	} {
		c := tc.cfg
		c.SetDefaults()
		_, _, _, err := c.Check()
		ce, ok := err.(*Error)
		if !ok || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
}
