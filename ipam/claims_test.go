package ipam

import (
	"encoding/json"
	"testing"
)

// ClaimsFromGrants keeps, per block, the winning grant for the network's
// current subnet: a later grant of a subnet the network moved away from
// does not take the block from its holder.
func TestClaimsFromGrants(t *testing.T) {
	rows := []Row{
		{Key: subnetKey("web", "h1", 1), Writer: "h1", Value: mustJSON(subnetClaim{Creator: "h1", Created: 1, Rev: 2, Subnet: "10.1.0.0/24", BlockBits: 4})},
		{Key: blockKey("web", 0, "h1"), Writer: "h1", Value: mustJSON(blockRow{blockGrant{Holder: "h2", Gen: 2}, "10.1.0.0/24"})},
		{Key: blockKey("web", 0, "h2"), Writer: "h2", Value: mustJSON(blockRow{blockGrant{Holder: "h2", Gen: 2}, "10.1.0.0/24"})},
		{Key: blockKey("web", 0, "h3"), Writer: "h3", Value: mustJSON(blockRow{blockGrant{Holder: "h3", Gen: 9}, "10.9.0.0/24"})}, // old subnet
		{Key: blockKey("web", 1, "h1"), Writer: "h1", Value: mustJSON(blockRow{blockGrant{Holder: "h1", Gen: 1}, "10.1.0.0/24"})},
		{Key: blockKey("web", 1, "h3"), Writer: "h3", Value: mustJSON(blockRow{blockGrant{Holder: "h3", Era: 5, Gen: 1}, "10.1.0.0/24"})}, // an heir's
		{Key: hostKey("web", "h2"), Writer: "h2", Value: []byte(`{"want":1}`)},
		{Key: blockKey("web", 2, "h1"), Writer: "h1", Value: []byte(`not json`)},
	}
	got := map[string]string{}
	for _, c := range ClaimsFromGrants(rows) {
		var b blockRow
		if err := json.Unmarshal(c.Value, &b); err != nil || b.Holder != c.Writer || b.Subnet != "10.1.0.0/24" {
			t.Errorf("claim %s: %s by %s", c.Key, c.Value, c.Writer)
		}
		got[c.Key] = c.Writer
	}
	want := map[string]string{claimKey("web", 0): "h2", claimKey("web", 1): "h3"}
	if len(got) != len(want) || got[claimKey("web", 0)] != "h2" || got[claimKey("web", 1)] != "h3" {
		t.Errorf("claims %v, want %v", got, want)
	}
}
