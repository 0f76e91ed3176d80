package kvs

import (
	"encoding/binary"
	"hash/fnv"
	"sort"
	"sync"
	"time"
)

type rowKey struct{ table, key string }

type row struct {
	Entry
	changed time.Time // local time of the last change, for reaping tombstones
}

type ownerStatus int

const (
	ownerAlive  ownerStatus = iota
	ownerFailed             // declared dead; rows kept, hidden after the grace period
	ownerGone               // left, or failed for longer than ReapAfter; rows dropped
)

type owner struct {
	status  ownerStatus
	since   time.Time // when it failed or went
	hidden  bool
	goneMax uint64 // highest version held when it went: older rows are refused
	rows    map[rowKey]struct{}
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
// method is a pure state transition plus the events it causes, so it can be
// tested exhaustively. Safe for concurrent use.
type store struct {
	self string
	t    timings

	mu       sync.Mutex
	clock    uint64
	epoch    uint64 // this node's run
	seq      uint64 // this node's writes in this run
	byHash   map[uint32]*owner
	rows     map[rowKey]*row
	owners   map[string]*owner
	watchers []*watcher
	stats    Stats
}

func newStore(self string, t timings, clock, epoch uint64) *store {
	s := &store{self: self, t: t, clock: clock, epoch: epoch, rows: map[rowKey]*row{}, owners: map[string]*owner{}, byHash: map[uint32]*owner{}}
	me := s.owner(self)
	me.epoch = epoch
	return s
}

// ownerHash names an owner in sync vectors in four bytes.
func ownerHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

func (s *store) owner(name string) *owner {
	o := s.owners[name]
	if o == nil {
		o = &owner{rows: map[rowKey]struct{}{}, digest: ownerDigest{Owner: name}, hash: ownerHash(name)}
		s.owners[name] = o
		s.byHash[o.hash] = o
	}
	return o
}

func (s *store) tick() uint64 { s.clock++; return s.clock }

func (s *store) witness(v uint64) {
	if v > s.clock {
		s.clock = v
	}
}

func (s *store) visible(r *row) bool {
	return r != nil && !r.Deleted && !s.owners[r.Owner].hidden
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
	return h.Sum64()
}

// set stores e, replacing whatever row the key had, keeps the owners'
// indexes and digests, and tells watchers what readers see change.
func (s *store) set(e Entry, now time.Time) {
	k := rowKey{e.Table, e.Key}
	old := s.rows[k]
	wasVisible := s.visible(old)
	if old != nil {
		o := s.owners[old.Owner]
		delete(o.rows, k)
		o.digest.Rows--
		o.digest.Hash ^= rowHash(&old.Entry)
	}
	r := &row{Entry: e, changed: now}
	s.rows[k] = r
	o := s.owner(e.Owner)
	o.rows[k] = struct{}{}
	o.digest.Rows++
	o.digest.Hash ^= rowHash(&e)
	switch {
	case s.visible(r):
		s.notify(Event{Type: EventPut, Entry: e})
	case wasVisible:
		gone := old.Entry
		gone.Deleted = true
		s.notify(Event{Type: EventDelete, Entry: gone})
	}
}

// drop forgets a row without a tombstone (its owner went away).
func (s *store) drop(k rowKey, notify bool) {
	r := s.rows[k]
	if r == nil {
		return
	}
	if notify && s.visible(r) {
		gone := r.Entry
		gone.Deleted = true
		s.notify(Event{Type: EventDelete, Entry: gone})
	}
	o := s.owners[r.Owner]
	delete(o.rows, k)
	o.digest.Rows--
	o.digest.Hash ^= rowHash(&r.Entry)
	delete(s.rows, k)
}

// put writes a row owned by this node.
func (s *store) put(table, key string, value []byte, now time.Time) Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Entry{Table: table, Key: key, Value: append([]byte(nil), value...), Owner: s.self, Version: s.tick()}
	s.stamp(&e)
	s.set(e, now)
	s.stats.LocalWrites++
	return e
}

// del writes a tombstone for a row this node owns.
func (s *store) del(table, key string, now time.Time) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[rowKey{table, key}]
	switch {
	case r == nil || r.Deleted:
		return Entry{}, ErrNotFound
	case r.Owner != s.self:
		return Entry{}, ErrNotOwner
	}
	e := Entry{Table: table, Key: key, Owner: s.self, Version: s.tick(), Deleted: true}
	s.stamp(&e)
	s.set(e, now)
	s.stats.LocalWrites++
	return e, nil
}

// stamp places a write of this node in its stream.
func (s *store) stamp(e *Entry) {
	s.seq++
	e.Epoch, e.Seq = s.epoch, s.seq
	me := s.owners[s.self]
	me.have = s.seq
}

// mark records that a write of an owner's stream has been seen.
func (s *store) mark(name string, epoch, seq uint64) {
	if epoch == 0 || seq == 0 || name == s.self {
		return
	}
	o := s.owner(name)
	switch {
	case epoch < o.epoch:
		return
	case epoch > o.epoch: // the owner restarted
		o.epoch, o.have, o.above = epoch, 0, nil
	}
	if seq <= o.have {
		return
	}
	if seq != o.have+1 {
		if o.above == nil {
			o.above = map[uint64]struct{}{}
		}
		o.above[seq] = struct{}{}
		return
	}
	o.have = seq
	o.advance()
}

func (o *owner) advance() {
	for {
		if _, ok := o.above[o.have+1]; !ok {
			break
		}
		delete(o.above, o.have+1)
		o.have++
	}
	for q := range o.above {
		if q <= o.have {
			delete(o.above, q)
		}
	}
}

// completeTo records a peer's claim that the rows it sent cover every
// write of the owner's stream up to seq n.
func (s *store) completeTo(name string, epoch, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == s.self || epoch == 0 || n == 0 {
		return
	}
	o := s.owner(name)
	if o.status == ownerGone || epoch < o.epoch {
		return
	}
	if epoch > o.epoch {
		o.epoch, o.have, o.above = epoch, 0, nil
	}
	if n > o.have {
		o.have = n
		o.advance()
	}
}

// vector returns this node's position in the streams of the owners in
// part round of a cycle: with more owners than fit in max, the owners are
// split by hash into parts that successive rounds cover in turn.
func (s *store) vector(round uint32, max int) (vectorPart, []vectorItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := 0
	for name, o := range s.owners {
		if name != s.self && o.status != ownerGone && o.epoch != 0 {
			known++
		}
	}
	// Parts leave room for an uneven hash split.
	parts := uint32(1)
	for int(parts)*max*3/4 < known {
		parts++
	}
	p := vectorPart{Part: round % parts, Parts: parts}
	var out []vectorItem
	for name, o := range s.owners {
		if name == s.self || o.status == ownerGone || o.epoch == 0 || !p.covers(o.hash) {
			continue
		}
		if len(out) == max {
			p.Cut = true
			break
		}
		out = append(out, vectorItem{OwnerHash: o.hash, EpochTag: uint16(o.epoch), Have: o.have})
	}
	return p, out
}

// behind compares a peer's vector with this node's streams and returns,
// per owner of the vector's part the peer lacks writes of, the rows that
// cover them and how far the claim goes. Owners of the part missing from a
// vector that was not cut short are unknown to the peer: sent whole. The peer's own stream is never sent back to it.
func (s *store) behind(peer string, p vectorPart, theirs []vectorItem) []catchUp {
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[uint32]vectorItem, len(theirs))
	for _, it := range theirs {
		listed[it.OwnerHash] = it
	}
	var out []catchUp
	for name, o := range s.owners {
		if o.status == ownerGone || o.epoch == 0 || o.have == 0 || name == peer || !p.covers(o.hash) {
			continue // the peer is the authority on its own stream
		}
		it, ok := listed[o.hash]
		if !ok && p.Cut {
			continue
		}
		var from uint64 // send writes after this seq
		if ok && it.EpochTag == uint16(o.epoch) {
			if it.Have >= o.have {
				continue
			}
			from = it.Have
		}
		// Otherwise the peer knows another run of the owner: ours goes
		// whole, and the peer keeps it only if it is the newer run.
		c := catchUp{owner: name, epoch: o.epoch, complete: o.have}
		for k := range o.rows {
			r := s.rows[k]
			if r.Epoch == o.epoch && r.Seq > from {
				c.rows = append(c.rows, r.Entry)
			}
		}
		out = append(out, c)
	}
	return out
}

// catchUp is what a peer lacks of one owner's stream.
type catchUp struct {
	owner    string
	epoch    uint64
	complete uint64
	rows     []Entry
}

// applyResult says what apply did with a row from another node.
type applyResult int

const (
	applyStale     applyResult = iota // older than or equal to what is held
	applyChanged                      // stored: spread it
	applyRejected                     // refused: forged tombstone, or owner gone
	applyReclaimed                    // a stale copy of our own row: answered with a newer one
)

// apply merges a row received from another node. For applyReclaimed, the
// returned entry is this node's answer, to be spread.
func (s *store) apply(e Entry, now time.Time) (applyResult, Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.witness(e.Version)
	s.mark(e.Owner, e.Epoch, e.Seq)
	k := rowKey{e.Table, e.Key}
	cur := s.rows[k]
	if cur != nil && !e.newer(&cur.Entry) {
		s.stats.Stale++
		return applyStale, Entry{}
	}
	if e.Owner == s.self {
		return s.reclaim(e, cur, now)
	}
	if o := s.owners[e.Owner]; o != nil && o.status == ownerGone {
		if e.Version <= o.goneMax {
			s.stats.RejectedGone++
			return applyRejected, Entry{}
		}
		o.status = ownerAlive // it writes again, so it is back
	}
	if e.Deleted && cur != nil && !cur.Deleted && cur.Owner != e.Owner {
		s.stats.RejectedForged++
		return applyRejected, Entry{}
	}
	s.set(e, now)
	s.stats.Applied++
	return applyChanged, Entry{}
}

// reclaim handles a newer copy of a row this node owns: this node is the
// authority, so what it holds now (a value or nothing) is re-asserted with a
// newer version.
func (s *store) reclaim(e Entry, cur *row, now time.Time) (applyResult, Entry) {
	var mine Entry
	if cur != nil && cur.Owner == s.self && !cur.Deleted {
		mine = cur.Entry
	} else {
		if e.Deleted {
			// A tombstone of ours we lost: take it as is.
			s.set(e, now)
			s.stats.Applied++
			return applyChanged, Entry{}
		}
		mine = Entry{Table: e.Table, Key: e.Key, Owner: s.self, Deleted: true}
	}
	mine.Version = s.tick()
	s.stamp(&mine)
	s.set(mine, now)
	s.stats.Reclaimed++
	return applyReclaimed, mine
}

// memberAlive: a node joined or came back; its hidden rows return.
func (s *store) memberAlive(name string) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.owner(name)
	o.status = ownerAlive
	if o.hidden {
		o.hidden = false
		for k := range o.rows {
			if r := s.rows[k]; s.visible(r) {
				s.notify(Event{Type: EventPut, Entry: r.Entry})
			}
		}
	}
}

// memberFailed: failure detection declared a node dead.
func (s *store) memberFailed(name string, now time.Time) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.owner(name)
	if o.status == ownerAlive {
		o.status, o.since = ownerFailed, now
	}
}

// memberLeft: a node left gracefully; its rows are withdrawn at once.
func (s *store) memberLeft(name string, now time.Time) {
	if name == s.self {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withdraw(s.owner(name), now)
}

func (s *store) withdraw(o *owner, now time.Time) {
	for k := range o.rows {
		if r := s.rows[k]; r != nil && r.Version > o.goneMax {
			o.goneMax = r.Version
		}
		s.drop(k, !o.hidden)
	}
	o.status, o.since, o.hidden = ownerGone, now, false
	o.epoch, o.have, o.above = 0, 0, nil
}

// expire runs the clocks: hides rows of owners failed for the grace
// period, forgets them after ReapAfter, and reaps old tombstones.
func (s *store) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.owners {
		if o.status != ownerFailed {
			continue
		}
		if !o.hidden && now.Sub(o.since) >= s.t.grace {
			o.hidden = true
			for k := range o.rows {
				if r := s.rows[k]; r != nil && !r.Deleted {
					gone := r.Entry
					gone.Deleted = true
					s.notify(Event{Type: EventDelete, Entry: gone})
				}
			}
		}
		if now.Sub(o.since) >= s.t.reapAfter {
			s.withdraw(o, now)
			s.stats.OwnersReaped++
		}
	}
	for k, r := range s.rows {
		if r.Deleted && now.Sub(r.changed) >= s.t.tombstoneTTL {
			s.drop(k, false)
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
		if o.status != ownerGone && o.digest.Rows > 0 {
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
	mine := s.digests()
	var out []string
	for _, d := range mine {
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
	out := make([]Entry, 0, len(o.rows))
	for k := range o.rows {
		out = append(out, s.rows[k].Entry)
	}
	return out
}

func (s *store) get(table, key string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[rowKey{table, key}]
	if !s.visible(r) {
		return Entry{}, false
	}
	return r.Entry, true
}

// listLocked returns the visible rows of table ("" for all), sorted.
func (s *store) listLocked(table string) []Entry {
	var out []Entry
	for k, r := range s.rows {
		if (table == "" || k.table == table) && s.visible(r) {
			out = append(out, r.Entry)
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

// digestAll is one digest of the whole visible state, for convergence
// checks in tests and benchmarks.
func (s *store) digestAll() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var h uint64
	for _, r := range s.rows {
		if s.visible(r) {
			h ^= rowHash(&r.Entry) ^ uint64(len(r.Owner))<<56
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
	st.Rows = len(s.rows)
	st.Clock = s.clock
	return st
}
