package agent

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/vxnet/vxnet/api"
)

// TestPickNetworks: of two creations of a name the earlier wins, then the
// smaller creator; the order rows arrive in does not matter.
func TestPickNetworks(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	early := api.Network{Name: "fixed", Creator: "h5", Created: t0}
	late := api.Network{Name: "fixed", Creator: "h1", Created: t0.Add(time.Nanosecond)}
	tieA := api.Network{Name: "tie", Creator: "h2", Created: t0}
	tieB := api.Network{Name: "tie", Creator: "h3", Created: t0}
	for name, rows := range map[string][]api.Network{
		"in order":  {early, late, tieA, tieB},
		"reversed":  {tieB, tieA, late, early},
		"scrambled": {late, tieB, early, tieA},
	} {
		t.Run(name, func(t *testing.T) {
			got := pickNetworks(rows)
			if got["fixed"].Creator != "h5" || got["tie"].Creator != "h2" || len(got) != 2 {
				t.Errorf("winners %+v: want fixed from h5 (earlier) and tie from h2 (same time, smaller name)", got)
			}
		})
	}
}

// TestApplyNetwork_losersAndDeletes: the reconciler's view follows every
// creation; this host's losing creation is named for withdrawal; deleting
// the winner leaves the name to the other creation only while its row
// lives, and a malformed row changes nothing.
func TestApplyNetwork_losersAndDeletes(t *testing.T) {
	a := &Agent{cfg: Config{Name: "h1"}, log: slog.New(slog.DiscardHandler), networks: map[string]api.Network{}, creations: map[string]api.Network{}}
	t0 := time.Unix(1_800_000_000, 0)
	mine := api.Network{Name: "fixed", Creator: "h1", Created: t0.Add(time.Second), VNI: 5000}
	theirs := api.Network{Name: "fixed", Creator: "h5", Created: t0, VNI: 6000}
	put := func(n api.Network) {
		b, _ := json.Marshal(n)
		a.applyNetworkLocked(networkKey(n.Name, n.Creator), b, false)
	}
	put(mine)
	if got := a.losingCreationsLocked(); len(got) != 0 {
		t.Fatalf("alone, mine lost: %v", got)
	}
	put(theirs)
	if a.networks["fixed"].Creator != "h5" {
		t.Errorf("winner %+v, want h5's earlier creation", a.networks["fixed"])
	}
	if got := a.losingCreationsLocked(); len(got) != 1 || got[0] != "fixed/h1" {
		t.Errorf("losing creations %v, want [fixed/h1]", got)
	}
	a.applyNetworkLocked("fixed/h5", nil, true)
	if a.networks["fixed"].Creator != "h1" {
		t.Errorf("after h5's row went: %+v", a.networks["fixed"])
	}
	a.applyNetworkLocked("fixed/h1", nil, true)
	if _, ok := a.networks["fixed"]; ok {
		t.Errorf("every creation deleted, but the network stays: %+v", a.networks["fixed"])
	}
	a.applyNetworkLocked("other/h1", []byte(`{"name": "not-other", "creator": "h1"}`), false)
	a.applyNetworkLocked("junk/h1", []byte(`{`), false)
	if len(a.networks) != 0 || len(a.creations) != 0 {
		t.Errorf("malformed rows were taken: %+v %+v", a.networks, a.creations)
	}
}
