package agent

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxnet/vxnet/api"
)

// TestReservations_neverHeldTwice: an address reserved for a runtime is
// this host's lease until the runtime releases it, whoever holds it
// meanwhile: the endpoint that takes it over does not release it when
// removed, a release while the endpoint holds it waits for the endpoint,
// and it survives in the state file; an address never reserved cannot be
// taken over; one taken over cannot be taken again.
func TestReservations_neverHeldTwice(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	leased := func(ip netip.Addr) bool { return slices.Contains(a.ipam.Leases("web"), ip) }
	reservations := func() map[string]bool { // address → held
		m := map[string]bool{}
		for _, r := range a.Reservations() {
			m[r.Address] = r.Held
		}
		return m
	}

	p, err := a.ReserveAddress(ctx, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	ip := p.Addr()
	if held, ok := reservations()[ip.String()]; !ok || held || !leased(ip) {
		t.Fatalf("after ReserveAddress: reservations %v, leased %v", reservations(), leased(ip))
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "never", IP: "10.0.9.200", Reserved: true}); err == nil {
		t.Fatal("an endpoint took over an address never reserved")
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "c1", IP: ip.String(), Reserved: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "c2", IP: ip.String(), Reserved: true}); err == nil {
		t.Fatal("a second endpoint took over a held reservation")
	}
	if held := reservations()[ip.String()]; !held {
		t.Fatalf("reservation not held by c1: %v", reservations())
	}

	// Removed, the endpoint leaves the address reserved: the runtime's.
	if err := a.RemoveEndpoint("web", "c1"); err != nil {
		t.Fatal(err)
	}
	if held, ok := reservations()[ip.String()]; !ok || held || !leased(ip) {
		t.Fatalf("after the endpoint's removal: reservations %v, leased %v", reservations(), leased(ip))
	}
	if err := a.ReleaseAddress("web", ip); err != nil {
		t.Fatal(err)
	}
	if _, ok := reservations()[ip.String()]; ok || leased(ip) {
		t.Fatalf("after ReleaseAddress: reservations %v, leased %v", reservations(), leased(ip))
	}

	// Released while held: kept (in the state file too) until the
	// endpoint goes, then back to IPAM.
	p, err = a.ReserveAddress(ctx, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	ip = p.Addr()
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "c3", IP: ip.String(), Reserved: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseAddress("web", ip); err != nil {
		t.Fatal(err)
	}
	if !leased(ip) {
		t.Fatal("an address released while its endpoint holds it went back to IPAM")
	}
	if st := a.store.Snapshot(); !slices.Contains(st.Released["web"], ip) || !slices.Contains(st.Reserved["web"], ip) {
		t.Fatalf("state file: reserved %v, released %v; want %v in both", st.Reserved, st.Released, ip)
	}
	if err := a.RemoveEndpoint("web", "c3"); err != nil {
		t.Fatal(err)
	}
	if _, ok := reservations()[ip.String()]; ok || leased(ip) {
		t.Fatalf("after the holder's removal: reservations %v, leased %v", reservations(), leased(ip))
	}
	if st := a.store.Snapshot(); len(st.Reserved["web"]) != 0 || len(st.Released["web"]) != 0 {
		t.Fatalf("state file keeps %v / %v", st.Reserved, st.Released)
	}
}
