package kvs

import (
	"encoding/binary"
	"hash/fnv"
	"sort"
	"sync"
	"time"
)

// rowKey names a row as readers see it.
type rowKey struct{ table, key string }

// slotKey names one owner's version of a row. Every owner writes its own
// slot, and readers see the live slot with the greatest (version, owner):
// a merge that does not depend on the order messages arrive in, and in
// which an owner can only ever delete what it wrote (moby/moby#50342).
type slotKey struct{ table, key, owner string }

type ownerStatus int

const (
	ownerAlive  ownerStatus = iota
	ownerFailed             // declared dead, or never seen as a member; rows hidden after the grace period
	ownerGone               // left, or failed for longer than ReapAfter; rows dropped and refused
)

type owner struct {
	status ownerStatus
	since  time.Time // when it failed or went
	hidden bool
	// forgotten: its rows went by a forget rule (forgetLocked), and it
	// has not been alive since.
	forgotten bool
	// sawFail: failure detection declared it dead after this node knew
	// it alive (not an owner known only by rows from before).
	sawFail bool
	slots   map[slotKey]struct{}
	digest  ownerDigest

	// The owner's write stream, as far as this node has seen it: in run
	// epoch, every write up to seq have, and these beyond.
	hash  uint32
	epoch uint64
	have  uint64
	above map[uint64]struct{}
}

// timings are the store's clocks, from Config.
type timings struct {
	grace, reapAfter, tombstoneTTL time.Duration
}

// store is the replicated state of one node, without any networking: every
// method is a state transition plus the events it causes, so it can be
// tested exhaustively. Safe for concurrent use.
type store struct {
	self string
	t    timings
	// isMember reports whether a node is a live cluster member; nil means
	// every owner is taken as alive until told otherwise. Called with mu
	// held: it must not call back into the store.
	isMember func(name string) bool

	mu       sync.Mutex
	clock    uint64
	epoch    uint64 // this node's run
	seq      uint64 // this node's writes in this run
	slots    map[slotKey]*Entry
	byKey    map[rowKey][]*Entry // the slots of each row
	owners   map[string]*owner
	watchers []*watcher
	stats    Stats

	// Table kinds, from Config; set before the store is used.
	cluster    map[string]bool // rows of the cluster (Config.ClusterTables)
	adopt      bool            // take own rows back (Config.AdoptOwnRows)
	firstClaim map[string]bool // the first claim wins (Config.FirstClaim)

	// forgotten are the runs of owners forgotten (setForgotten), by owner.
	forgotten map[string]*forgetState
}

func newStore(self string, t timings, clock, epoch uint64) *store {
	s := &store{self: self, t: t, clock: clock, epoch: epoch,
		slots: map[slotKey]*Entry{}, byKey: map[rowKey][]*Entry{}, owners: map[string]*owner{}}
	s.ownerLocked(self).epoch = epoch
	return s
}

// ownerHash names an owner in sync vectors in four bytes.
func ownerHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

func (s *store) ownerLocked(name string) *owner {
	o := s.owners[name]
	if o == nil {
		o = &owner{slots: map[slotKey]struct{}{}, digest: ownerDigest{Owner: name}, hash: ownerHash(name)}
		s.owners[name] = o
	}
	return o
}

func (s *store) tickLocked() uint64 { s.clock++; return s.clock }

func (s *store) witnessLocked(v uint64) {
	if v > s.clock {
		s.clock = v
	}
}

func rowHash(e *Entry) uint64 {
	h := fnv.New64a()
	h.Write([]byte(e.Table))
	h.Write([]byte{0})
	h.Write([]byte(e.Key))
	h.Write([]byte{0})
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:], e.Version)
	if e.Deleted {
		b[8] = 1
	}
	h.Write(b[:])
	h.Write(e.Value) // two copies at one version with different values must differ
	return h.Sum64()
}

// winnerLocked is the slot readers see for a row, or nil.
func (s *store) winnerLocked(k rowKey) *Entry {
	if s.cluster[k.table] {
		return s.clusterWinnerLocked(k)
	}
	if s.firstClaim[k.table] {
		return s.claimWinnerLocked(k)
	}
	var best *Entry
	for _, e := range s.byKey[k] {
		if e.Deleted || s.owners[e.Owner].hidden {
			continue
		}
		if best == nil || e.Version > best.Version || (e.Version == best.Version && e.Owner > best.Owner) {
			best = e
		}
	}
	return best
}

// clusterWinnerLocked: of every write of a cluster row, whoever wrote it and
// whether or not the writer is alive, the greatest (version, owner); no
// row if that is a tombstone.
func (s *store) clusterWinnerLocked(k rowKey) *Entry {
	var best *Entry
	for _, e := range s.byKey[k] {
		if best == nil || e.Version > best.Version || (e.Version == best.Version && (e.Owner > best.Owner ||
			(e.Owner == best.Owner && e.Deleted))) {
			best = e
		}
	}
	if best == nil || best.Deleted {
		return nil
	}
	return best
}

// claimWinnerLocked: of the visible live slots, the first claimed.
func (s *store) claimWinnerLocked(k rowKey) *Entry {
	var best *Entry
	for _, e := range s.byKey[k] {
		if e.Deleted || s.owners[e.Owner].hidden {
			continue
		}
		if best == nil {
			best = e
			continue
		}
		if c, bc := s.claimOfLocked(e), s.claimOfLocked(best); c < bc || (c == bc && e.Owner < best.Owner) {
			best = e
		}
	}
	return best
}

// changeLocked runs f, which may change the rows keys name, and tells watchers
// what readers see change.
func (s *store) changeLocked(keys []rowKey, f func()) {
	before := make([]*Entry, len(keys))
	for i, k := range keys {
		before[i] = s.winnerLocked(k)
	}
	f()
	for i, k := range keys {
		after := s.winnerLocked(k)
		switch {
		case after != nil && after != before[i]:
			s.notifyLocked(Event{Type: EventPut, Entry: s.outLocked(after)})
		case after == nil && before[i] != nil:
			gone := s.outLocked(before[i])
			gone.Deleted = true
			s.notifyLocked(Event{Type: EventDelete, Entry: gone})
		}
	}
}

// setLocked stores e in its owner's slot, keeping indexes, digests and watchers.
func (s *store) setLocked(e Entry) {
	s.changeLocked([]rowKey{{e.Table, e.Key}}, func() {
		sk := slotKey{e.Table, e.Key, e.Owner}
		s.unslotLocked(sk)
		ne := &e
		s.slots[sk] = ne
		rk := rowKey{e.Table, e.Key}
		s.byKey[rk] = append(s.byKey[rk], ne)
		o := s.ownerLocked(e.Owner)
		o.slots[sk] = struct{}{}
		o.digest.Rows++
		o.digest.Hash ^= rowHash(ne)
	})
}

// unslotLocked removes a slot from every index; the caller tells watchers.
func (s *store) unslotLocked(sk slotKey) {
	old := s.slots[sk]
	if old == nil {
		return
	}
	delete(s.slots, sk)
	rk := rowKey{sk.table, sk.key}
	list := s.byKey[rk]
	for i, e := range list {
		if e == old {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byKey, rk)
	} else {
		s.byKey[rk] = list
	}
	o := s.owners[sk.owner]
	delete(o.slots, sk)
	o.digest.Rows--
	o.digest.Hash ^= rowHash(old)
}

// put writes this node's slot of a row.
func (s *store) put(table, key string, value []byte) Entry {
	return s.putClaimed(table, key, value, 0)
}

// putClaimed is put for a row this node persisted and puts back after a
// restart: in a FirstClaim table the row keeps its live slot's claim, or
// the claim it had if smaller (not past the clock), so that a row claimed
// before the restart still wins over one another host claimed while this
// one was down; claim 0 adds nothing to that.
func (s *store) putClaimed(table, key string, value []byte, claim uint64) Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Entry{Table: table, Key: key, Value: append([]byte(nil), value...), Owner: s.self, Version: s.tickLocked()}
	if s.firstClaim[table] {
		e.Claim = e.Version
		if cur := s.slots[slotKey{table, key, s.self}]; cur != nil && !cur.Deleted {
			e.Claim = cur.Claim
		}
		if claim != 0 && claim < e.Claim {
			e.Claim = claim
		}
	}
	s.stampLocked(&e)
	s.setLocked(e)
	s.stats.LocalWrites++
	return e
}

// restore puts back a persisted row of a cluster table as it was.
func (s *store) restore(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.witnessLocked(e.Version)
	if cur := s.slots[slotKey{e.Table, e.Key, e.Owner}]; cur != nil && !e.newer(cur) {
		return
	}
	e.Epoch, e.Seq = 0, 0 // not a place in anyone's stream of this run
	s.setLocked(e)
}

// del writes a tombstone over this node's slot of a row.
func (s *store) del(table, key string, now time.Time) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := s.slots[slotKey{table, key, s.self}]
	if s.cluster[table] {
		// Anyone's to delete: a tombstone newer than every write seen.
		if s.winnerLocked(rowKey{table, key}) == nil {
			return Entry{}, ErrNotFound
		}
	} else if mine == nil || mine.Deleted {
		if s.winnerLocked(rowKey{table, key}) != nil {
			return Entry{}, ErrNotOwner
		}
		return Entry{}, ErrNotFound
	}
	e := Entry{Table: table, Key: key, Owner: s.self, Version: s.tickLocked(), Deleted: true, DeletedAt: now.UnixNano()}
	s.stampLocked(&e)
	s.setLocked(e)
	s.stats.LocalWrites++
	return e, nil
}

// applyResult says what apply did with a row from another node.
type applyResult int

const (
	applyStale     applyResult = iota // already known, superseded, or an expired tombstone
	applyChanged                      // stored: pass it on
	applyRejected                     // refused: its owner is gone
	applyReclaimed                    // a stale copy of our own row: answered with a newer one
)

// maxEpochAhead bounds how far in the future an owner's epoch (its start
// time in nanoseconds) may claim to be before its stream is ignored.
const maxEpochAhead = 24 * time.Hour

// apply merges a row received from another node. For applyReclaimed the
// returned entry is this node's answer, to be passed on.
func (s *store) apply(e Entry, now time.Time) (applyResult, Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.witnessLocked(e.Version)
	if e.Owner == s.self {
		return s.reclaimLocked(e, now)
	}
	o := s.owners[e.Owner]
	if o == nil {
		o = s.ownerLocked(e.Owner)
		if s.isMember != nil && !s.isMember(e.Owner) {
			// Not a member (dead before we joined, say): keep its rows
			// hidden, as the nodes that saw it fail do.
			o.status, o.since, o.hidden = ownerFailed, now, true
		}
	}
	if o.status == ownerGone && !s.cluster[e.Table] {
		s.stats.RejectedGone++
		return applyRejected, Entry{}
	}
	if o.status != ownerGone && e.Epoch <= uint64(now.Add(maxEpochAhead).UnixNano()) {
		s.markLocked(o, e.Epoch, e.Seq)
	}
	cur := s.slots[slotKey{e.Table, e.Key, e.Owner}]
	if (cur != nil && !e.newer(cur)) || (e.Deleted && !s.cluster[e.Table] && now.UnixNano()-e.DeletedAt >= int64(s.t.tombstoneTTL)) {
		s.stats.Stale++
		return applyStale, Entry{}
	}
	s.setLocked(e)
	s.stats.Applied++
	return applyChanged, Entry{}
}

// reclaimLocked handles a copy of a row this node owns. What this node holds is
// the truth: a newer copy it does not hold is answered with a newer write of
// what it holds (a value, or a tombstone).
func (s *store) reclaimLocked(e Entry, now time.Time) (applyResult, Entry) {
	cur := s.slots[slotKey{e.Table, e.Key, s.self}]
	if s.cluster[e.Table] || (s.adopt && (cur == nil || e.newer(cur))) {
		// The cluster's row, not ours to answer for (or ours, being
		// rebuilt): a node that lost its state learns it back.
		if cur != nil && !e.newer(cur) {
			s.stats.Stale++
			return applyStale, Entry{}
		}
		s.setLocked(e)
		s.stats.Applied++
		return applyChanged, Entry{}
	}
	// A copy from an earlier run of this node at our version or above may
	// hold another value (a restart without its clock): re-assert ours.
	// (Not over a row adopted from an earlier run: there the later write
	// wins, as anywhere.)
	earlierRun := e.Epoch < s.epoch && cur != nil && cur.Epoch == s.epoch && e.Version >= cur.Version
	if cur != nil && !e.newer(cur) && !earlierRun {
		s.stats.Stale++
		return applyStale, Entry{}
	}
	if cur != nil && cur.Epoch != s.epoch {
		// Adopted, not written in this run: a newer write of its run
		// (a delete, say) is taken as it is.
		s.setLocked(e)
		s.stats.Applied++
		return applyChanged, Entry{}
	}
	if e.Deleted && (cur == nil || cur.Deleted) {
		// A tombstone of ours we lost: take it as is.
		s.setLocked(e)
		s.stats.Applied++
		return applyChanged, Entry{}
	}
	mine := Entry{Table: e.Table, Key: e.Key, Owner: s.self, Deleted: true, DeletedAt: now.UnixNano()}
	if cur != nil && !cur.Deleted {
		mine = *cur
	}
	mine.Version = s.tickLocked()
	s.stampLocked(&mine)
	s.setLocked(mine)
	s.stats.Reclaimed++
	return applyReclaimed, mine
}

// keysOfLocked returns the rows an owner has slots in.
func (s *store) keysOfLocked(o *owner) []rowKey {
	keys := make([]rowKey, 0, len(o.slots))
	for sk := range o.slots {
		keys = append(keys, rowKey{sk.table, sk.key})
	}
	return keys
}

// setMembership installs isMember. Owners already known (from persisted
// cluster rows) that are not members are taken as failed now, as nodes
// never seen as members are: their host rows stay hidden until they join,
// and go after ReapAfter.
func (s *store) setMembership(isMember func(string) bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isMember = isMember
	for name, o := range s.owners {
		if name != s.self && o.status == ownerAlive && !isMember(name) {
			s.changeLocked(s.keysOfLocked(o), func() { o.status, o.since, o.hidden = ownerFailed, now, true })
		}
	}
}

// memberAlive: a node joined or came back; its hidden rows return.
func (s *store) memberAlive(name string) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ownerLocked(name)
	s.changeLocked(s.keysOfLocked(o), func() {
		o.status, o.hidden, o.forgotten, o.sawFail = ownerAlive, false, false, false
	})
	if r := s.forgotten[name]; r != nil {
		r.spared = true // only hung or cut off: a later failure is an ordinary one
	}
}

// memberFailed: failure detection declared a node dead.
func (s *store) memberFailed(name string, now time.Time) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ownerLocked(name)
	if o.status == ownerAlive {
		o.status, o.since, o.sawFail = ownerFailed, now, true
		s.forgetLocked(name, o, now)
	}
}

// memberLeft: a node left gracefully; its rows are withdrawn at once.
func (s *store) memberLeft(name string, now time.Time) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withdrawLocked(s.ownerLocked(name), now)
}

// withdrawLocked drops an owner's rows, but those of cluster tables; they are
// refused until it is alive again.
func (s *store) withdrawLocked(o *owner, now time.Time) {
	s.changeLocked(s.keysOfLocked(o), func() {
		for sk := range o.slots {
			if !s.cluster[sk.table] {
				s.unslotLocked(sk)
			}
		}
	})
	o.status, o.since, o.hidden = ownerGone, now, false
	o.epoch, o.have, o.above = 0, 0, nil
}

// expire runs the clocks: hides rows of owners failed for the grace
// period, forgets them after ReapAfter, and reaps tombstones TombstoneTTL
// after their owner wrote them (the same moment on every node, so a reaped
// tombstone is never handed back by a node that got it later).
func (s *store) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, o := range s.owners {
		if o.status != ownerFailed || s.forgetLocked(name, o, now) {
			continue
		}
		if !o.hidden && now.Sub(o.since) >= s.t.grace {
			s.changeLocked(s.keysOfLocked(o), func() { o.hidden = true })
		}
		if now.Sub(o.since) >= s.t.reapAfter {
			s.withdrawLocked(o, now)
			s.stats.OwnersReaped++
		}
	}
	for sk, e := range s.slots {
		if e.Deleted && !s.cluster[sk.table] && now.UnixNano()-e.DeletedAt >= int64(s.t.tombstoneTTL) {
			s.unslotLocked(sk) // a tombstone changes nothing readers see
			s.stats.TombstonesReaped++
		}
	}
}

// digests summarises the rows of every owner whose rows may be repaired.
func (s *store) digests() []ownerDigest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ownerDigest, 0, len(s.owners))
	for _, o := range s.owners {
		// A gone owner's slots are those of cluster tables, which stay.
		if o.digest.Rows > 0 {
			out = append(out, o.digest)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out
}

// differing returns the owners whose rows this node should send to a peer
// with digests theirs: those it holds rows of that the peer summarises
// differently or not at all.
func (s *store) differing(theirs []ownerDigest) []string {
	peer := make(map[string]ownerDigest, len(theirs))
	for _, d := range theirs {
		peer[d.Owner] = d
	}
	var out []string
	for _, d := range s.digests() {
		if p, ok := peer[d.Owner]; !ok || p != d {
			out = append(out, d.Owner)
		}
	}
	return out
}

// rowsOf returns copies of an owner's rows, tombstones included.
func (s *store) rowsOf(name string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.owners[name]
	if o == nil {
		return nil
	}
	out := make([]Entry, 0, len(o.slots))
	for sk := range o.slots {
		out = append(out, *s.slots[sk])
	}
	return out
}

// down returns every owner that has failed and has rows of its own kept
// for its return (not only cluster rows, which outlive any owner and
// make one that left and was never seen a member look failed), and
// since when.
func (s *store) down() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for name, o := range s.owners {
		if s.isDownLocked(name, o) {
			out[name] = o.since
		}
	}
	return out
}

// isDownLocked reports whether an owner is down as down lists it: failed,
// not this node, not forgotten, and either seen failing by this node (a
// host with no endpoints is down too) or with rows of its own kept. An
// owner known only by cluster rows (which outlive their writers: the
// creator of a network, gone long ago) is not.
func (s *store) isDownLocked(name string, o *owner) bool {
	if o.status != ownerFailed || name == s.self || o.forgotten {
		return false
	}
	if o.sawFail {
		return true
	}
	for sk := range o.slots {
		if !s.cluster[sk.table] && !s.slots[sk].Deleted {
			return true
		}
	}
	return false
}

// hiddenRows returns the live rows of table that readers do not see
// because their owners failed (not yet reaped).
func (s *store) hiddenRows(table string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for sk, e := range s.slots {
		if sk.table == table && !e.Deleted && s.owners[sk.owner].hidden {
			out = append(out, s.outLocked(e))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Key < out[j].Key || (out[i].Key == out[j].Key && out[i].Owner < out[j].Owner)
	})
	return out
}

// clusterEntries returns every slot of the cluster tables, tombstones
// included, to persist.
func (s *store) clusterEntries() []Entry {
	return s.slotsWhere(func(sk slotKey, _ *Entry) bool { return s.cluster[sk.table] })
}

// othersEntries returns the live rows of host tables other owners wrote.
func (s *store) othersEntries() []Entry {
	return s.slotsWhere(func(sk slotKey, e *Entry) bool {
		return !s.cluster[sk.table] && sk.owner != s.self && !e.Deleted
	})
}

// slotsWhere returns the slots keep takes, sorted by table, key and
// owner. keep is called with mu held.
func (s *store) slotsWhere(keep func(slotKey, *Entry) bool) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for sk, e := range s.slots {
		if keep(sk, e) {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Owner < b.Owner
	})
	return out
}

func (s *store) get(table, key string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.winnerLocked(rowKey{table, key}); e != nil {
		return s.outLocked(e), true
	}
	return Entry{}, false
}

// listLocked returns the visible rows of table ("" for all), sorted.
func (s *store) listLocked(table string) []Entry {
	var out []Entry
	for k := range s.byKey {
		if table != "" && k.table != table {
			continue
		}
		if e := s.winnerLocked(k); e != nil {
			out = append(out, s.outLocked(e))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (s *store) list(table string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked(table)
}

// digestAll is one digest of what readers see, for convergence checks in
// tests and benchmarks.
func (s *store) digestAll() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h uint64
	for k := range s.byKey {
		if e := s.winnerLocked(k); e != nil {
			h ^= rowHash(e) ^ uint64(len(e.Owner))<<56 ^ uint64(ownerHash(e.Owner))<<20
		}
	}
	return h
}

// count updates the counters under the store's lock.
func (s *store) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *store) snapshotStats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Rows = len(s.slots)
	st.Clock = s.clock
	return st
}
