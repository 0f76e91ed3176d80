package seal

import (
	"math/rand/v2"
	"testing"
)

// TestWindow_model checks the window against a plain model (a set of the
// counters taken and the newest) over random streams: reordered,
// duplicated, jumping ahead.
func TestWindow_model(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		var w Window
		seen := make(map[uint64]bool)
		var newest uint64 // highest taken + 1
		next := uint64(0)
		for i := 0; i < 20000; i++ {
			var c uint64
			switch r.IntN(10) {
			case 0: // a duplicate of something recent
				if next > 0 {
					c = next - 1 - r.Uint64N(min(next, 3*ReplayWindow))
				}
			case 1: // a jump ahead
				next += r.Uint64N(3 * ReplayWindow)
				c = next
				next++
			case 2, 3: // reordered: a little behind
				if next > 0 {
					c = next - 1 - r.Uint64N(min(next, ReplayWindow+64))
				}
			default:
				c = next
				next++
			}
			want := !seen[c] && (newest <= ReplayWindow+1 || c >= newest-1-ReplayWindow)
			if got := w.Fresh(c); got != want {
				t.Fatalf("seed %d step %d: Fresh(%d) = %v, want %v (newest %d)", seed, i, c, got, want, newest)
			}
			if got := w.Mark(c); got != want {
				t.Fatalf("seed %d step %d: Mark(%d) = %v, want %v (newest %d)", seed, i, c, got, want, newest)
			}
			if want {
				seen[c] = true
				newest = max(newest, c+1)
			}
		}
	}
}

func TestWindow_edges(t *testing.T) {
	var w Window
	if !w.Mark(0) || w.Mark(0) {
		t.Fatal("counter 0: first Mark must take it, the second refuse it")
	}
	big := uint64(MaxCounter - 1)
	if !w.Mark(big) || w.Mark(big) {
		t.Fatal("the largest counter: first Mark must take it, the second refuse it")
	}
	if w.Fresh(big-ReplayWindow-1) || !w.Fresh(big-ReplayWindow) {
		t.Fatal("window edge below the largest counter")
	}
}
