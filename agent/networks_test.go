package agent

import (
	"testing"
	"time"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/tables"
)

// TestLosingCreations: of two creations of one name, this host's later
// one loses to the other host's earlier one; alone, it wins.
func TestLosingCreations(t *testing.T) {
	a := &Agent{cfg: config.Config{Name: "h1"}}
	set := func(rows ...tables.Network) {
		a.creations = map[string]tables.Network{}
		for _, n := range rows {
			a.creations[n.Key()] = n
		}
		a.networks = tables.PickNetworks(rows)
	}
	t0 := time.Unix(1_800_000_000, 0)
	mine := tables.Network{Name: "fixed", Creator: "h1", Created: t0.Add(time.Second), VNI: 5000}
	theirs := tables.Network{Name: "fixed", Creator: "h5", Created: t0, VNI: 6000}
	set(mine)
	if keys, _ := a.losingCreationsLocked(); len(keys) != 0 {
		t.Fatalf("alone, mine lost: %v", keys)
	}
	set(mine, theirs)
	if keys, winners := a.losingCreationsLocked(); len(keys) != 1 || keys[0] != "fixed/h1" || winners[0] != "h5" {
		t.Errorf("losing creations %v (winners %v), want [fixed/h1] to h5", keys, winners)
	}
	set(theirs)
	if keys, _ := a.losingCreationsLocked(); len(keys) != 0 {
		t.Errorf("another host's creation counted as this host's loss: %v", keys)
	}
}
