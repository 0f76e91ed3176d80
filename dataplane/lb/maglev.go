// Package lb holds the service load balancer's choice of task: Maglev
// consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016).
//
// A Maglev table is a lookup table of M slots (a prime), each naming one
// backend. Every backend walks its own permutation of the slots, fixed by
// its name alone, and the backends take turns claiming the next free slot
// of their permutation until all are taken. So every backend holds M/N
// slots (±1), any host builds the same table from the same set of names,
// and when a backend joins or leaves only about 1/N of the slots change
// hands: the flows that hashed to the others keep their backend.
//
// Building is control-plane work (it allocates); Lookup is one array
// read, for the data plane.
package lb

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// M is the number of slots of a table: a prime well above 100 times the
// number of tasks a service is expected to have, as the paper advises, so
// that the shares stay within about 1 % of each other.
const M = 16381

// MaxBackends is the most backends a table holds (slot values are uint16).
const MaxBackends = 4096

// Maglev is a built table: immutable, safe for any number of readers.
type Maglev struct {
	slots [M]uint16
	n     int
}

// NewMaglev builds the table of backends, named by stable, distinct
// names (vxnet uses the task's address): the same names give the same
// table, in any order.
func NewMaglev(names []string) (*Maglev, error) {
	if len(names) == 0 {
		return nil, errors.New("lb: a table needs at least one backend")
	}
	if len(names) > MaxBackends {
		return nil, fmt.Errorf("lb: %d backends, at most %d", len(names), MaxBackends)
	}
	// The backends take turns in the order of their names, so the
	// order they are given in changes nothing.
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	for i := 1; i < len(order); i++ {
		if names[order[i]] == names[order[i-1]] {
			return nil, fmt.Errorf("lb: backend %q named twice", names[order[i]])
		}
	}
	offset := make([]uint32, len(order))
	skip := make([]uint32, len(order))
	for i, b := range order {
		h := fnv64a(names[b])
		offset[i] = uint32(h % M)
		skip[i] = uint32(mix64(h)%(M-1)) + 1
	}
	var filled [M]bool
	next := make([]uint32, len(order))
	m := &Maglev{n: len(order)}
	for taken := 0; ; {
		for i, b := range order {
			c := (offset[i] + next[i]*skip[i]) % M
			for filled[c] {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % M
			}
			m.slots[c] = uint16(b)
			filled[c] = true
			next[i]++
			if taken++; taken == M {
				return m, nil
			}
		}
	}
}

// Lookup returns the backend for a flow hash: its index in the names
// NewMaglev was given.
func (m *Maglev) Lookup(hash uint32) int { return int(m.slots[hash%M]) }

// Len is the number of backends.
func (m *Maglev) Len() int { return m.n }

// Shares counts the slots of each backend, by its index in the names.
func (m *Maglev) Shares() []int {
	s := make([]int, m.n)
	for _, b := range m.slots {
		s[b]++
	}
	return s
}

// fnv64a is FNV-1a, 64 bits: stable across hosts, releases and
// architectures, which a table every host must build alike needs.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is SplitMix64's finalizer: a second hash of the name, independent
// enough of the first for the skip.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
