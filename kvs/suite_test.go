package kvs

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/gossiptest"
	"github.com/vxnet/vxnet/internal/etcdtest"
)

// The behaviour every backend promises, as one suite run against each:
// what readers see, who may delete what, which of two claims wins, that a
// dead host's rows go and a restarted one takes its own back.

// backend opens nodes of one kind.
type backend struct {
	name string
	// open starts a node; the suite joins it to the gossip cluster.
	open func(t *testing.T, cfg Config, gcfg gossip.Config) Tables
}

func gossipBackend() backend {
	return backend{name: "gossip", open: func(t *testing.T, cfg Config, gcfg gossip.Config) Tables {
		g, err := NewGossip(cfg, gcfg)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}}
}

// etcdBackend runs every node of a suite on one real 3-member etcd
// cluster, each suite cluster under a prefix of its own.
func etcdBackend(t *testing.T) backend {
	ec := etcdtest.Start(t, 3)
	return backend{name: "etcd", open: func(t *testing.T, cfg Config, gcfg gossip.Config) Tables {
		e, err := NewEtcd(cfg, EtcdConfig{Endpoints: ec.Endpoints(), Prefix: suitePrefix(t), LeaseTTL: 2 * time.Second}, gcfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}}
}

// suitePrefix is one prefix per test: every node a test opens uses it.
func suitePrefix(t *testing.T) string {
	return "/vxnet-test/" + t.Name()
}

// suite is a cluster of nodes of one backend on an in-memory gossip
// network (membership) and, for etcd, a real etcd.
type suite struct {
	t     *testing.T
	b     backend
	cfg   Config
	net   *gossiptest.Network
	nodes []Tables
	names []string
	addrs []string
	dead  map[int]bool
}

func newSuite(t *testing.T, b backend, n int, cfg Config) *suite {
	t.Helper()
	s := &suite{t: t, b: b, cfg: cfg, net: gossiptest.NewNetwork(int64(n)), dead: map[int]bool{}}
	for i := range n {
		name := fmt.Sprintf("node%02d", i)
		s.names = append(s.names, name)
		s.nodes = append(s.nodes, nil)
		s.addrs = append(s.addrs, "")
		s.start(i, cfg)
	}
	s.waitMembers(n)
	return s
}

// start (re)starts node i with cfg and joins it to node 0 (or any live
// node).
func (s *suite) start(i int, cfg Config) Tables {
	s.t.Helper()
	name := s.names[i]
	s.net.Revive(name)
	tr := s.net.NewTransport(name)
	gcfg := gossip.DefaultFastConfig(name)
	gcfg.Transport = tr
	var seed string
	for j := range s.nodes {
		if j != i && s.nodes[j] != nil && !s.dead[j] {
			seed = s.addrs[j]
			break
		}
	}
	if seed != "" {
		gcfg.Seeds = []string{seed}
	}
	n := s.b.open(s.t, cfg, gcfg)
	s.t.Cleanup(func() { n.Close() })
	if seed != "" {
		// memberlist gives a dead node's name to a new address only after
		// GossipToTheDeadTime; Join retries until then.
		if _, err := n.Node().Join(30 * time.Second); err != nil {
			s.t.Fatal(err)
		}
	}
	s.nodes[i], s.addrs[i] = n, tr.Addr()
	delete(s.dead, i)
	return n
}

// kill stops node i as kill -9 would.
func (s *suite) kill(i int) {
	s.net.Kill(s.names[i])
	s.nodes[i].Close()
	s.dead[i] = true
}

func (s *suite) live() []Tables {
	var out []Tables
	for i, n := range s.nodes {
		if !s.dead[i] {
			out = append(out, n)
		}
	}
	return out
}

func (s *suite) waitMembers(n int) { s.t.Helper(); waitMembersOf(s.t, n, s.live) }

// waitConverged waits until every live node shows the same rows, and
// rows of them.
func (s *suite) waitConverged(rows int) { s.t.Helper(); waitConvergedOf(s.t, rows, s.live) }

// node is what the cluster helpers need of any backend's node.
type node interface {
	Node() *gossip.Node
	List(table string) []Entry
	Digest() uint64
}

// waitMembersOf waits until every node live returns sees n members.
func waitMembersOf[N node](t *testing.T, n int, live func() []N) {
	t.Helper()
	waitFor(t, fmt.Sprintf("every node to see %d members", n), 30*time.Second, func() bool {
		for _, g := range live() {
			if g.Node().NumMembers() != n {
				return false
			}
		}
		return true
	})
}

// waitConvergedOf waits until every node live returns shows the same
// rows, and rows of them.
func waitConvergedOf[N node](t *testing.T, rows int, live func() []N) {
	t.Helper()
	waitFor(t, fmt.Sprintf("every live node to show the same %d rows", rows), 30*time.Second, func() bool {
		nodes := live()
		want := nodes[0].Digest()
		for _, g := range nodes {
			if g.Digest() != want || len(g.List("")) != rows {
				return false
			}
		}
		return true
	})
}

// waitEverywhere waits until every live node's reader sees table/key with
// value (nil: sees no such row).
func (s *suite) waitEverywhere(table, key string, value []byte, owner string) {
	s.t.Helper()
	what := fmt.Sprintf("every live node to see %s/%s = %q from %s", table, key, value, owner)
	if value == nil {
		what = fmt.Sprintf("every live node to see no %s/%s", table, key)
	}
	waitFor(s.t, what, 30*time.Second, func() bool {
		for _, g := range s.live() {
			e, ok := g.Get(table, key)
			if value == nil && ok || value != nil && (!ok || string(e.Value) != string(value) || e.Owner != owner) {
				return false
			}
		}
		return true
	})
}

func mustPut(t *testing.T, n Tables, table, key, value string) Entry {
	t.Helper()
	e, err := n.Put(table, key, []byte(value))
	if err != nil {
		t.Fatalf("%s: put %s/%s: %v", n.Node().Name(), table, key, err)
	}
	return e
}

func suiteConfig() Config {
	cfg := FastTimings()
	cfg.ClusterTables = []string{"networks"}
	cfg.FirstClaim = []string{"endpoints"}
	return cfg
}

// runSuite runs the behavioural suite against one backend.
func runSuite(t *testing.T, b backend) {
	t.Run("readYourWritesAndConverge", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		for i, n := range s.nodes {
			for k := range 5 {
				key := fmt.Sprintf("%s-%d", s.names[i], k)
				mustPut(t, n, "t", key, "v")
				if e, ok := n.Get("t", key); !ok || e.Owner != s.names[i] {
					t.Fatalf("%s: its own write %s is not visible to it at once: %v %v", s.names[i], key, e, ok)
				}
			}
		}
		s.waitConverged(15)
	})
	t.Run("concurrentWritersLoseNothing", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		var wg sync.WaitGroup
		for i, n := range s.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 40 {
					if _, err := n.Put("t", fmt.Sprintf("%d/%d", i, k), []byte{byte(k)}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		s.waitConverged(120)
	})
	t.Run("lastWriteWinsAndVersionsGrow", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		e1 := mustPut(t, s.nodes[0], "t", "k", "v1")
		e2 := mustPut(t, s.nodes[0], "t", "k", "v2")
		if e2.Version <= e1.Version {
			t.Errorf("second write's version %d is not above the first's %d", e2.Version, e1.Version)
		}
		s.waitEverywhere("t", "k", []byte("v2"), s.names[0])
		// Another host's later write of the key wins (host-scoped tables:
		// last writer).
		mustPut(t, s.nodes[1], "t", "k", "other")
		s.waitEverywhere("t", "k", []byte("other"), s.names[1])
	})
	t.Run("onlyTheOwnerDeletes", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		mustPut(t, s.nodes[0], "t", "k", "v")
		s.waitEverywhere("t", "k", []byte("v"), s.names[0])
		if err := s.nodes[1].Delete("t", "k"); !errors.Is(err, ErrNotOwner) {
			t.Errorf("delete of another host's row: %v, want ErrNotOwner", err)
		}
		if err := s.nodes[1].Delete("t", "nothing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete of no row: %v, want ErrNotFound", err)
		}
		if err := s.nodes[0].Delete("t", "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.nodes[0].Get("t", "k"); ok {
			t.Error("a deleted row is still visible to the host that deleted it")
		}
		s.waitEverywhere("t", "k", nil, "")
	})
	t.Run("clusterRowsAnyoneDeletesAndOutliveWriter", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		mustPut(t, s.nodes[2], "networks", "web", "n")
		mustPut(t, s.nodes[2], "networks", "db", "n")
		mustPut(t, s.nodes[2], "endpoints", "web/e", "e")
		s.waitConverged(3)
		s.kill(2)
		s.waitEverywhere("endpoints", "web/e", nil, "")
		s.waitConverged(2) // the networks stay
		if err := s.nodes[1].Delete("networks", "web"); err != nil {
			t.Fatalf("delete of a cluster row by a host that did not write it: %v", err)
		}
		s.waitEverywhere("networks", "web", nil, "")
		// A later write of the name by anyone is a new row.
		mustPut(t, s.nodes[0], "networks", "web", "again")
		s.waitEverywhere("networks", "web", []byte("again"), s.names[0])
	})
	t.Run("firstClaimWins", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		mustPut(t, s.nodes[0], "endpoints", "web/c1", "first")
		s.waitEverywhere("endpoints", "web/c1", []byte("first"), s.names[0])
		mustPut(t, s.nodes[1], "endpoints", "web/c1", "second")
		mustPut(t, s.nodes[0], "endpoints", "web/c1", "first-rewritten")
		s.waitEverywhere("endpoints", "web/c1", []byte("first-rewritten"), s.names[0])
		if err := s.nodes[0].Delete("endpoints", "web/c1"); err != nil {
			t.Fatal(err)
		}
		s.waitEverywhere("endpoints", "web/c1", []byte("second"), s.names[1])
	})
	t.Run("watchSeesChangesInOrder", func(t *testing.T) {
		s := newSuite(t, b, 2, suiteConfig())
		mustPut(t, s.nodes[1], "t", "before", "b")
		s.waitEverywhere("t", "before", []byte("b"), s.names[1])
		snap, events, cancel := s.nodes[0].Watch("t")
		defer cancel()
		if len(snap) != 1 || snap[0].Key != "before" {
			t.Fatalf("snapshot %v, want the row written before", snap)
		}
		for i := range 5 {
			mustPut(t, s.nodes[1], "t", "k", fmt.Sprint(i))
		}
		if err := s.nodes[1].Delete("t", "k"); err != nil {
			t.Fatal(err)
		}
		// Every event is the row as it was then; the last says deleted.
		deadline := time.After(30 * time.Second)
		last := -1
		for {
			select {
			case ev := <-events:
				if ev.Entry.Key != "k" {
					t.Fatalf("event for %s", ev.Entry)
				}
				if ev.Type == EventDelete {
					return
				}
				var v int
				fmt.Sscan(string(ev.Entry.Value), &v)
				if v <= last {
					t.Fatalf("event %d after %d: out of order", v, last)
				}
				last = v
			case <-deadline:
				t.Fatalf("no delete event (last put seen %d)", last)
			}
		}
	})
	t.Run("deadHostsRowsGoRestartTakesOwnBack", func(t *testing.T) {
		s := newSuite(t, b, 3, suiteConfig())
		mustPut(t, s.nodes[2], "t", "kept", "old")
		mustPut(t, s.nodes[2], "t", "lost", "x")
		mustPut(t, s.nodes[0], "t", "survivor", "s")
		s.waitConverged(3)
		s.kill(2)
		s.waitEverywhere("t", "kept", nil, "")
		s.waitEverywhere("t", "lost", nil, "")
		s.waitConverged(1)
		// Back with its persisted rows: "kept" changed, "lost" not among them.
		cfg := suiteConfig()
		cfg.InitialRows = []Row{{Table: "t", Key: "kept", Value: []byte("new")}}
		s.start(2, cfg)
		s.waitMembers(3)
		s.waitEverywhere("t", "kept", []byte("new"), s.names[2])
		s.waitConverged(2)
	})
	t.Run("quickRestartDropsRowsItNoLongerHolds", func(t *testing.T) {
		s := newSuite(t, b, 2, suiteConfig())
		mustPut(t, s.nodes[1], "t", "kept", "old")
		mustPut(t, s.nodes[1], "t", "stale", "x")
		s.waitConverged(2)
		s.kill(1)
		// Back before anyone withdrew its rows: it is the authority on them.
		cfg := suiteConfig()
		cfg.InitialRows = []Row{{Table: "t", Key: "kept", Value: []byte("new")}}
		s.start(1, cfg)
		s.waitMembers(2)
		s.waitEverywhere("t", "stale", nil, "")
		s.waitEverywhere("t", "kept", []byte("new"), s.names[1])
		if rows := s.nodes[1].OwnRows(); len(rows) != 1 || rows[0].Key != "kept" {
			t.Errorf("own rows %+v, want only kept", rows)
		}
	})
	t.Run("adoptOwnRowsAfterLostState", func(t *testing.T) {
		s := newSuite(t, b, 2, suiteConfig())
		mustPut(t, s.nodes[1], "endpoints", "web/mine", "m")
		s.waitConverged(1)
		s.kill(1)
		cfg := suiteConfig()
		cfg.AdoptOwnRows = true
		n := s.start(1, cfg)
		s.waitMembers(2)
		waitFor(t, "the restarted host to adopt its row", 30*time.Second, func() bool {
			rows := n.OwnRows()
			return len(rows) == 1 && rows[0].Key == "web/mine"
		})
		n.StopAdopting()
		// Adopted rows are its own again: it can delete them.
		if err := n.Delete("endpoints", "web/mine"); err != nil {
			t.Fatal(err)
		}
		s.waitConverged(0)
	})
	t.Run("ownRowsAndClusterEntries", func(t *testing.T) {
		s := newSuite(t, b, 2, suiteConfig())
		a, c := s.nodes[0], s.nodes[1]
		mustPut(t, a, "networks", "web", "n")
		mustPut(t, a, "endpoints", "web/a", "a")
		mustPut(t, c, "endpoints", "web/b", "b")
		s.waitConverged(3)
		if rows := a.OwnRows(); len(rows) != 1 || rows[0].Table != "endpoints" || rows[0].Key != "web/a" {
			t.Errorf("own rows %+v, want this node's endpoint only", rows)
		}
		if es := c.ClusterEntries(); len(es) != 1 || es[0].Key != "web" || es[0].Owner != s.names[0] {
			t.Errorf("cluster entries %+v, want the network", es)
		}
		if !a.IsCluster("networks") || a.IsCluster("endpoints") {
			t.Error("IsCluster does not follow Config.ClusterTables")
		}
		if h := a.Health(); !h.Up || h.Backend != b.name {
			t.Errorf("health %+v, want up", h)
		}
	})
	t.Run("badRowsRefused", func(t *testing.T) {
		s := newSuite(t, b, 1, suiteConfig())
		for _, c := range []struct{ table, key string }{{"", "k"}, {"t", ""}, {string(make([]byte, MaxNameLen+1)), "k"}} {
			if _, err := s.nodes[0].Put(c.table, c.key, []byte("v")); err == nil {
				t.Errorf("put %q/%q accepted", c.table, c.key)
			}
		}
		if _, err := s.nodes[0].Put("t", "k", make([]byte, MaxValueLen+1)); err == nil {
			t.Error("an oversize value was accepted")
		}
		// Keys with any bytes, slashes included, round-trip.
		for _, k := range []string{"a/b/c", "%2F", "sp ace", "ü/ñ"} {
			mustPut(t, s.nodes[0], "t", k, k)
			if e, ok := s.nodes[0].Get("t", k); !ok || string(e.Value) != k {
				t.Errorf("key %q: %v %v", k, e, ok)
			}
		}
	})
}

func TestBackends(t *testing.T) {
	t.Run("gossip", func(t *testing.T) { runSuite(t, gossipBackend()) })
	t.Run("etcd", func(t *testing.T) { runSuite(t, etcdBackend(t)) })
}
