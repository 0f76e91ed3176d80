package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/memnet"
	"github.com/vxnet/vxnet/internal/etcdrun"
	"github.com/vxnet/vxnet/ipam/kvstable"
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
	// Etcd, when set, keeps the tables in this etcd cluster (client
	// URLs) instead of gossip; gossip then only carries membership.
	Etcd []string
}

// etcdPrefixes makes every scenario's etcd prefix its own.
var etcdPrefixes atomic.Uint64

// etcdPrefix is a fresh prefix for one cluster of a benchmark.
func etcdPrefix() string {
	return fmt.Sprintf("/vxnet-bench/%d-%d", time.Now().UnixNano(), etcdPrefixes.Add(1))
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
	nodes []kvs.Tables

	mu    sync.Mutex
	seen  []map[string]time.Time // per node: key -> first put event
	gone  []map[string]time.Time // per node: key -> first delete event
	stops []func()
}

// newCluster starts n nodes on net and waits until they all see each
// other; with etcd endpoints, their tables are in etcd.
func newCluster(net *memnet.Network, n int, profile gossip.Profile, etcd []string) (*cluster, error) {
	c := &cluster{net: net}
	prefix := etcdPrefix()
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
		kc.ClusterTables = kvstable.ClusterTables // as the agent's: IPAM's claims are the cluster's
		var g kvs.Tables
		var err error
		if len(etcd) > 0 {
			// A lease as short as the fast profile's failure detection.
			g, err = kvs.NewEtcd(kc, kvs.EtcdConfig{Endpoints: etcd, Prefix: prefix, LeaseTTL: 3 * time.Second}, gc)
		} else {
			g, err = kvs.NewGossip(kc, gc)
		}
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
	for !c.allSee(n) || !c.allUp() {
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

func (c *cluster) watch(i int, g kvs.Tables) {
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

func (c *cluster) allUp() bool {
	for _, g := range c.nodes {
		if !g.Health().Up {
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
	c, err := newCluster(memnet.NewNetwork(int64(s.Nodes)), s.Nodes, s.Profile, s.Etcd)
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
			go func(g kvs.Tables, w int) {
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
// With etcd endpoints the tables are in etcd and the node's row goes with
// its lease (3 s).
func RunFailover(ctx context.Context, nodes int, profile gossip.Profile, etcd []string) (time.Duration, error) {
	c, err := newCluster(memnet.NewNetwork(int64(nodes)+1), nodes, profile, etcd)
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
	if len(etcd) > 0 {
		c.nodes[victim].Close() // it stops renewing its lease, as on power loss
	}
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

// WritesResult is a write-throughput measurement: Writers nodes putting
// rows one after the other, as fast as their store takes them.
type WritesResult struct {
	Nodes, Writers int
	Puts           int           // puts that returned without error
	PerSec         float64       // of them, per second, all writers together
	PutP50, PutP99 time.Duration // how long one put took to return
	// Visible is how long after the last put every node showed every
	// row; Missing counts (row, node) pairs never seen. Everywhere is the
	// rate of rows visible on every node: Puts over the time from the
	// first put until every node showed every row.
	Visible    time.Duration
	Missing    int
	Everywhere float64
}

// RunWrites has writers of a cluster of nodes put rows for d, then waits
// until every node shows them all.
func RunWrites(ctx context.Context, nodes, writers int, d time.Duration, etcd []string) (WritesResult, error) {
	res := WritesResult{Nodes: nodes, Writers: writers}
	c, err := newCluster(memnet.NewNetwork(int64(nodes)), nodes, gossip.ProfileFast, etcd)
	if err != nil {
		return res, err
	}
	defer c.close()
	var mu sync.Mutex
	var keys []string
	var took []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func(g kvs.Tables) {
			defer wg.Done()
			// At most 1000 rows per writer: gossip takes puts far faster
			// than it can spread them to every node, which is what the
			// rate of rows visible everywhere measures.
			for k := 0; k < 1000 && time.Now().Before(end) && ctx.Err() == nil; k++ {
				key := fmt.Sprintf("w%d-%d", w, k)
				t0 := time.Now()
				if _, err := g.Put("endpoints", key, []byte("v")); err != nil {
					continue
				}
				mu.Lock()
				keys, took = append(keys, key), append(took, time.Since(t0))
				mu.Unlock()
			}
		}(c.nodes[w%nodes])
	}
	wg.Wait()
	elapsed, last := time.Since(start), time.Now()
	res.Puts, res.PerSec = len(keys), float64(len(keys))/elapsed.Seconds()
	res.PutP50, _, res.PutP99, _ = percentiles(took)
	all := make([]int, nodes)
	for i := range all {
		all[i] = i
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res.Missing = 0
		var latest time.Time
		for _, k := range keys {
			t, missing := c.lastSeen(k, all, false)
			res.Missing += missing
			if t.After(latest) {
				latest = t
			}
		}
		if res.Missing == 0 {
			res.Visible = max(0, latest.Sub(last))
			done := latest
			if last.After(done) {
				done = last
			}
			res.Everywhere = float64(res.Puts) / done.Sub(start).Seconds()
			return res, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartEtcd starts a 3-member etcd cluster on loopback from the etcd
// binary (Debian's etcd-server), for the etcd store's scenarios.
func StartEtcd() (endpoints []string, stop func(), err error) {
	c, err := etcdrun.Start(etcdrun.Options{})
	if err != nil {
		return nil, nil, err
	}
	return c.Endpoints(), c.Close, nil
}
