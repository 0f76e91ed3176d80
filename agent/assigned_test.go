package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
)

// TestAssigned_vxnetHandsOutNone: on a network whose addresses Docker
// swarm's manager assigns, every endpoint comes with its address, vxnet's
// IPAM leases none of them (before, during or after the endpoint), an
// address in use or outside the subnet is refused, and an endpoint without
// an assigned address is refused with a message that says where they come
// from.
func TestAssigned_vxnetHandsOutNone(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "sw", AssignedBy: "elsewhere", Subnet: "10.0.8.0/24"}); err == nil || !strings.Contains(err.Error(), "assignedBy") {
		t.Errorf("an unknown assignedBy: %v", err)
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "sw", AssignedBy: api.AssignedBySwarm}); err == nil || !strings.Contains(err.Error(), "--subnet") {
		t.Errorf("an assigned network without a subnet: %v", err)
	}
	n, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "sw", AssignedBy: api.AssignedBySwarm, Subnet: "10.0.8.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if n.AssignedBy != api.AssignedBySwarm {
		t.Errorf("network assignedBy %q", n.AssignedBy)
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "sn", Driver: "nat", AssignedBy: api.AssignedBySwarm, Subnet: "10.0.6.0/24"}); err == nil || !strings.Contains(err.Error(), "one host's") {
		t.Errorf("an assigned nat network: %v", err)
	}
	if _, err := a.ReserveAddress(ctx, "sw", netip.Addr{}); err == nil || !strings.Contains(err.Error(), "assigned by docker-swarm") {
		t.Errorf("a reservation on an assigned network: %v", err)
	}
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "plain", Subnet: "10.0.7.0/24"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  api.EndpointCreate
		want string
	}{
		{api.EndpointCreate{Network: "sw", Name: "x"}, "assigned by docker-swarm"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.8.5"}, "assigned by docker-swarm"},
		{api.EndpointCreate{Network: "sw", Name: "x", Assigned: true}, "ip is required"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.9.5", Assigned: true}, "outside"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.8.1", Assigned: true}, "gateway"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.8.0", Assigned: true}, "broadcast"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.8.255", Assigned: true}, "broadcast"},
		{api.EndpointCreate{Network: "sw", Name: "x", IP: "10.0.8.5", Assigned: true, Reserved: true}, "exclude"},
		{api.EndpointCreate{Network: "plain", Name: "x", IP: "10.0.7.5", Assigned: true}, "from vxnet"},
	} {
		if _, err := a.CreateEndpoint(ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "sw", Name: "t1", IP: "10.0.8.5", Assigned: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Addresses) != 1 || ep.Addresses[0] != "10.0.8.5/24" {
		t.Errorf("endpoint addresses %v", ep.Addresses)
	}
	if l := a.ipam.Leases("sw"); len(l) != 0 {
		t.Errorf("IPAM leases %v for assigned addresses", l)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "sw", Name: "t2", IP: "10.0.8.5", Assigned: true}); err == nil || !strings.Contains(err.Error(), "t1") {
		t.Errorf("an address assigned twice: %v", err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "sw", Name: "t2", IP: "10.0.8.6", Assigned: true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"t1", "t2"} {
		if err := a.RemoveEndpoint("sw", name); err != nil {
			t.Fatal(err)
		}
	}
	if l := a.ipam.Leases("sw"); len(l) != 0 {
		t.Errorf("IPAM leases %v after removal", l)
	}
	if st := a.store.Snapshot(); len(st.Leases["sw"]) != 0 || len(st.Endpoints) != 0 {
		t.Errorf("state file keeps leases %v, endpoints %v", st.Leases["sw"], st.Endpoints)
	}
	// The address is free again: the swarm may assign it anew.
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "sw", Name: "t3", IP: "10.0.8.5", Assigned: true}); err != nil {
		t.Fatal(err)
	}
}

// TestEndpoint_macAsked: an endpoint takes the MAC its runtime asks for;
// one that is not unicast, a gateway's, or another endpoint's of the
// network is refused, naming the field.
func TestEndpoint_macAsked(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "a", MAC: "02:AB:00:00:00:07"})
	if err != nil || ep.MAC != "02:ab:00:00:00:07" {
		t.Fatalf("endpoint MAC %q, %v", ep.MAC, err)
	}
	for mac, want := range map[string]string{
		"02:42":             "not a MAC address",
		"01:00:5e:00:00:01": "not a unicast",
		"00:00:00:00:00:00": "not a unicast",
		"02:76:67:00:00:01": "gateways",
		"02:ab:00:00:00:07": "endpoint a",
	} {
		if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "b", MAC: mac}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mac %s: %v, want %q", mac, err, want)
		}
	}
	if l := a.ipam.Leases("web"); len(l) != 1 {
		t.Errorf("leases %v after refusals, want a's alone", l)
	}
}
