package kvs

import (
	"testing"
	"time"
)

// TestStore_forget: a rule drops the rows of the run it names, at once
// where the owner is down and when it goes down where it was still alive,
// in any order; never a live owner's, another run's, or this node's own;
// and the owner's rows claimed before the forget lose to any other, so a
// name taken meanwhile stays with the newer row when the owner is back.
// hiddenOf reports whether a failed owner still has rows kept here.
func (s *store) hiddenOf(owner string) (int, bool) {
	n := 0
	for _, e := range s.hiddenRows("endpoints") {
		if e.Owner == owner {
			n++
		}
	}
	_, down := s.down()[owner]
	return n, n > 0 || down
}

func TestStore_forget(t *testing.T) {
	const run, later = 100, 200
	x := func(key string, version, claim uint64, epoch uint64) Entry {
		return Entry{Table: "endpoints", Key: key, Owner: "x", Version: version, Claim: claim, Epoch: epoch, Seq: version, Value: []byte("x")}
	}
	rows := func(s *store) {
		s.apply(Entry{Table: "networks", Key: "web", Owner: "x", Version: 1, Value: []byte("n")}, t0)
		s.apply(x("web/db", 2, 2, run), t0)
		s.apply(x("web/mq", 3, 3, run), t0)
	}
	rule := map[string]ForgetRule{"x": {Epoch: run, Clock: 50}}

	// Down first, then the rule: its rows go at once, the cluster's stay.
	s := clusterStore("a")
	rows(s)
	s.memberFailed("x", t0)
	s.setForgotten(rule, t0)
	if _, ok := s.get("endpoints", "web/db"); ok || len(s.down()) != 0 {
		t.Errorf("rule after the failure: web/db still there (down %v)", s.down())
	}
	if _, ok := s.get("networks", "web"); !ok {
		t.Error("the network x wrote went with its host rows")
	}
	if st := s.snapshotStats(); st.OwnersForgotten != 1 || st.OwnersReaped != 0 {
		t.Errorf("stats %+v, want one owner forgotten", st)
	}
	// Refused until it is a member again, as after a leave.
	if res, _ := s.apply(x("web/late", 4, 4, run), t0); res != applyRejected {
		t.Errorf("a late row of the forgotten run: %v, want rejected", res)
	}

	if !s.isForgotten("x") {
		t.Error("x not reported forgotten after its rows went by the rule")
	}
	s.setForgotten(nil, t0) // the forget taken back
	if s.isForgotten("x") {
		t.Error("x reported forgotten once its rule went")
	}
	s.setForgotten(rule, t0)
	s.memberAlive("x")
	if s.isForgotten("x") {
		t.Error("x reported forgotten once alive again")
	}

	// A node that missed x's last restart (it knows an earlier run)
	// forgets it all the same; a node that knows a later run does not.
	for _, c := range []struct {
		epoch uint64
		gone  bool
	}{{run - 10, true}, {run + 10, false}} {
		s = clusterStore("a")
		s.apply(x("web/db", 2, 2, c.epoch), t0)
		s.memberFailed("x", t0)
		s.setForgotten(rule, t0)
		if _, ok := s.hiddenOf("x"); ok == c.gone {
			t.Errorf("x's run %d against a rule for run %d: rows kept %v, want %v", c.epoch, run, ok, !c.gone)
		}
	}

	// The rule first, while x is alive here: nothing goes until it fails.
	s = clusterStore("a")
	rows(s)
	s.setForgotten(rule, t0)
	if _, ok := s.get("endpoints", "web/db"); !ok {
		t.Fatal("the rule dropped the rows of an owner alive here")
	}
	s.memberFailed("x", t0)
	if _, ok := s.get("endpoints", "web/db"); ok {
		t.Error("x failed after the rule: its rows stay")
	}

	// Seen alive since the rule came (it was only hung or cut off): its
	// next failure, however soon, keeps its rows for its return, as any.
	s = clusterStore("a")
	rows(s)
	s.memberFailed("x", t0)
	s.setForgotten(rule, t0)
	s.memberAlive("x")
	rows(s) // back with its rows
	s.memberFailed("x", t0.Add(time.Second))
	s.expire(t0.Add(time.Second))
	if _, kept := s.hiddenOf("x"); !kept {
		t.Error("x's rows went at a failure after it was seen alive again")
	}

	// A node that learns of x only after the forget (it restarted), x
	// never a member here: its rows go all the same.
	s = clusterStore("a")
	s.isMember = func(string) bool { return false }
	s.setForgotten(rule, t0.Add(time.Hour))
	s.apply(x("web/db", 2, 2, run), t0.Add(time.Hour))
	s.expire(t0.Add(time.Hour))
	if _, kept := s.hiddenOf("x"); kept {
		t.Error("a node that never saw x alive keeps its rows past the rule")
	}

	// A failure well after the forget (x was only hung, came back and
	// failed again later) keeps its rows for its return, as any.
	s = clusterStore("a")
	rows(s)
	s.setForgotten(rule, t0)
	s.memberFailed("x", t0.Add(ForgetWindow+time.Second))
	s.expire(t0.Add(ForgetWindow + time.Second))
	if _, kept := s.hiddenOf("x"); !kept {
		t.Error("x's rows went at a failure long after the forget")
	}

	// Another run (x restarted since) is not forgotten, and its claims
	// before the forget count as made at it.
	s = clusterStore("a")
	s.apply(Entry{Table: "endpoints", Key: "web/db", Owner: "b", Version: 40, Claim: 40, Value: []byte("b")}, t0) // taken meanwhile
	s.setForgotten(rule, t0)
	s.apply(x("web/db", 60, 2, later), t0) // back with its old claim
	s.apply(x("web/new", 61, 61, later), t0)
	s.memberFailed("x", t0)
	s.expire(t0)
	if w, ok := s.get("endpoints", "web/db"); !ok || w.Owner != "b" {
		t.Errorf("web/db: %+v, want b's (claimed after x's forget)", w)
	}
	if d := s.down(); len(d) != 1 {
		t.Errorf("down %v: want x, whose later run is not forgotten", d)
	}
	for _, e := range s.hiddenRows("endpoints") {
		if e.Key == "web/db" && e.Claim != forgottenClaim+2 {
			t.Errorf("x's web/db shows claim %d, want %d (claimed before the forget)", e.Claim, forgottenClaim+2)
		}
		if e.Key == "web/new" && e.Claim != 61 {
			t.Errorf("x's web/new claims %d, want its own 61", e.Claim)
		}
	}

	// A rule naming this node's run changes nothing of its rows but
	// their claims.
	s = clusterStore("a")
	s.epoch = run
	s.owners["a"].epoch = run
	mine := s.put("endpoints", "web/db", []byte("a"))
	s.setForgotten(map[string]ForgetRule{"a": {Epoch: run, Clock: mine.Claim + 10}}, t0)
	s.memberFailed("a", t0)
	s.expire(t0)
	if e, ok := s.get("endpoints", "web/db"); !ok || e.Claim != forgottenClaim+mine.Claim {
		t.Errorf("own row %+v after a rule naming this node: want it, claimed before the forget", e)
	}
	if raw := s.rawClaim("endpoints", "web/db"); raw != mine.Claim {
		t.Errorf("the stored claim changed: %d, want %d (only readers' copies show the forget)", raw, mine.Claim)
	}
	// Claimed anew, it competes as any row claimed after the forget.
	if got := s.reclaimForgotten(); len(got) != 1 || got[0].Claim <= mine.Claim+10 || got[0].Claim != got[0].Version {
		t.Errorf("reclaimed %+v, want web/db claimed anew past the forget", got)
	}
	if e, _ := s.get("endpoints", "web/db"); e.Claim >= forgottenClaim || e.Owner != "a" {
		t.Errorf("web/db after the reclaim: %+v", e)
	}
	if again := s.reclaimForgotten(); len(again) != 0 {
		t.Errorf("a second reclaim wrote %d rows", len(again))
	}

	// The order of a host's life: it fails, is forgotten, its name is
	// taken, it comes back in a new run with the claim it saved (and a
	// clock behind): the newer row keeps the name.
	s = clusterStore("h1")
	for range 20 {
		s.put("networks", "n", []byte("n"))
	}
	s.apply(Entry{Table: "endpoints", Key: "web/db", Owner: "h3", Version: 21, Claim: 21, Epoch: run, Seq: 1, Value: []byte("x")}, t0)
	s.memberFailed("h3", t0)
	f := s.put("networks", "forget", []byte("h3"))
	s.setForgotten(map[string]ForgetRule{"h3": {Epoch: run, Clock: f.Version}}, t0)
	s.put("endpoints", "web/db", []byte("h1"))
	s.memberAlive("h3")
	s.apply(Entry{Table: "endpoints", Key: "web/db", Owner: "h3", Version: 22, Claim: 21, Epoch: later, Seq: 1, Value: []byte("x")}, t0)
	if w, _ := s.get("endpoints", "web/db"); w.Owner != "h1" {
		t.Errorf("web/db after h3's return: %s's, want h1's, claimed after the forget", w.Owner)
	}
	// A row h3 claims after the forget competes as any.
	s.apply(Entry{Table: "endpoints", Key: "web/other", Owner: "h3", Version: 90, Claim: 90, Epoch: later, Seq: 2, Value: []byte("x")}, t0)
	s.put("endpoints", "web/other", []byte("h1"))
	if w, _ := s.get("endpoints", "web/other"); w.Owner != "h3" {
		t.Errorf("web/other: %s's, want h3's, claimed first after the forget", w.Owner)
	}
}
