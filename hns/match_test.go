package hns

import (
	"net/netip"
	"testing"
)

// An overlay that came back from an old HNS without its VxlanPort 4789
// policy (the client leaves it out there) still matches: no re-create.
func TestNetworkMatches_withoutDefaultVxlanPort(t *testing.T) {
	w, err := BuildNetwork(NetworkSpec{Name: "ov", Type: Overlay, VNI: 4242, Subnet: netip.MustParsePrefix("10.0.9.0/24"),
		Gateway: netip.MustParseAddr("10.0.9.1"), VTEP: netip.MustParseAddr("198.18.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	have := w
	have.Policies = withoutDefaultVxlanPort(w.Policies)
	if len(have.Policies) == len(w.Policies) {
		t.Fatal("the overlay has no VxlanPort policy to leave out")
	}
	if !networkMatches(w, have) {
		t.Error("an overlay without its VxlanPort 4789 policy does not match: every sync would re-create it")
	}
}
