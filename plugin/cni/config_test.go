package cni

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestParseConf_nearKeys: a key that is nearly one of vxnet's is refused
// naming it (code 7), where it would otherwise be ignored and a network
// made other than the one meant; keys of other plugins and runtimes pass.
func TestParseConf_nearKeys(t *testing.T) {
	for key, want := range map[string]string{"sbunet": "subnet", "intenral": "internal", "Netwrok": "network", "runtimeConfg": "runtimeConfig"} {
		_, err := ParseConf([]byte(`{"cniVersion":"1.0.0","name":"web","type":"vxnet","` + key + `":"x"}`))
		var e *types.Error
		if !errors.As(err, &e) || e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, `"`+key+`"`) || !strings.Contains(e.Msg, `"`+want+`"`) {
			t.Errorf("key %s: %v, want code 7 suggesting %s", key, err, want)
		}
	}
	for _, key := range []string{"args", "prevResult", "runtimeConfig", "ipMasq", "hairpinMode", "vendorField",
		"isGateway", "subnets", "gateway6", "ipv4", "ipv6", "node", "time", "names", "external"} {
		if _, err := ParseConf([]byte(`{"cniVersion":"1.0.0","name":"web","type":"vxnet","` + key + `":{}}`)); err != nil {
			t.Errorf("key %s: %v, want it let through", key, err)
		}
	}
	// JSON decoding takes vxnet's own keys in any case: they are known.
	if c, err := ParseConf([]byte(`{"cniVersion":"1.0.0","name":"web","type":"vxnet","Subnet":"10.0.9.0/24"}`)); err != nil || c.Subnet != "10.0.9.0/24" {
		t.Errorf("Subnet: %v %+v", err, c)
	}
}
