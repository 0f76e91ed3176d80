package cni

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzParseConf: any configuration is either a NetConf that names a valid
// network, or a CNI error with a code and a message; never a panic.
func FuzzParseConf(f *testing.F) {
	for _, s := range []string{
		confWeb, `{`, `null`, `[]`, `{"type":"vxnet"}`,
		`{"cniVersion":"1.1.0","name":"web","type":"vxnet","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}],"ips":["10.0.9.7/24","fd00::7"],"aliases":{"web":["a"]}}}`,
		`{"name":"w","type":"vxnet","subnet":"10.0.9.0/24","subnet6":"fd00:9::/64","gateway":"10.0.9.1","mtu":1400,"options":{"x":"y"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConf(data)
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || te.Code == 0 || te.Msg == "" {
				t.Fatalf("%q: error %v is not a CNI error with a code", data, err)
			}
			return
		}
		if c.Network == "" || c.Socket == "" || c.Type != Type {
			t.Fatalf("%q: accepted %+v", data, c)
		}
		if _, err := (&attachment{conf: c, container: "x", ifname: "eth0"}).endpointRequest(); err != nil {
			var te *types.Error
			if !errors.As(err, &te) {
				t.Fatalf("%q: endpoint request: %v", data, err)
			}
		}
	})
}
