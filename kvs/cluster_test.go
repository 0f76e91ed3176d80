package kvs

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/gossiptest"
	"github.com/vxnet/vxnet/internal/testutil"
)

// cluster is an in-process cluster on an in-memory network.
type cluster struct {
	t     *testing.T
	net   *gossiptest.Network
	nodes []*Gossip
	names []string
	dead  map[string]bool
	addrs []string
	cfg   Config // for every node: FastTimings unless said
}

func newCluster(t *testing.T, n int) *cluster { return newClusterWith(t, n, FastTimings()) }

func newClusterWith(t *testing.T, n int, cfg Config) *cluster {
	t.Helper()
	c := &cluster{t: t, net: gossiptest.NewNetwork(int64(n)), dead: map[string]bool{}, cfg: cfg}
	var seed string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node%02d", i)
		g := c.start(name, seed)
		if i == 0 {
			seed = c.addr(0)
		}
		_ = g
	}
	c.waitMembers(n)
	return c
}

func (c *cluster) start(name, seed string) *Gossip {
	c.t.Helper()
	tr := c.net.NewTransport(name)
	gcfg := gossip.DefaultFastConfig(name)
	gcfg.Transport = tr
	if seed != "" {
		gcfg.Seeds = []string{seed}
	}
	g, err := NewGossip(c.cfg, gcfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { g.Close() })
	if seed != "" {
		if _, err := g.Node().Join(10 * time.Second); err != nil {
			c.t.Fatal(err)
		}
	}
	c.nodes = append(c.nodes, g)
	c.names = append(c.names, name)
	c.addrs = append(c.addrs, tr.Addr())
	return g
}

func (c *cluster) addr(i int) string { return c.addrs[i] }

func (c *cluster) live() []*Gossip {
	var out []*Gossip
	for i, g := range c.nodes {
		if !c.dead[c.names[i]] {
			out = append(out, g)
		}
	}
	return out
}

func (c *cluster) waitMembers(n int) { c.t.Helper(); waitMembersOf(c.t, n, c.live) }

// waitConverged waits until every live node shows the same rows, and
// rows of them.
func (c *cluster) waitConverged(rows int) { c.t.Helper(); waitConvergedOf(c.t, rows, c.live) }

// waitSplit waits until, after a partition, the first sizes[0] nodes see
// only each other (and the rest, sizes[1] if given, see only theirs).
func (c *cluster) waitSplit(sizes ...int) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("the partition to split the cluster %v", sizes), 30*time.Second, func() bool {
		for i, g := range c.nodes {
			want := sizes[0]
			if i >= sizes[0] {
				if len(sizes) < 2 {
					continue
				}
				want = sizes[1]
			}
			if g.Node().NumMembers() != want {
				return false
			}
		}
		return true
	})
}

var waitFor = testutil.WaitFor

func TestCluster_converges(t *testing.T) {
	for _, n := range []int{3, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 10 && (testing.Short() || raceEnabled) {
				t.Skip("large cluster: run without -race and -short (make test does)")
			}
			c := newCluster(t, n)
			for i, g := range c.nodes {
				for k := 0; k < 5; k++ {
					if _, err := g.Put("endpoints", fmt.Sprintf("%s-%d", c.names[i], k), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
			}
			c.waitConverged(5 * n)
		})
	}
}

func TestCluster_concurrentWritersLoseNothing(t *testing.T) {
	c := newCluster(t, 10)
	var wg sync.WaitGroup
	for i, g := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				g.Put("t", fmt.Sprintf("%d/%d", i, k), []byte{byte(k)})
			}
		}()
	}
	wg.Wait()
	c.waitConverged(500)
}

func TestCluster_partitionHeals(t *testing.T) {
	c := newCluster(t, 6)
	left, right := c.names[:3], c.names[3:]
	c.net.Partition(left, right)
	c.waitSplit(3)
	c.nodes[0].Put("t", "left", []byte("l"))
	c.nodes[5].Put("t", "right", []byte("r"))
	c.net.Heal()
	c.waitMembers(6)
	c.waitConverged(2)
}

func TestCluster_killedNodeWithdrawnThenBack(t *testing.T) {
	c := newCluster(t, 5)
	victim := c.nodes[3]
	victim.Put("endpoints", "victim-ep", []byte("v"))
	c.nodes[0].Put("endpoints", "survivor-ep", []byte("s"))
	c.waitConverged(2)

	c.net.Kill(c.names[3])
	c.dead[c.names[3]] = true
	waitFor(t, "every survivor to withdraw the dead node's row", 15*time.Second, func() bool {
		for _, g := range c.live() {
			if _, ok := g.Get("endpoints", "victim-ep"); ok {
				return false
			}
		}
		return true
	})
	c.waitConverged(1)

	c.net.Revive(c.names[3])
	delete(c.dead, c.names[3])
	c.waitMembers(5)
	c.waitConverged(2) // the row is back everywhere, without a new write
}

func TestCluster_deletedNeverComesBack(t *testing.T) {
	c := newCluster(t, 4)
	c.nodes[0].Put("t", "k", []byte("v"))
	c.waitConverged(1)
	// Node 3 is cut off while the row is deleted, then heals and repairs.
	c.net.Partition(c.names[:3], c.names[3:])
	c.waitSplit(3, 1)
	if err := c.nodes[0].Delete("t", "k"); err != nil {
		t.Fatal(err)
	}
	c.nodes[1].Put("t", "other", []byte("x"))
	c.net.Heal()
	c.waitMembers(4)
	c.waitConverged(1)
	for _, g := range c.nodes {
		if _, ok := g.Get("t", "k"); ok {
			t.Errorf("%s: the deleted row came back", g.Node().Name())
		}
	}
}

func TestCluster_gracefulLeaveWithdrawsAtOnce(t *testing.T) {
	c := newCluster(t, 4)
	c.nodes[2].Put("t", "leaver", []byte("x"))
	c.waitConverged(1)
	if err := c.nodes[2].Node().Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.nodes[2].Close()
	c.dead[c.names[2]] = true
	c.waitConverged(0)
	// Withdrawn because it left: a failed node's rows would be hidden but
	// kept (for its return) until ReapAfter.
	for _, g := range c.live() {
		if s := g.Stats(); s.Rows != 0 {
			t.Errorf("%s still holds %d rows of a node that left", g.Node().Name(), s.Rows)
		}
	}
}

func TestGossip_malformedMessageCountedNotApplied(t *testing.T) {
	c := newCluster(t, 1)
	g := c.nodes[0]
	before := g.Digest()
	for _, b := range [][]byte{{0xB7}, {0xB7, 1, 0xff}, []byte("garbage")} {
		g.NotifyMsg(b)
		g.MergeRemoteState(b, false)
	}
	if s := g.Stats(); s.Malformed != 6 || g.Digest() != before {
		t.Errorf("malformed: %+v", s)
	}
}

// TestCluster_joinSetsOffNoStorm is docker/libnetwork#2216: a node that
// joins a cluster holding many rows learns them by repair, and nobody
// forwards them again.
func TestCluster_joinSetsOffNoStorm(t *testing.T) {
	c := newCluster(t, 4)
	for i, g := range c.nodes {
		for k := 0; k < 100; k++ {
			g.Put("t", fmt.Sprintf("%d/%d", i, k), []byte("v"))
		}
	}
	c.waitConverged(400)
	// Quiet first: nothing left to forward or being sent, nothing left
	// in memberlist's piggyback queues (a newcomer may still learn recent
	// writes from those, which is no storm).
	waitFor(t, "forwarding and piggybacking to finish", 30*time.Second, func() bool {
		for _, g := range c.nodes {
			if g.outboxLen() != 0 || g.Node().QueuedBroadcasts() != 0 {
				return false
			}
		}
		return true
	})
	forwarded := func() (n uint64) {
		for _, g := range c.nodes {
			n += g.Stats().Forwarded
		}
		return n
	}
	before := forwarded()
	c.start("late", c.addr(0))
	c.waitMembers(5)
	c.waitConverged(400)
	if after := forwarded(); after != before {
		t.Errorf("the join made the cluster forward %d rows again", after-before)
	}
}

// TestCluster_convergesUnderLoss: with a fifth of all packets lost, every
// row still reaches every node. (Which mechanism repairs a given loss,
// forwarding, the origin's piggyback queue, stream sync or push/pull,
// depends on timing; stream sync itself is tested in store_test.go.)
func TestCluster_convergesUnderLoss(t *testing.T) {
	c := newCluster(t, 8)
	c.net.SetLoss(0.2)
	for i, g := range c.nodes {
		for k := 0; k < 10; k++ {
			g.Put("t", fmt.Sprintf("%d/%d", i, k), []byte("v"))
		}
	}
	c.waitConverged(80)
}

// TestCluster_restartNewEpoch: a node restarts (new run, new address) with
// only some of its rows persisted. The others learn the new run, and the
// rows it no longer has are deleted everywhere: it is the authority on its
// own rows.
func TestCluster_restartNewEpoch(t *testing.T) {
	c := newCluster(t, 4)
	c.nodes[3].Put("t", "kept", []byte("old"))
	c.nodes[3].Put("t", "lost", []byte("x"))
	c.waitConverged(2)
	name := c.names[3]
	c.net.Kill(name)
	c.nodes[3].Close()
	c.dead[name] = true
	c.waitMembers(3)

	c.net.Revive(name) // the name, not the old transport: it is shut down
	tr := c.net.NewTransport(name)
	gcfg := gossip.DefaultFastConfig(name)
	gcfg.Transport = tr
	gcfg.Seeds = []string{c.addr(0)}
	kc := FastTimings()
	kc.InitialRows = []Row{{Table: "t", Key: "kept", Value: []byte("new")}}
	g, err := NewGossip(kc, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	// memberlist gives a dead node's name to a new address only after
	// GossipToTheDeadTime; Join retries until then.
	if _, err := g.Node().Join(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.nodes[3] = g
	delete(c.dead, name)
	c.waitMembers(4)
	c.waitConverged(1)
	for _, n := range c.nodes {
		if e, ok := n.Get("t", "kept"); !ok || string(e.Value) != "new" {
			t.Errorf("%s: kept = %q %v, want the restarted node's new value", n.Node().Name(), e.Value, ok)
		}
	}
}
