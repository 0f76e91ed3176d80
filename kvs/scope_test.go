package kvs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func clusterStore(self string) *store {
	s := newStore(self, testTimings(), 0, 1)
	s.cluster = map[string]bool{"networks": true}
	s.firstClaim = map[string]bool{"endpoints": true}
	return s
}

// TestStore_clusterRowsOutliveTheirWriter: a cluster row stays visible
// when its writer fails, is reaped or leaves, and is accepted from a
// writer that is gone; a host row of the same writer goes.
func TestStore_clusterRowsOutliveTheirWriter(t *testing.T) {
	for name, gone := range map[string]func(s *store){
		"failed and reaped": func(s *store) {
			s.memberFailed("b", t0)
			s.expire(t0.Add(2 * time.Minute))
		},
		"left": func(s *store) { s.memberLeft("b", t0) },
	} {
		t.Run(name, func(t *testing.T) {
			s := clusterStore("a")
			s.apply(Entry{Table: "networks", Key: "web", Owner: "b", Version: 3, Value: []byte("n")}, t0)
			s.apply(Entry{Table: "hosts", Key: "b", Owner: "b", Version: 4, Value: []byte("h")}, t0)
			gone(s)
			if _, ok := s.get("networks", "web"); !ok {
				t.Error("the cluster row went with its writer")
			}
			if _, ok := s.get("hosts", "b"); ok {
				t.Error("the host row stayed after its writer went")
			}
			if res, _ := s.apply(Entry{Table: "networks", Key: "db", Owner: "b", Version: 5, Value: []byte("n")}, t0); res != applyChanged {
				t.Errorf("a cluster row of a gone writer: %v, want it taken", res)
			}
			if res, _ := s.apply(Entry{Table: "hosts", Key: "b2", Owner: "b", Version: 6}, t0); res != applyRejected {
				t.Errorf("a host row of a gone writer: %v, want it refused", res)
			}
			if ds := s.digests(); len(ds) != 1 || ds[0].Owner != "b" || ds[0].Rows != 2 {
				t.Errorf("digests %+v: want the gone writer's two cluster rows, for repair", ds)
			}
		})
	}
}

// TestStore_clusterRowsAnyoneDeletes: any node deletes a cluster row; the
// tombstone beats the write it saw, a later write beats the tombstone, and
// the tombstone is never reaped (nor refused as expired).
func TestStore_clusterRowsAnyoneDeletes(t *testing.T) {
	s := clusterStore("a")
	s.apply(Entry{Table: "networks", Key: "web", Owner: "b", Version: 7, Value: []byte("n")}, t0)
	tomb, err := s.del("networks", "web", t0)
	if err != nil || tomb.Version <= 7 || tomb.Owner != "a" {
		t.Fatalf("delete of another node's cluster row: %v %v", tomb, err)
	}
	if _, ok := s.get("networks", "web"); ok {
		t.Fatal("deleted row still visible")
	}
	if _, err := s.del("networks", "web", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	// b, which had not seen the delete, repairs its old write: it stays dead.
	if res, _ := s.apply(Entry{Table: "networks", Key: "web", Owner: "b", Version: 7, Value: []byte("n")}, t0); res != applyStale {
		t.Errorf("old copy: %v", res)
	}
	s.expire(t0.Add(24 * time.Hour * 365))
	if st := s.snapshotStats(); st.Rows != 2 || st.TombstonesReaped != 0 {
		t.Errorf("a cluster tombstone was reaped: %+v", st)
	}
	// A tombstone arriving a year late still counts.
	if res, _ := s.apply(Entry{Table: "networks", Key: "db", Owner: "c", Version: 9, Deleted: true, DeletedAt: t0.UnixNano()}, t0.Add(24*time.Hour*365)); res != applyChanged {
		t.Errorf("an old cluster tombstone: %v, want it kept", res)
	}
	// b writes again, after seeing the delete: the row is back.
	if res, _ := s.apply(Entry{Table: "networks", Key: "web", Owner: "b", Version: tomb.Version + 1, Value: []byte("n2")}, t0); res != applyChanged {
		t.Fatalf("re-creation: %v", res)
	}
	if e, ok := s.get("networks", "web"); !ok || string(e.Value) != "n2" {
		t.Errorf("after re-creation: %v %v", e, ok)
	}
}

// TestStore_clusterRowOfOwnLearnedBack: a node that lost its state takes
// its own cluster rows back from the cluster instead of deleting them.
func TestStore_clusterRowOfOwnLearnedBack(t *testing.T) {
	s := clusterStore("a") // restarted without its state
	res, _ := s.apply(Entry{Table: "networks", Key: "web", Owner: "a", Version: 10, Value: []byte("n")}, t0)
	if res != applyChanged {
		t.Fatalf("own cluster row from the cluster: %v, want it taken as is", res)
	}
	if e, ok := s.get("networks", "web"); !ok || e.Version != 10 {
		t.Errorf("get: %v %v", e, ok)
	}
}

// TestStore_restoreKeepsVersions: persisted cluster rows come back as they
// were, tombstones included, and the clock moves past them.
func TestStore_restoreKeepsVersions(t *testing.T) {
	s := clusterStore("a")
	s.restore(Entry{Table: "networks", Key: "web", Owner: "b", Version: 20, Value: []byte("n")})
	s.restore(Entry{Table: "networks", Key: "old", Owner: "c", Version: 30, Deleted: true, DeletedAt: 1})
	if e, ok := s.get("networks", "web"); !ok || e.Version != 20 || e.Owner != "b" {
		t.Errorf("restored row: %v %v", e, ok)
	}
	if res, _ := s.apply(Entry{Table: "networks", Key: "old", Owner: "d", Version: 25, Value: []byte("x")}, t0); res != applyChanged {
		t.Fatal(res)
	}
	if _, ok := s.get("networks", "old"); ok {
		t.Error("a write older than a restored tombstone shows")
	}
	if e := s.put("networks", "new", nil); e.Version <= 30 {
		t.Errorf("a write after restore at version %d: the clock did not pass the restored rows", e.Version)
	}
}

// TestStore_firstClaimWins: of two live rows under one key, the first
// claimed wins everywhere, whatever order they arrive in, and keeps
// winning when its owner rewrites it.
func TestStore_firstClaimWins(t *testing.T) {
	early := Entry{Table: "endpoints", Key: "web/racer", Owner: "c", Version: 5, Claim: 5, Value: []byte("c")}
	late := Entry{Table: "endpoints", Key: "web/racer", Owner: "b", Version: 6, Claim: 6, Value: []byte("b")}
	for name, order := range map[string][]Entry{"early first": {early, late}, "late first": {late, early}} {
		t.Run(name, func(t *testing.T) {
			s := clusterStore("a")
			for _, e := range order {
				s.apply(e, t0)
			}
			if e, ok := s.get("endpoints", "web/racer"); !ok || e.Owner != "c" {
				t.Errorf("winner %v, want c's (claim 5)", e)
			}
			rewrite := early
			rewrite.Version = 50
			s.apply(rewrite, t0)
			if e, _ := s.get("endpoints", "web/racer"); e.Owner != "c" || e.Version != 50 {
				t.Errorf("after c rewrote: %v", e)
			}
			s.memberFailed("c", t0)
			s.expire(t0.Add(2 * time.Second))
			if e, ok := s.get("endpoints", "web/racer"); !ok || e.Owner != "b" {
				t.Errorf("with c hidden: %v %v, want b's", e, ok)
			}
		})
	}
	s := clusterStore("a")
	first := s.put("endpoints", "web/x", []byte("1"))
	again := s.put("endpoints", "web/x", []byte("2"))
	if first.Claim == 0 || again.Claim != first.Claim {
		t.Errorf("claims %d then %d: a rewrite must keep the claim", first.Claim, again.Claim)
	}
	s.del("endpoints", "web/x", t0)
	if re := s.put("endpoints", "web/x", nil); re.Claim <= first.Claim {
		t.Errorf("a new life after delete claims %d, want past %d", re.Claim, first.Claim)
	}
}

// TestStore_restartKeepsClaim: a row put back after a restart with the
// claim it had still wins over one another host claimed meanwhile, as
// it did before the restart; without a claim it claims anew (and loses).
func TestStore_restartKeepsClaim(t *testing.T) {
	before := clusterStore("a")
	mine := before.put("endpoints", "web/mq", []byte("a"))
	theirs := Entry{Table: "endpoints", Key: "web/mq", Owner: "b", Version: mine.Claim + 10, Claim: mine.Claim + 10, Value: []byte("b")}
	for _, claim := range []uint64{mine.Claim, 0} {
		after := clusterStore("a")
		after.clock = theirs.Version + 5 // the restored clock is past both
		got := after.putClaimed("endpoints", "web/mq", []byte("a"), claim)
		after.apply(theirs, t0)
		winner, _ := after.get("endpoints", "web/mq")
		switch {
		case claim != 0 && (got.Claim != claim || winner.Owner != "a"):
			t.Errorf("put back with claim %d: claims %d, winner %s, want a", claim, got.Claim, winner.Owner)
		case claim == 0 && winner.Owner != "b":
			t.Errorf("put back without a claim (claims %d): winner %s, want b", got.Claim, winner.Owner)
		}
		// A rewrite keeps the claim put back.
		if again := after.put("endpoints", "web/mq", []byte("a2")); again.Claim != got.Claim {
			t.Errorf("a rewrite claims %d, want %d", again.Claim, got.Claim)
		}
	}
	// A claim past the clock (a damaged file) is not believed.
	s := clusterStore("a")
	if e := s.putClaimed("endpoints", "web/x", nil, 1<<40); e.Claim != e.Version {
		t.Errorf("claim %d past the clock kept: %d", uint64(1)<<40, e.Claim)
	}
}

// TestCluster_clusterRowsSurviveCreatorAndReachNewcomers: a cluster row
// outlives its writer's leave, and a node that joins afterwards learns it
// from the others.
func TestCluster_clusterRowsSurviveCreatorAndReachNewcomers(t *testing.T) {
	cfg := FastTimings()
	cfg.ClusterTables = []string{"networks"}
	c := newClusterWith(t, 3, cfg)
	c.nodes[2].Put("networks", "web", []byte("n"))
	c.nodes[2].Put("endpoints", "web/e", []byte("e"))
	c.waitConverged(2)
	if err := c.nodes[2].Node().Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.nodes[2].Close()
	c.dead[c.names[2]] = true
	c.waitConverged(1)
	late := c.start("late", c.addr(0))
	waitFor(t, "the newcomer to learn the network its creator wrote before leaving", 15*time.Second, func() bool {
		_, ok := late.Get("networks", "web")
		return ok
	})
	if err := late.Delete("networks", "web"); err != nil {
		t.Fatalf("delete by a node that did not write it: %v", err)
	}
	c.waitConverged(0)
}

// TestStore_adoptOwnRows: a node rebuilding from the cluster takes its own
// rows back instead of deleting them, until it stops adopting.
func TestStore_adoptOwnRows(t *testing.T) {
	s := clusterStore("a")
	s.adopt = true
	if res, _ := s.apply(Entry{Table: "endpoints", Key: "web/c1", Owner: "a", Version: 10, Claim: 4, Value: []byte("v")}, t0); res != applyChanged {
		t.Fatalf("own row while adopting: %v", res)
	}
	if e, ok := s.get("endpoints", "web/c1"); !ok || e.Claim != 4 {
		t.Errorf("adopted row: %v %v", e, ok)
	}
	s.adopt = false
	if res, mine := s.apply(Entry{Table: "endpoints", Key: "web/c2", Owner: "a", Version: 11, Value: []byte("v")}, t0); res != applyReclaimed || !mine.Deleted {
		t.Errorf("own row after adopting: %v %v, want it deleted", res, mine)
	}
}

// TestStore_restoredOwnersAreNotTakenAlive: the writers of persisted
// cluster rows are not members when the node starts: their host rows,
// learned later, stay hidden until they join, and go after ReapAfter.
func TestStore_restoredOwnersAreNotTakenAlive(t *testing.T) {
	s := clusterStore("a")
	s.restore(Entry{Table: "networks", Key: "web", Owner: "x", Version: 5, Value: []byte("n")})
	s.setMembership(func(name string) bool { return name == "a" }, t0)
	s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "x", Version: 6, Claim: 6, Value: []byte("e")}, t0)
	if _, ok := s.get("endpoints", "web/c"); ok {
		t.Error("a host row of a writer that is not a member shows")
	}
	if _, ok := s.get("networks", "web"); !ok {
		t.Error("the restored cluster row is hidden")
	}
	s.expire(t0.Add(2 * time.Minute))
	if st := s.snapshotStats(); st.OwnersReaped != 1 {
		t.Errorf("the absent writer was not reaped: %+v", st)
	}
	s.memberAlive("x")
	if res, _ := s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "x", Version: 7, Claim: 6, Value: []byte("e")}, t0); res != applyChanged {
		t.Errorf("its row once it joined: %v", res)
	}
	if _, ok := s.get("endpoints", "web/c"); !ok {
		t.Error("its row does not show once it joined")
	}
}

// TestStore_hiddenRows: rows of a failed owner are listed as hidden after
// the grace period, and no longer once it is back.
func TestStore_hiddenRows(t *testing.T) {
	s := clusterStore("a")
	s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "b", Version: 3, Claim: 3, Value: []byte("e")}, t0)
	if h := s.hiddenRows("endpoints"); len(h) != 0 {
		t.Fatalf("hidden while its owner lives: %v", h)
	}
	if d := s.down(); len(d) != 0 {
		t.Fatalf("down while every owner lives: %v", d)
	}
	s.memberFailed("b", t0)
	s.expire(t0.Add(2 * time.Second))
	if h := s.hiddenRows("endpoints"); len(h) != 1 || h[0].Key != "web/c" {
		t.Errorf("hidden rows %v, want web/c", h)
	}
	if d := s.down(); len(d) != 1 || !d["b"].Equal(t0) {
		t.Errorf("down %v, want b since %v", d, t0)
	}
	s.memberAlive("b")
	if h := s.hiddenRows("endpoints"); len(h) != 0 {
		t.Errorf("hidden after its owner came back: %v", h)
	}
	if d := s.down(); len(d) != 0 {
		t.Errorf("down after its owner came back: %v", d)
	}
}

// TestStore_down: an owner is down when it failed with rows of its own
// kept, or when this node saw it fail (with no rows: a host with no
// endpoints); one that left, or that is known only by cluster rows (which
// outlive their writers) from before, is not, and this node never is.
func TestStore_down(t *testing.T) {
	s := clusterStore("a")
	s.setMembership(func(name string) bool { return name != "gone" }, t0)
	s.apply(Entry{Table: "networks", Key: "web", Owner: "gone", Version: 2, Value: []byte("n")}, t0)
	s.apply(Entry{Table: "networks", Key: "db", Owner: "creator", Version: 2, Value: []byte("n")}, t0)
	s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "b", Version: 3, Claim: 3, Value: []byte("e")}, t0)
	s.apply(Entry{Table: "endpoints", Key: "web/d", Owner: "left", Version: 3, Claim: 3, Value: []byte("e")}, t0)
	s.apply(Entry{Table: "endpoints", Key: "web/e", Owner: "a", Version: 3, Claim: 3, Value: []byte("e")}, t0)
	s.memberAlive("quiet") // a member with no rows at all
	s.memberFailed("b", t0)
	s.memberFailed("creator", t0) // seen alive, then failed: down
	s.memberFailed("quiet", t0)
	s.memberLeft("left", t0)
	s.memberFailed("a", t0) // never so, but were it told
	d := s.down()
	if len(d) != 3 || !d["b"].Equal(t0) || !d["creator"].Equal(t0) || !d["quiet"].Equal(t0) {
		t.Errorf("down %v, want b, creator and quiet", d)
	}
	s.memberAlive("quiet")
	if _, ok := s.down()["quiet"]; ok {
		t.Error("quiet is down after it came back")
	}
}

// TestStore_adoptedRowYieldsToLaterDelete: a row adopted from an earlier
// run and a tombstone of that run written after it: the tombstone wins
// once adopting ends, as the later write anywhere would.
func TestStore_adoptedRowYieldsToLaterDelete(t *testing.T) {
	s := newStore("a", testTimings(), 0, 100)
	s.adopt = true
	s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "a", Version: 10, Epoch: 50, Seq: 3, Value: []byte("v")}, t0)
	s.adopt = false
	res, _ := s.apply(Entry{Table: "endpoints", Key: "web/c", Owner: "a", Version: 12, Epoch: 50, Seq: 4, Deleted: true, DeletedAt: t0.UnixNano()}, t0)
	if _, ok := s.get("endpoints", "web/c"); ok || res == applyReclaimed {
		t.Errorf("the adopted row came back over a later delete of its run: %v", res)
	}
}

// TestGossip_ownRowsAndWaitQuiet: what a node persists is its own rows of
// host-scoped tables, never another node's or a cluster table's; a node
// that joined waits until rows stop arriving.
func TestGossip_ownRowsAndWaitQuiet(t *testing.T) {
	cfg := FastTimings()
	cfg.ClusterTables = []string{"networks"}
	c := newClusterWith(t, 2, cfg)
	a, b := c.nodes[0], c.nodes[1]
	a.Put("networks", "web", []byte("n"))
	a.Put("endpoints", "web/a", []byte("a"))
	b.Put("endpoints", "web/b", []byte("b"))
	c.waitConverged(3)
	rows := a.OwnRows()
	if len(rows) != 1 || rows[0].Table != "endpoints" || rows[0].Key != "web/a" {
		t.Errorf("own rows %+v, want this node's endpoint only", rows)
	}
	if !a.IsCluster("networks") || a.IsCluster("endpoints") {
		t.Error("IsCluster does not follow Config.ClusterTables")
	}
	// Rows arriving keep it waiting; quiet, it returns.
	done := make(chan struct{})
	go func() { a.WaitQuiet(context.Background(), 2*time.Second, time.Minute); close(done) }()
	for i := 0; i < 5; i++ {
		b.Put("endpoints", fmt.Sprintf("web/b%d", i), []byte("b"))
		select {
		case <-done:
			t.Fatal("WaitQuiet returned while rows were arriving")
		case <-time.After(100 * time.Millisecond):
		}
	}
	waitFor(t, "WaitQuiet to return once rows stopped", 10*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}
