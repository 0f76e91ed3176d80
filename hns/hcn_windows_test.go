//go:build windows

package hns

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/Microsoft/hcsshim/hcn"
)

// These tests need no HNS: they check that every builder's output goes
// into hcn's types and back out without losing a field (hcn drops JSON
// keys its structs lack), and that what hcn writes reads into our model.

// generic decodes JSON and drops empty objects and nulls, which hcn writes
// for the struct fields we leave out (MacPool, Dns, Health).
func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return prune(v)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = prune(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		if len(x) == 0 {
			return nil
		}
	case []any:
		for i := range x {
			x[i] = prune(x[i])
		}
	}
	return v
}

// through marshals ours, unmarshals it into theirs, marshals that, and
// checks both say the same; then it reads theirs back into a fresh copy of
// ours and checks nothing was lost that way either.
func through[O, H any](t *testing.T, ours O, theirs *H) {
	t.Helper()
	b, err := json.Marshal(ours)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, theirs); err != nil {
		t.Fatalf("hcn refuses %s: %v", b, err)
	}
	hb, err := json.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := generic(t, hb), generic(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("through hcn:\n got %s\nwant %s", hb, b)
	}
	var back O
	if err := json.Unmarshal(hb, &back); err != nil {
		t.Fatalf("our model refuses hcn's %s: %v", hb, err)
	}
	bb, _ := json.Marshal(back)
	if got, want := generic(t, bb), generic(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("back from hcn:\n got %s\nwant %s", bb, b)
	}
}

func TestHCN_roundTrip(t *testing.T) {
	for driver, c := range goldenCases() {
		t.Run(driver, func(t *testing.T) {
			g := c.build(t)
			through(t, g.Network, new(hcn.HostComputeNetwork))
			for _, e := range g.Endpoints {
				through(t, e, new(hcn.HostComputeEndpoint))
			}
		})
	}
}

// TestHCN_settings checks each settings struct against hcn's, field by
// field, with every field set.
func TestHCN_settings(t *testing.T) {
	tests := map[string]struct {
		ours   any
		theirs any
	}{
		"VSID":                    {VSID{IsolationId: 4097}, new(hcn.VsidPolicySetting)},
		"ProviderAddressNetwork":  {ProviderAddressNetwork{ProviderAddress: "198.18.0.1"}, new(hcn.ProviderAddressNetworkPolicySetting)},
		"VxlanPort":               {VxlanPort{Port: 4789}, new(hcn.VxlanPortPolicySetting)},
		"NetAdapterName":          {NetAdapterName{NetworkAdapterName: "Ethernet"}, new(hcn.NetAdapterNameNetworkPolicySetting)},
		"OutboundNat":             {OutboundNat{Exceptions: []string{"10.0.9.0/24"}}, new(hcn.OutboundNatPolicySetting)},
		"PortMapping":             {PortMapping{Protocol: 6, InternalPort: 80, ExternalPort: 8080}, new(hcn.PortMappingPolicySetting)},
		"ProviderAddressEndpoint": {ProviderAddressEndpoint{ProviderAddress: "198.18.0.2"}, new(hcn.ProviderAddressEndpointPolicySetting)},
		"ACL": {ACL{Protocols: "6", Action: ACLActionAllow, Direction: ACLDirectionOut, LocalAddresses: "10.0.9.2",
			RemoteAddresses: "10.0.8.0/24", LocalPorts: "80", RemotePorts: "443", RuleType: ACLRuleTypeSwitch, Priority: 100}, new(hcn.AclPolicySetting)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(tt.ours)
			if err := json.Unmarshal(b, tt.theirs); err != nil {
				t.Fatal(err)
			}
			hb, _ := json.Marshal(tt.theirs)
			if string(hb) != string(b) {
				t.Errorf("hcn writes %s, we write %s", hb, b)
			}
		})
	}
	// The constants are hcn's.
	if EnableNonPersistent != NetworkFlags(hcn.EnableNonPersistent) || EndpointFlagsRemoteEndpoint != EndpointFlags(hcn.EndpointFlagsRemoteEndpoint) ||
		string(Overlay) != string(hcn.Overlay) || string(SubnetPolicyVSID) != string(hcn.VSID) ||
		string(NetworkPolicyVxlanPort) != string(hcn.VxlanPort) || string(EndpointPolicyOutBoundNAT) != string(hcn.OutBoundNAT) ||
		string(EndpointPolicyProviderAddress) != string(hcn.NetworkProviderAddress) || string(NetworkPolicyNetAdapterName) != string(hcn.NetAdapterName) {
		t.Error("a constant differs from hcn's")
	}
}
