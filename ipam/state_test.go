package ipam

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
)

// TestPool_restartReusesNoAddressInUse: a host saves its pool, restarts
// (a new Pool from the same config) and restores: every address still in
// use stays taken and next-fit goes on where it was.
func TestPool_restartReusesNoAddressInUse(t *testing.T) {
	cfg := PoolConfig{Subnet: "10.0.9.0/24", IPRange: "10.0.9.0/28"}
	store := MemStore{}
	p, _ := NewPool("web", cfg)
	var held []netip.Addr
	for i := 0; i < 6; i++ {
		a, _ := p.Allocate()
		held = append(held, a)
	}
	p.Release(held[1])
	p.AllocateStatic(netip.MustParseAddr("10.0.9.200"))
	store.Save("web", p.State())

	// Through JSON, as the agent's file store would.
	b, err := json.Marshal(store["web"])
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	q, _ := NewPool("web", cfg)
	if err := q.Restore(st); err != nil {
		t.Fatal(err)
	}
	for i, a := range held {
		if i == 1 {
			continue
		}
		if !q.InUse(a) {
			t.Errorf("%v in use before the restart, free after", a)
		}
	}
	if !q.InUse(netip.MustParseAddr("10.0.9.200")) {
		t.Error("the static address outside the range was lost")
	}
	if a, _ := q.Allocate(); a != netip.MustParseAddr("10.0.9.8") {
		t.Errorf("next after the restart: %v, want 10.0.9.8 (next-fit goes on)", a)
	}
	// A state that no longer fits is an error, not a silent loss.
	small, _ := NewPool("web", PoolConfig{Subnet: "10.0.9.0/28"})
	if err := small.Restore(st); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("restoring 10.0.9.200 into a /28: %v", err)
	}
}
