package kvs

import "time"

// Forgetting a host. A failed owner's rows are kept for its return until
// ReapAfter; an operator who knows it will not return forgets it (vxnet
// cluster forget), and every node then drops its rows at once, as the
// reap would. The rule travels as a row of a cluster table the caller
// keeps (the agent's), and each node hands every rule it sees to its
// store (SetForgotten): the store needs nothing from the network to
// apply one, and nodes apply the same rules whatever order they came in.
//
// A rule names the run of the owner that was down (its epoch, as its
// writes carry it) and the Lamport time of the forget:
//
//   - the rows of that run are dropped when the owner is failed here, at
//     once or whenever it fails later (a node that still saw it alive);
//     a later run, the host restarted, is not forgotten;
//   - in a FirstClaim table, the owner's rows claimed before the forget
//     lose to every row claimed otherwise (its own included: a host that
//     comes back sees that its name went): a name taken while the host
//     was forgotten stays with the newer row if the host comes back, as
//     it does for a host back after the reap. A row the host writes anew
//     after the forget competes as any.

// ForgetRule is one forgotten run of an owner.
type ForgetRule struct {
	Epoch uint64 // the run whose rows go (Entry.Epoch of its writes)
	Clock uint64 // the forget's Lamport time: rows claimed earlier lose to any other
}

// forgottenClaim is added to a claim its owner made before it was
// forgotten: past every claim a node makes (maxCounter), such a row loses
// to every row claimed otherwise. Never stored, never sent: only readers'
// copies of a row show it (outLocked).
const forgottenClaim = maxCounter

// claimOfLocked is the claim by which e's row competes (claimWinnerLocked).
func (s *store) claimOfLocked(e *Entry) uint64 {
	if r, ok := s.forgotten[e.Owner]; ok && e.Claim != 0 && e.Claim < r.Clock {
		return forgottenClaim + e.Claim
	}
	return e.Claim
}

// outLocked is a reader's copy of a row: its claim as it competes.
func (s *store) outLocked(e *Entry) Entry {
	c := *e
	if s.firstClaim[c.Table] {
		c.Claim = s.claimOfLocked(e)
	}
	return c
}

// setForgotten installs the rules, every one the caller knows, by owner,
// and applies them.
func (s *store) setForgotten(rules map[string]ForgetRule, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []rowKey
	for name, o := range s.owners {
		_, was := s.forgotten[name]
		if _, is := rules[name]; was || is {
			keys = append(keys, s.keysOfLocked(o)...)
		}
	}
	s.changeLocked(keys, func() {
		s.forgotten = make(map[string]ForgetRule, len(rules))
		for name, r := range rules {
			s.forgotten[name] = r
		}
	})
	for name := range rules {
		if o := s.owners[name]; o != nil {
			s.forgetLocked(name, o, now)
		}
	}
}

// forgetLocked drops a failed owner's rows if a rule names its run.
func (s *store) forgetLocked(name string, o *owner, now time.Time) bool {
	r, ok := s.forgotten[name]
	if !ok || name == s.self || o.status != ownerFailed || r.Epoch == 0 || o.epoch != r.Epoch {
		return false
	}
	s.withdrawLocked(o, now)
	s.stats.OwnersForgotten++
	return true
}

// downRun returns the run of an owner that is down (as down lists it),
// for a rule that forgets it.
func (s *store) downRun(name string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.owners[name]
	if o == nil || name == s.self || o.status != ownerFailed || o.epoch == 0 {
		return 0, false
	}
	for sk := range o.slots {
		if !s.cluster[sk.table] && !s.slots[sk].Deleted {
			return o.epoch, true
		}
	}
	return 0, false
}

// SetForgotten implements Tables.
func (g *Gossip) SetForgotten(rules map[string]ForgetRule) { g.st.setForgotten(rules, time.Now()) }

// DownRun implements Tables.
func (g *Gossip) DownRun(name string) (uint64, bool) { return g.st.downRun(name) }

// SetForgotten implements Tables: nothing to do, as a host's rows go with
// its lease.
func (e *Etcd) SetForgotten(map[string]ForgetRule) {}

// DownRun implements Tables: no host is down in etcd's sense (see Down).
func (e *Etcd) DownRun(string) (uint64, bool) { return 0, false }
