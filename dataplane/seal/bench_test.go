package seal

import (
	"fmt"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	for _, su := range suites {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%dB", su, n), func(b *testing.B) {
				a, _ := pairKeys(b, su)
				var s Scratch
				d := datagram(1, make([]byte, n))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := a.Send.Seal(&s, d, uint64(i)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, su := range suites {
		for _, n := range []int{64, 1400} {
			b.Run(fmt.Sprintf("%s/%dB", su, n), func(b *testing.B) {
				a, r := pairKeys(b, su)
				var s Scratch
				sealed := seal(b, a.Send, &s, datagram(1, make([]byte, n)))
				work := make([]byte, len(sealed))
				h, _ := ParseHeader(sealed)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(work, sealed)
					r.Recv.window = Window{}
					if _, err := r.Recv.Open(&s, work, h); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestSealOpen_zeroAllocs: sealing and opening allocate nothing, with
// either suite.
func TestSealOpen_zeroAllocs(t *testing.T) {
	for _, su := range suites {
		a, r := pairKeys(t, su)
		var s Scratch
		d := datagram(1, make([]byte, 1400))
		sealed := seal(t, a.Send, &s, append([]byte(nil), d...)[:len(d):len(d)+TagLen])
		work := make([]byte, len(sealed))
		ctr := uint64(1)
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := a.Send.Seal(&s, d, ctr); err != nil {
				t.Fatal(err)
			}
			ctr++
			copy(work, sealed)
			h, err := ParseHeader(work)
			if err != nil {
				t.Fatal(err)
			}
			r.Recv.window = Window{}
			if _, err := r.Recv.Open(&s, work, h); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%s: %v allocations per seal and open", su, allocs)
		}
	}
}
