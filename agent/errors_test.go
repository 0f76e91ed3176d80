package agent

import (
	"errors"
	"fmt"
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
	// No address was asked for: the network has none to give, not the ip.
	var e *api.Error
	in := &ipam.Error{Network: "web", Field: "address", Value: "(next free)", Err: ipam.ErrExhausted}
	if err := fromIPAM(in); !errors.As(err, &e) || e.Field != "network" {
		t.Errorf("next free address exhausted: %#v, want it on network", err)
	}
}
