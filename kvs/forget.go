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
//   - the rows of that run, or an earlier one this node knows, are
//     dropped where the owner failed before the rule reached this node,
//     or within ForgetWindow after (a node that noticed the failure
//     late; every time here is this node's own clock); never for a
//     failure after the owner was seen alive again since the rule came
//     (it was only hung or cut off), or after the window, nor for a later
//     run (it restarted);
//   - in a FirstClaim table, the owner's rows claimed before the forget
//     lose to every row claimed otherwise (its own included: a host that
//     comes back sees that its name went): a name taken while the host
//     was forgotten stays with the newer row if the host comes back, as
//     it does for a host back after the reap. Once back and caught up,
//     the host claims its rows anew (ReclaimForgotten): from then on they
//     compete as any.

// ForgetRule is one forgotten run of an owner.
type ForgetRule struct {
	Epoch uint64 // the run whose rows go (Entry.Epoch of its writes)
	Clock uint64 // the forget's Lamport time: rows claimed earlier lose to any other
}

// ForgetWindow is how long after a rule reaches a node a failure of its
// owner noticed only then still drops its rows (nodes notice a failure
// seconds apart).
const ForgetWindow = time.Minute

// forgetState is what a node knows of a rule: since when, and whether
// the owner was seen alive after it came.
type forgetState struct {
	ForgetRule
	came   time.Time
	spared bool
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
		old := s.forgotten
		s.forgotten = make(map[string]*forgetState, len(rules))
		for name, r := range rules {
			st := old[name]
			if st == nil || st.ForgetRule != r {
				st = &forgetState{ForgetRule: r, came: now}
			}
			s.forgotten[name] = st
			s.witnessLocked(r.Clock) // a claim made here from now on is past it
		}
	})
	for name := range rules {
		if o := s.owners[name]; o != nil {
			s.forgetLocked(name, o, now)
		}
	}
}

// forgetLocked drops a failed owner's rows if a rule names its run, or a
// later one than this node has seen of it (epochs are start times: one
// that missed the owner's last restart still forgets the run that was
// down), it failed before the rule came or within ForgetWindow after,
// and it was not seen alive since the rule came.
func (s *store) forgetLocked(name string, o *owner, now time.Time) bool {
	r, ok := s.forgotten[name]
	if !ok || name == s.self || o.status != ownerFailed || r.Epoch == 0 || o.epoch == 0 || o.epoch > r.Epoch || r.spared || o.since.After(r.came.Add(ForgetWindow)) {
		return false
	}
	s.withdrawLocked(o, now)
	o.forgotten = true
	s.stats.OwnersForgotten++
	return true
}

// isForgotten reports whether an owner's rows were dropped by a rule and
// it has not been alive since.
func (s *store) isForgotten(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.owners[name]
	_, rule := s.forgotten[name]
	return o != nil && rule && o.forgotten && o.status == ownerGone
}

// reclaimForgotten claims this node's rows anew where a rule naming this
// node makes them lose (claimed before the forget): a host
// back after it was forgotten competes for its names as one back after
// the reap does, from now on. It returns the rows written.
func (s *store) reclaimForgotten() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.forgotten[s.self]
	if !ok {
		return nil
	}
	var keys []slotKey
	for sk := range s.owners[s.self].slots {
		if cur := s.slots[sk]; s.firstClaim[sk.table] && !cur.Deleted && cur.Claim != 0 && cur.Claim < r.Clock {
			keys = append(keys, sk)
		}
	}
	var out []Entry
	for _, sk := range keys {
		cur := s.slots[sk]
		e := *cur
		e.Value = append([]byte(nil), cur.Value...)
		e.Version = s.tickLocked()
		e.Claim = e.Version
		s.stampLocked(&e)
		s.setLocked(e)
		s.stats.LocalWrites++
		out = append(out, e)
	}
	return out
}

// rawClaim is the claim of this node's slot of a row, as written.
func (s *store) rawClaim(table, key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.slots[slotKey{table, key, s.self}]; e != nil {
		return e.Claim
	}
	return 0
}

// downRun returns the run of an owner that is down (as down lists it),
// for a rule that forgets it.
func (s *store) downRun(name string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.owners[name]; o != nil && o.epoch != 0 && s.isDownLocked(name, o) {
		return o.epoch, true
	}
	return 0, false
}

// SetForgotten implements Tables.
func (g *Gossip) SetForgotten(rules map[string]ForgetRule) { g.st.setForgotten(rules, time.Now()) }

// DownRun implements Tables.
func (g *Gossip) DownRun(name string) (uint64, bool) { return g.st.downRun(name) }

// Forgotten implements Tables.
func (g *Gossip) Forgotten(name string) bool { return g.st.isForgotten(name) }

// ReclaimForgotten implements Tables.
func (g *Gossip) ReclaimForgotten() int {
	if g.closed() {
		return 0
	}
	rows := g.st.reclaimForgotten()
	for _, e := range rows {
		g.originate(e)
	}
	return len(rows)
}

// SetForgotten implements Tables: nothing to do, as a host's rows go with
// its lease.
func (e *Etcd) SetForgotten(map[string]ForgetRule) {}

// DownRun implements Tables: no host is down in etcd's sense (see Down).
func (e *Etcd) DownRun(string) (uint64, bool) { return 0, false }

// Forgotten implements Tables: none (see SetForgotten).
func (e *Etcd) Forgotten(string) bool { return false }

// ReclaimForgotten implements Tables: nothing to reclaim.
func (e *Etcd) ReclaimForgotten() int { return 0 }
