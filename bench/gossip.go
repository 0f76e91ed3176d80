package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/memnet"
	"github.com/vxnet/vxnet/kvs"
)

// GossipScenario is one convergence measurement of the replicated tables.
type GossipScenario struct {
	Nodes   int
	Puts    int            // tracked puts, from random nodes, one every PutGap
	PutGap  time.Duration  // default 50 ms
	Loss    float64        // packet loss on the in-memory network, 0-1
	Churn   bool           // other nodes keep writing and deleting meanwhile
	Profile gossip.Profile // memberlist timings
}

// GossipResult is what a scenario measured. Latency is, per tracked put,
// the time until the last node saw it.
type GossipResult struct {
	Scenario           string
	Nodes              int
	P50, P90, P99, Max time.Duration
	Missing            int     // (put, node) pairs never seen before the deadline
	BytesPerNodeSec    float64 // bytes sent per node per second during the run
	Duration           time.Duration
}

// cluster is an in-process gossip cluster with a watcher per node that
// records when each key first became visible, or invisible.
type cluster struct {
	net   *memnet.Network
	names []string
	nodes []*kvs.Gossip

	mu    sync.Mutex
	seen  []map[string]time.Time // per node: key -> first put event
	gone  []map[string]time.Time // per node: key -> first delete event
	stops []func()
}

// newCluster starts n nodes on net and waits until they all see each other.
func newCluster(net *memnet.Network, n int, profile gossip.Profile) (*cluster, error) {
	c := &cluster{net: net}
	var seedAddr string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("n%03d", i)
		tr := c.net.NewTransport(name)
		gc := gossip.Config{Name: name, Profile: profile, Transport: tr}
		if seedAddr != "" {
			gc.Seeds = []string{seedAddr}
		}
		gc.Tune = func(mc *memberlist.Config) { mc.Logger = nil; mc.LogOutput = discard{} }
		kc := kvs.DefaultConfig()
		if profile == gossip.ProfileFast {
			kc = kvs.FastTimings()
		}
		g, err := kvs.NewGossip(kc, gc)
		if err != nil {
			c.close()
			return nil, err
		}
		c.names = append(c.names, name)
		c.nodes = append(c.nodes, g)
		c.seen = append(c.seen, map[string]time.Time{})
		c.gone = append(c.gone, map[string]time.Time{})
		c.watch(i, g)
		if seedAddr == "" {
			seedAddr = tr.Addr()
		} else if _, err := g.Node().Join(30 * time.Second); err != nil {
			c.close()
			return nil, err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for !c.allSee(n) {
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("bench: %d nodes did not find each other in 60s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (c *cluster) watch(i int, g *kvs.Gossip) {
	_, events, cancel := g.Watch("")
	c.stops = append(c.stops, cancel)
	go func() {
		for ev := range events {
			now := time.Now()
			c.mu.Lock()
			m := c.seen[i]
			if ev.Type == kvs.EventDelete {
				m = c.gone[i]
			}
			if _, ok := m[ev.Entry.Key]; !ok {
				m[ev.Entry.Key] = now
			}
			c.mu.Unlock()
		}
	}()
}

func (c *cluster) allSee(n int) bool {
	for _, g := range c.nodes {
		if g.Node().NumMembers() != n {
			return false
		}
	}
	return true
}

func (c *cluster) close() {
	for _, s := range c.stops {
		s()
	}
	for _, g := range c.nodes {
		g.Close()
	}
}

func (c *cluster) bytesSent() uint64 {
	var total uint64
	for _, n := range c.names {
		total += c.net.BytesSentBy(n)
	}
	return total
}

// lastSeen returns, for key, the time the last of the given nodes saw it
// appear (gone=false) or disappear, and how many never did.
func (c *cluster) lastSeen(key string, nodes []int, gone bool) (time.Time, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	missing := 0
	for _, i := range nodes {
		m := c.seen[i]
		if gone {
			m = c.gone[i]
		}
		t, ok := m[key]
		if !ok {
			missing++
			continue
		}
		if t.After(last) {
			last = t
		}
	}
	return last, missing
}

// RunGossip builds a cluster and measures how long puts take to reach
// every node.
func RunGossip(ctx context.Context, s GossipScenario) (GossipResult, error) {
	if s.PutGap == 0 {
		s.PutGap = 50 * time.Millisecond
	}
	if s.Puts == 0 {
		s.Puts = 100
	}
	name := fmt.Sprintf("%s quiet", s.Profile)
	if s.Churn {
		name = fmt.Sprintf("%s churn, %.0f%% loss", s.Profile, s.Loss*100)
	}
	res := GossipResult{Scenario: name, Nodes: s.Nodes}
	c, err := newCluster(memnet.NewNetwork(int64(s.Nodes)), s.Nodes, s.Profile)
	if err != nil {
		return res, err
	}
	defer c.close()
	c.net.SetLoss(s.Loss)
	all := make([]int, s.Nodes)
	for i := range all {
		all[i] = i
	}

	stopChurn := make(chan struct{})
	var churn sync.WaitGroup
	defer func() { close(stopChurn); churn.Wait() }()
	if s.Churn {
		// A tenth of the nodes start and stop "containers" all along:
		// a put and, shortly after, a delete, every 100 ms each.
		for w := 0; w < max(1, s.Nodes/10); w++ {
			churn.Add(1)
			go func(g *kvs.Gossip, w int) {
				defer churn.Done()
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for k := 0; ; k++ {
					select {
					case <-stopChurn:
						return
					case <-t.C:
					}
					key := fmt.Sprintf("churn-%d-%d", w, k)
					g.Put("churn", key, []byte("x"))
					if k > 0 {
						g.Delete("churn", fmt.Sprintf("churn-%d-%d", w, k-1))
					}
				}
			}(c.nodes[s.Nodes-1-w], w)
		}
	}

	startBytes, start := c.bytesSent(), time.Now()
	putAt := make(map[string]time.Time, s.Puts)
	rng := rand.New(rand.NewPCG(uint64(s.Nodes), 7))
	for i := 0; i < s.Puts; i++ {
		key := fmt.Sprintf("tracked-%d", i)
		g := c.nodes[rng.IntN(s.Nodes)]
		putAt[key] = time.Now()
		if _, err := g.Put("endpoints", key, []byte("v")); err != nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(s.PutGap):
		}
	}
	// Wait for the stragglers: at most 30 s after the last put.
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		lat, res.Missing = lat[:0], 0
		for key, at := range putAt {
			last, missing := c.lastSeen(key, all, false)
			res.Missing += missing
			if missing == 0 {
				lat = append(lat, last.Sub(at))
			}
		}
		if res.Missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.Duration = time.Since(start)
	res.BytesPerNodeSec = float64(c.bytesSent()-startBytes) / float64(s.Nodes) / res.Duration.Seconds()
	res.P50, res.P90, res.P99, res.Max = percentiles(lat)
	return res, nil
}

// RunFailover kills one node (its network goes silent, as on power loss)
// and measures how long until every other node has withdrawn its row.
func RunFailover(ctx context.Context, nodes int, profile gossip.Profile) (time.Duration, error) {
	c, err := newCluster(memnet.NewNetwork(int64(nodes)+1), nodes, profile)
	if err != nil {
		return 0, err
	}
	defer c.close()
	victim := nodes / 2
	if _, err := c.nodes[victim].Put("endpoints", "victim", []byte("v")); err != nil {
		return 0, err
	}
	var others []int
	for i := range c.nodes {
		if i != victim {
			others = append(others, i)
		}
	}
	replicated := time.Now().Add(time.Minute)
	for {
		if _, missing := c.lastSeen("victim", others, false); missing == 0 {
			break
		}
		if time.Now().After(replicated) {
			return 0, fmt.Errorf("bench: the victim's row did not reach every node in a minute")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	killed := time.Now()
	c.net.Kill(c.names[victim])
	deadline := killed.Add(2 * time.Minute)
	for {
		last, missing := c.lastSeen("victim", others, true)
		if missing == 0 {
			return last.Sub(killed), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: %d of %d nodes still show the dead node's row after 2 min", missing, len(others))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func percentiles(d []time.Duration) (p50, p90, p99, maxd time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return at(0.50), at(0.90), at(0.99), d[len(d)-1]
}

// Gossip profiles, for callers that may not import gossip (cmd/vxnet).
const (
	ProfileLAN  = gossip.ProfileLAN
	ProfileFast = gossip.ProfileFast
)
