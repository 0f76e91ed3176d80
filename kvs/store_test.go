package kvs

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func testTimings() timings {
	return timings{grace: time.Second, reapAfter: time.Minute, tombstoneTTL: 5 * time.Minute}
}

func TestStore_lastWriterWins(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	for name, tc := range map[string]struct {
		first, second Entry
		want          applyResult
		wantValue     string
	}{
		"newer version wins": {Entry{Table: "t", Key: "k1", Owner: "b", Version: 1, Value: []byte("old")},
			Entry{Table: "t", Key: "k1", Owner: "b", Version: 2, Value: []byte("new")}, applyChanged, "new"},
		"older version loses": {Entry{Table: "t", Key: "k2", Owner: "b", Version: 5, Value: []byte("keep")},
			Entry{Table: "t", Key: "k2", Owner: "b", Version: 4, Value: []byte("stale")}, applyStale, "keep"},
		"same version, greater owner wins": {Entry{Table: "t", Key: "k3", Owner: "b", Version: 7, Value: []byte("b")},
			Entry{Table: "t", Key: "k3", Owner: "c", Version: 7, Value: []byte("c")}, applyChanged, "c"},
		"duplicate is stale": {Entry{Table: "t", Key: "k4", Owner: "b", Version: 3, Value: []byte("x")},
			Entry{Table: "t", Key: "k4", Owner: "b", Version: 3, Value: []byte("x")}, applyStale, "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if res, _ := s.apply(tc.first, t0); res != applyChanged {
				t.Fatalf("first apply: %v", res)
			}
			if res, _ := s.apply(tc.second, t0); res != tc.want {
				t.Errorf("second apply: %v, want %v", res, tc.want)
			}
			if e, ok := s.get("t", tc.first.Key); !ok || string(e.Value) != tc.wantValue {
				t.Errorf("get: %v %v, want %q", e, ok, tc.wantValue)
			}
		})
	}
}

// TestStore_missedUpdateNeverBlocksLater is moby#53437: after missing
// version 2 of an owner, version 3 of another key must still be accepted.
func TestStore_missedUpdateNeverBlocksLater(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	s.apply(Entry{Table: "t", Key: "x", Owner: "b", Version: 1}, t0)
	// version 2 lost
	if res, _ := s.apply(Entry{Table: "t", Key: "y", Owner: "b", Version: 3}, t0); res != applyChanged {
		t.Fatalf("version 3 after a gap: %v", res)
	}
	if res, _ := s.apply(Entry{Table: "t", Key: "z", Owner: "b", Version: 2}, t0); res != applyChanged {
		t.Errorf("the late version 2 of another key: %v", res)
	}
}

// TestStore_ownerSlotsMergeInAnyOrder: each owner writes its own slot of
// a row; readers see the newest live slot. Whatever order the writes
// arrive in, every node ends up showing the same thing, and a tombstone
// only ever removes its own owner's slot (moby#50342).
func TestStore_ownerSlotsMergeInAnyOrder(t *testing.T) {
	writes := []Entry{
		{Table: "t", Key: "k", Owner: "x", Version: 3, Value: []byte("x")},
		{Table: "t", Key: "k", Owner: "y", Version: 5, Value: []byte("y")},
		{Table: "t", Key: "k", Owner: "x", Version: 10, Deleted: true, DeletedAt: t0.UnixNano()},
	}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	var want uint64
	for i, order := range orders {
		s := newStore("a", testTimings(), 0, 1)
		for _, w := range order {
			s.apply(writes[w], t0)
		}
		e, ok := s.get("t", "k")
		if !ok || string(e.Value) != "y" {
			t.Errorf("order %v: get = %v %v, want y's row (x deleted only its own)", order, e, ok)
		}
		if i == 0 {
			want = s.digestAll()
		} else if s.digestAll() != want {
			t.Errorf("order %v: different state than order %v", order, orders[0])
		}
	}
}

func TestStore_deletedNeverComesBack(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	e := s.put("t", "k", []byte("v"))
	tomb, err := s.del("t", "k", t0)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := s.apply(e, t0); res != applyStale {
		t.Errorf("old copy of a deleted row: %v", res)
	}
	if _, ok := s.get("t", "k"); ok {
		t.Error("deleted row came back")
	}
	if tomb.Version <= e.Version || !tomb.Deleted {
		t.Errorf("tombstone %v", tomb)
	}
	if _, err := s.del("t", "k", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	s.apply(Entry{Table: "t", Key: "theirs", Owner: "b", Version: 1, Value: []byte("v")}, t0)
	if _, err := s.del("t", "theirs", t0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("deleting another owner's row: %v", err)
	}
}

func TestStore_failedOwnerHiddenRestoredReaped(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	snap, w := s.watch("t")
	defer s.unwatch(w)
	if len(snap) != 0 {
		t.Fatal(snap)
	}
	s.apply(Entry{Table: "t", Key: "k", Owner: "b", Version: 1, Value: []byte("v")}, t0)
	expect(t, w, EventPut)

	s.memberFailed("b", t0)
	s.expire(t0.Add(500 * time.Millisecond))
	if _, ok := s.get("t", "k"); !ok {
		t.Error("hidden before the grace period")
	}
	s.expire(t0.Add(2 * time.Second))
	if _, ok := s.get("t", "k"); ok {
		t.Error("visible after the grace period")
	}
	expect(t, w, EventDelete)

	s.memberAlive("b") // came back before reaping: moby#53142
	if _, ok := s.get("t", "k"); !ok {
		t.Error("not restored when its owner came back")
	}
	expect(t, w, EventPut)

	s.memberFailed("b", t0.Add(time.Hour))
	s.expire(t0.Add(time.Hour + 2*time.Minute))
	expect(t, w, EventDelete)
	if st := s.snapshotStats(); st.OwnersReaped != 1 || st.Rows != 0 {
		t.Errorf("after ReapAfter: %+v", st)
	}
	if res, _ := s.apply(Entry{Table: "t", Key: "k", Owner: "b", Version: 1, Value: []byte("v")}, t0); res != applyRejected {
		t.Errorf("a reaped owner's old row from a lagging peer: %v", res)
	}
	if res, _ := s.apply(Entry{Table: "t", Key: "k2", Owner: "b", Version: 9}, t0); res != applyRejected {
		t.Errorf("a late relay of a reaped owner's newer write: %v, want rejected until it is a member again", res)
	}
	s.memberAlive("b")
	if res, _ := s.apply(Entry{Table: "t", Key: "k2", Owner: "b", Version: 9}, t0); res != applyChanged {
		t.Errorf("a write from the owner back again: %v", res)
	}
}

func TestStore_leaveWithdrawsAtOnce(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	s.apply(Entry{Table: "t", Key: "k", Owner: "b", Version: 4, Value: []byte("v")}, t0)
	s.memberLeft("b", t0)
	if _, ok := s.get("t", "k"); ok {
		t.Error("row of a node that left is still visible")
	}
	if res, _ := s.apply(Entry{Table: "t", Key: "k", Owner: "b", Version: 4, Value: []byte("v")}, t0); res != applyRejected {
		t.Errorf("repair resurrected a left node's row: %v", res)
	}
}

func TestStore_reclaimsStaleCopiesOfOwnRows(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1) // restarted without its old rows
	res, mine := s.apply(Entry{Table: "t", Key: "old", Owner: "a", Version: 10, Value: []byte("v")}, t0)
	if res != applyReclaimed || !mine.Deleted || mine.Version <= 10 {
		t.Fatalf("stale own row: %v %v", res, mine)
	}
	e := s.put("t", "live", []byte("now"))
	res, mine = s.apply(Entry{Table: "t", Key: "live", Owner: "a", Version: e.Version + 5, Value: []byte("then")}, t0)
	if res != applyReclaimed || string(mine.Value) != "now" || mine.Version <= e.Version+5 {
		t.Errorf("newer stale copy of a live own row: %v %v", res, mine)
	}
}

func TestStore_tombstonesReaped(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	s.put("t", "k", nil)
	s.del("t", "k", t0)
	s.expire(t0.Add(time.Minute))
	if s.snapshotStats().Rows != 1 {
		t.Error("tombstone reaped early")
	}
	s.expire(t0.Add(6 * time.Minute))
	if st := s.snapshotStats(); st.Rows != 0 || st.TombstonesReaped != 1 {
		t.Errorf("tombstone kept: %+v", st)
	}
}

func TestStore_digestsFindDifferences(t *testing.T) {
	a, b := newStore("a", testTimings(), 0, 1), newStore("b", testTimings(), 0, 1)
	for _, s := range []*store{a, b} {
		s.apply(Entry{Table: "t", Key: "k1", Owner: "c", Version: 1}, t0)
	}
	if d := a.differing(b.digests()); len(d) != 0 {
		t.Errorf("equal stores differ on %v", d)
	}
	a.apply(Entry{Table: "t", Key: "k2", Owner: "c", Version: 2}, t0)
	a.put("t", "mine", nil)
	d := a.differing(b.digests())
	if len(d) != 2 || d[0] != "a" || d[1] != "c" {
		t.Errorf("differing = %v, want [a c]", d)
	}
	for _, o := range d {
		for _, e := range a.rowsOf(o) {
			b.apply(e, t0)
		}
	}
	if d := a.differing(b.digests()); len(d) != 0 || a.digestAll() != b.digestAll() {
		t.Errorf("after repair still differ on %v", d)
	}
}

func expect(t *testing.T, w *watcher, typ EventType) Event {
	t.Helper()
	select {
	case ev := <-w.q.Out():
		if ev.Type != typ {
			t.Fatalf("event %v %v, want %v", ev.Type, ev.Entry, typ)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v event", typ)
	}
	return Event{}
}

// TestStore_streamsFindMissedWrites: a node that missed some of an
// owner's writes learns which from a peer's vector, and the peer's answer
// (rows plus a completion claim) closes the gap.
func TestStore_streamsFindMissedWrites(t *testing.T) {
	owner := newStore("o", testTimings(), 0, 100)
	peer := newStore("p", testTimings(), 0, 200) // saw everything
	lag := newStore("l", testTimings(), 0, 300)  // missed writes 2 and 4
	var writes []Entry
	for i := 0; i < 5; i++ {
		writes = append(writes, owner.put("t", fmt.Sprint("k", i), []byte{byte(i)}))
	}
	writes = append(writes, mustDel(t, owner, "t", "k0")) // seq 6 supersedes seq 1
	for i, e := range writes {
		peer.apply(e, t0)
		if i != 1 && i != 3 {
			lag.apply(e, t0)
		}
	}
	_, vec := lag.vector(0, 100)
	if len(vec) != 1 || vec[0].Have != 1 || vec[0].EpochTag != 100 {
		t.Fatalf("lagging vector %+v: want owner o, epoch 100, have 1", vec)
	}
	whole := vectorPart{}
	ups := peer.behind("l", whole, vec)
	if len(ups) != 1 || ups[0].owner != "o" || ups[0].complete != 6 || ups[0].from != 1 {
		t.Fatalf("catch-up %+v", ups)
	}
	for _, e := range ups[0].rows {
		lag.apply(e, t0)
	}
	lag.completeTo("o", ups[0].epoch, ups[0].from, ups[0].complete)
	if _, v := lag.vector(0, 100); v[0].Have != 6 {
		t.Errorf("after catching up: have %d, want 6", v[0].Have)
	}
	if lag.digestAll() != peer.digestAll() {
		t.Error("caught-up node differs from its peer")
	}
	_, again := lag.vector(0, 100)
	if ups := peer.behind("l", whole, again); len(ups) != 0 {
		t.Errorf("still behind: %+v", ups)
	}
	// An owner the vector does not list is sent whole, unless the vector
	// was cut short.
	if ups := peer.behind("l", whole, nil); len(ups) != 1 || len(ups[0].rows) != 5 {
		t.Errorf("unknown owner: %+v", ups)
	}
	if ups := peer.behind("l", vectorPart{Cut: true}, nil); len(ups) != 0 {
		t.Errorf("cut-short vector: %+v", ups)
	}
	other := vectorPart{Part: (ownerHash("o") + 1) % 2, Parts: 2}
	if ups := peer.behind("l", other, nil); len(ups) != 0 {
		t.Errorf("an owner outside the vector's part: %+v", ups)
	}
	if ups := peer.behind("o", whole, nil); len(ups) != 0 {
		t.Errorf("the owner was sent its own stream: %+v", ups)
	}
	// A restarted owner (newer epoch) resets the stream.
	lag.apply(Entry{Table: "t", Key: "new", Owner: "o", Version: 50, Epoch: 101, Seq: 1}, t0)
	if _, v := lag.vector(0, 100); v[0].EpochTag != 101 || v[0].Have != 1 {
		t.Errorf("after the owner's restart: %+v", v)
	}
}

func mustDel(t *testing.T, s *store, table, key string) Entry {
	t.Helper()
	e, err := s.del(table, key, t0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestStore_slowWatcherNeverBlocks: a watcher that reads nothing while
// thousands of rows change holds up no writer, and then gets every event
// in order.
func TestStore_slowWatcherNeverBlocks(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	_, w := s.watch("t")
	defer s.unwatch(w)
	const n = 20000
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			s.apply(Entry{Table: "t", Key: fmt.Sprint(i), Owner: "b", Version: uint64(i + 1)}, t0)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writers blocked behind a watcher that does not read")
	}
	for i := 0; i < n; i++ {
		ev := expect(t, w, EventPut)
		if ev.Entry.Key != fmt.Sprint(i) {
			t.Fatalf("event %d is for key %s: out of order", i, ev.Entry.Key)
		}
	}
}

// TestStore_vectorPartsCoverEveryOwner: with more owners than one vector
// holds, successive rounds cover every owner, each round within the limit.
func TestStore_vectorPartsCoverEveryOwner(t *testing.T) {
	s := newStore("me", testTimings(), 0, 1)
	for i := 0; i < 500; i++ {
		s.apply(Entry{Table: "t", Key: fmt.Sprint(i), Owner: fmt.Sprint("owner", i), Version: 1, Epoch: 7, Seq: 1}, t0)
	}
	seen := map[uint32]bool{}
	p0, _ := s.vector(0, 70)
	for round := uint32(0); round < p0.Parts; round++ {
		p, items := s.vector(round, 70)
		if len(items) > 70 || p.Cut {
			t.Errorf("round %d: %d items, cut %v", round, len(items), p.Cut)
		}
		for _, it := range items {
			if !p.covers(it.OwnerHash) || seen[it.OwnerHash] {
				t.Errorf("round %d lists owner %x outside its part or twice", round, it.OwnerHash)
			}
			seen[it.OwnerHash] = true
		}
	}
	if len(seen) != 500 {
		t.Errorf("a cycle of %d rounds covered %d of 500 owners", p0.Parts, len(seen))
	}
}

// TestStore_unknownOwnerHiddenUntilMember: rows of an owner that is not a
// member (it died before this node joined) arrive by repair but stay
// hidden, as on the nodes that saw it fail, until it is alive.
func TestStore_unknownOwnerHiddenUntilMember(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	members := map[string]bool{"a": true, "alive": true}
	s.isMember = func(n string) bool { return members[n] }
	s.apply(Entry{Table: "t", Key: "dead", Owner: "ghost", Version: 1}, t0)
	s.apply(Entry{Table: "t", Key: "live", Owner: "alive", Version: 1}, t0)
	if _, ok := s.get("t", "dead"); ok {
		t.Error("a non-member's row is visible")
	}
	if _, ok := s.get("t", "live"); !ok {
		t.Error("a member's row is hidden")
	}
	s.memberAlive("ghost")
	if _, ok := s.get("t", "dead"); !ok {
		t.Error("not shown once its owner is alive")
	}
}

// TestStore_expiredTombstoneNotReadded: a tombstone is reaped at the same
// time everywhere (its owner's DeletedAt + TTL), and a copy from a node
// that reaps later is refused, not stored afresh.
func TestStore_expiredTombstoneNotReadded(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	tomb := Entry{Table: "t", Key: "k", Owner: "b", Version: 2, Deleted: true, DeletedAt: t0.UnixNano()}
	s.apply(tomb, t0.Add(time.Minute))
	s.expire(t0.Add(6 * time.Minute))
	if n := s.snapshotStats().Rows; n != 0 {
		t.Fatalf("tombstone not reaped: %d rows", n)
	}
	if res, _ := s.apply(tomb, t0.Add(7*time.Minute)); res != applyStale || s.snapshotStats().Rows != 0 {
		t.Errorf("an expired tombstone was stored again: %v", res)
	}
}

// TestStore_completionClaimNeedsItsStart: a claim "rows from seq 5 on
// complete the stream to 9" is ignored by a node that lacks seq 1-5.
func TestStore_completionClaimNeedsItsStart(t *testing.T) {
	s := newStore("a", testTimings(), 0, 1)
	s.apply(Entry{Table: "t", Key: "k1", Owner: "b", Version: 1, Epoch: 7, Seq: 1}, t0)
	s.completeTo("b", 7, 5, 9)
	if _, v := s.vector(0, 10); v[0].Have != 1 {
		t.Errorf("have %d after a claim that started past what it holds", v[0].Have)
	}
	s.completeTo("b", 7, 1, 9)
	if _, v := s.vector(0, 10); v[0].Have != 9 {
		t.Errorf("have %d after a valid claim, want 9", v[0].Have)
	}
}
