package ipam

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"time"
)

// State is what a host persists of a pool so that, restarted, it reuses no
// address still in use: the addresses handed out and where next-fit
// continues.
type State struct {
	Allocated []netip.Addr `json:"allocated"`
	Next      netip.Addr   `json:"next,omitzero"`
}

// Store keeps pools' states across restarts. The package declares it; the
// agent backs it with its local file store.
type Store interface {
	// Load returns the saved state of a network's pool; ok is false if
	// there is none.
	Load(network string) (st State, ok bool, err error)
	// Save replaces the saved state.
	Save(network string, st State) error
}

// LeaseLog is an optional capability of a Store: it records one lease
// taken or given back instead of the whole state each time, which costs
// O(1) where Save costs O(leases). Global uses it when the Store has it.
type LeaseLog interface {
	Leased(network string, a netip.Addr) error
	Released(network string, a netip.Addr) error
}

// WithdrawalLog is an optional capability of a Store: it keeps the subnet
// claims Global is still to withdraw (those a failed creation may have
// left in the table, see Global.CreateNetwork), so that an agent restarted
// before such a claim showed withdraws it still. Global saves the whole
// list after every change.
type WithdrawalLog interface {
	PendingWithdrawals() ([]PendingWithdrawal, error)
	SavePendingWithdrawals([]PendingWithdrawal) error
}

// PendingWithdrawal is one claim to withdraw once the table shows it.
type PendingWithdrawal struct {
	Network string `json:"network"`
	// Claim is the claim's row value, as it was written.
	Claim json.RawMessage `json:"claim"`
	// Since is when the creation failed, or when the host restarted
	// since: a claim the table has not shown within 10 minutes of it is
	// forgotten (its write never landed).
	Since time.Time `json:"since"`
}

// State returns the pool's allocations, sorted, and its cursor.
func (p *Pool) State() State {
	var st State
	for w, word := range p.alloc.words {
		for word != 0 { // only the set bits: a /64 range is 2^24 of them
			off := uint64(w)*64 + uint64(bits.TrailingZeros64(word))
			word &= word - 1
			if off >= p.alloc.size {
				break
			}
			if a := p.alloc.addr(off); p.InUse(a) {
				st.Allocated = append(st.Allocated, a)
			}
		}
	}
	for a := range p.outside {
		st.Allocated = append(st.Allocated, a)
	}
	sort.Slice(st.Allocated, func(i, j int) bool { return st.Allocated[i].Less(st.Allocated[j]) })
	st.Next = p.alloc.addr(p.alloc.cursor)
	return st
}

// Restore takes back a saved state into a freshly made pool. An address
// the pool cannot hold (outside the subnet, or reserved since) is an error
// naming it: the caller must not silently forget an address in use.
func (p *Pool) Restore(st State) error {
	for _, a := range st.Allocated {
		if err := p.AllocateStatic(a); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if off, ok := p.alloc.offset(st.Next); ok {
		p.alloc.cursor = off
	}
	return nil
}

// MemStore is a Store in memory, for tests.
type MemStore map[string]State

// Load implements Store.
func (m MemStore) Load(network string) (State, bool, error) {
	st, ok := m[network]
	return st, ok, nil
}

// Save implements Store.
func (m MemStore) Save(network string, st State) error {
	m[network] = st
	return nil
}
