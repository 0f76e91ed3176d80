package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/ipam"
)

// TestFromIPAM_codes: IPAM's refusals reach the API with the status they
// mean: a static address taken, reserved or in another host's block, an
// overlap and an exhausted pool are conflicts (409), on the field the API
// names (ip, or ip6 for a dual-stack network's IPv6 side); the rest are
// bad requests.
func TestFromIPAM_codes(t *testing.T) {
	for _, tt := range []struct {
		err         error
		network     string
		code, field string
	}{
		{ipam.ErrInUse, "web", api.CodeConflict, "ip"},
		{ipam.ErrOtherHost, "web", api.CodeConflict, "ip"},
		{ipam.ErrOtherHost, "web" + ipam.V6Suffix, api.CodeConflict, "ip6"},
		{ipam.ErrExhausted, "web", api.CodeConflict, "ip"},
		{ipam.ErrOutOfRange, "web", api.CodeBadRequest, "ip"},
	} {
		in := &ipam.Error{Network: tt.network, Field: "address", Value: "10.0.9.9", Err: tt.err}
		var e *api.Error
		if err := fromIPAM(in); !errors.As(err, &e) || e.Code != tt.code || e.Field != tt.field {
			t.Errorf("%v on %s: %v, want %s on %s", tt.err, tt.network, fmt.Sprintf("%#v", err), tt.code, tt.field)
		}
	}
	// No address was asked for: the network has none to give, not the
	// ip, of either family.
	var e *api.Error
	for _, network := range []string{"web", "web" + ipam.V6Suffix} {
		in := &ipam.Error{Network: network, Field: "address", Value: "(next free)", Err: ipam.ErrExhausted}
		if err := fromIPAM(in); !errors.As(err, &e) || e.Field != "network" {
			t.Errorf("next free address of %s exhausted: %#v, want it on network", network, err)
		}
	}
	// An IPv6 network of one subnet: its address is --ip6's.
	in := &ipam.Error{Network: "v6", Field: "address", Value: "fd00:62::47", Err: ipam.ErrOtherHost}
	if err := fromIPAM(in); !errors.As(err, &e) || e.Field != "ip6" {
		t.Errorf("an IPv6 network's address: %#v, want it on ip6", err)
	}
	// The IPv6 side's IPAM name is not the user's.
	in = &ipam.Error{Network: "web", Field: "subnet", Value: "fd00:9::/64", Err: ipam.ErrOverlap, Detail: "network dual" + ipam.V6Suffix}
	if err := fromIPAM(in); !errors.As(err, &e) || strings.Contains(e.Message, ipam.V6Suffix) || !strings.Contains(e.Message, "network dual") {
		t.Errorf("overlap with a dual-stack network's IPv6 side: %q, want it named dual", e.Message)
	}
}
