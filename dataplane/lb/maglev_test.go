package lb

import (
	"fmt"
	"slices"
	"testing"
)

func taskNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("10.0.%d.%d", i/200, 2+i%200)
	}
	return s
}

// TestMaglev_spread: every backend holds M/N slots give or take a few
// percent, for the sizes a service has.
func TestMaglev_spread(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 10, 50, 100} {
		m, err := NewMaglev(taskNames(n))
		if err != nil {
			t.Fatal(err)
		}
		shares := m.Shares()
		lo, hi := slices.Min(shares), slices.Max(shares)
		ideal := float64(M) / float64(n)
		t.Logf("%3d tasks: slots per task %d..%d (ideal %.1f, spread %.2f%%)", n, lo, hi, ideal, 100*float64(hi-lo)/ideal)
		if float64(hi-lo) > 0.05*ideal+1 {
			t.Errorf("%d tasks: shares %d..%d, ideal %.1f", n, lo, hi, ideal)
		}
	}
}

// moved is the share of slots whose backend (by name) differs.
func moved(a, b *Maglev, an, bn []string) float64 {
	n := 0
	for i := range a.slots {
		if an[a.slots[i]] != bn[b.slots[i]] {
			n++
		}
	}
	return float64(n) / M
}

// TestMaglev_disruption: when a task leaves, its own slots move and
// hardly any other; when one joins, about 1/(N+1) of the slots move to
// it. The minimum is 1/(N+1) either way; Maglev stays within two
// points of it (the paper's figure 11: it trades a little disruption for
// an even spread).
func TestMaglev_disruption(t *testing.T) {
	for _, n := range []int{3, 5, 10, 50} {
		names := taskNames(n + 1)
		full, _ := NewMaglev(names)
		less := slices.Delete(slices.Clone(names), n/2, n/2+1)
		part, _ := NewMaglev(less)
		got := moved(full, part, names, less)
		minimum := 1 / float64(n+1)
		t.Logf("%2d tasks: one of %d leaves: %.2f%% of flows move (minimum %.2f%%); one joins: the same in reverse",
			n, n+1, 100*got, 100*minimum)
		if got < minimum-1e-9 || got > minimum+0.02 {
			t.Errorf("%d+1 tasks: %.4f moved, minimum %.4f", n, got, minimum)
		}
		// Slots of tasks that stay rarely change hands (each is a flow
		// that would move for no reason, were it not in a flow table).
		stray := 0
		for i := range full.slots {
			was, now := names[full.slots[i]], less[part.slots[i]]
			if was != names[n/2] && was != now {
				stray++
			}
		}
		t.Logf("%2d tasks: %d of %d slots of staying tasks changed hands (%.2f%%)", n, stray, M, 100*float64(stray)/M)
		if float64(stray) > 0.02*M {
			t.Errorf("%d tasks: %d slots of staying tasks moved", n, stray)
		}
	}
}

// TestMaglev_sameEverywhere: the order the names come in does not matter,
// and Lookup answers by the caller's index.
func TestMaglev_sameEverywhere(t *testing.T) {
	names := taskNames(7)
	rev := slices.Clone(names)
	slices.Reverse(rev)
	a, _ := NewMaglev(names)
	b, _ := NewMaglev(rev)
	for h := uint32(0); h < 3*M; h += 7 {
		if names[a.Lookup(h)] != rev[b.Lookup(h)] {
			t.Fatalf("hash %d: %s vs %s", h, names[a.Lookup(h)], rev[b.Lookup(h)])
		}
	}
	if a.Len() != 7 {
		t.Errorf("Len %d", a.Len())
	}
}

func TestMaglev_badInput(t *testing.T) {
	if _, err := NewMaglev(nil); err == nil {
		t.Error("no backends taken")
	}
	if _, err := NewMaglev([]string{"a", "b", "a"}); err == nil || err.Error() != `lb: backend "a" named twice` {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := NewMaglev(taskNames(MaxBackends + 1)); err == nil {
		t.Error("too many backends taken")
	}
}

func TestMaglev_lookupAllocatesNothing(t *testing.T) {
	m, _ := NewMaglev(taskNames(3))
	h := uint32(1)
	if n := testing.AllocsPerRun(1000, func() { h = h*2654435761 + uint32(m.Lookup(h)) }); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}

func BenchmarkMaglev_build(b *testing.B) {
	for _, n := range []int{3, 100} {
		names := taskNames(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewMaglev(names); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMaglev_lookup(b *testing.B) {
	m, _ := NewMaglev(taskNames(10))
	h := uint32(1)
	for b.Loop() {
		h = h*2654435761 + uint32(m.Lookup(h))
	}
}
