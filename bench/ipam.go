package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vxnet/vxnet/gossip"
	"github.com/vxnet/vxnet/gossip/memnet"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/ipam/kvstable"
)

// IPAMSim is an in-process cluster of hosts running global IPAM over the
// real gossip tables on the in-memory network, which can drop packets.
type IPAMSim struct {
	c      *cluster
	Hosts  []*ipam.Global
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu   sync.Mutex
	lost map[int][]LostLease // per host: leases reported lost
}

// IPAMTimings are the protocol timings the simulation uses: the fast
// gossip profile's, with InheritAfter far past any partition it makes.
func IPAMTimings(c *ipam.GlobalConfig) {
	c.Settle = 300 * time.Millisecond
	c.InheritAfter = 10 * time.Minute
	c.ServeDelay = 100 * time.Millisecond
	c.Tick = 500 * time.Millisecond
}

// NewIPAMSim starts n hosts; tune, if not nil, adjusts each host's
// configuration.
func NewIPAMSim(n int, loss float64, seed int64, tune func(*ipam.GlobalConfig)) (*IPAMSim, error) {
	net := memnet.NewNetwork(seed)
	net.SetLoss(loss)
	return newIPAMSim(net, n, tune, nil)
}

// newIPAMSim starts n hosts on net: a test passes a network it can also
// split (gossiptest's). With etcd endpoints the tables are in etcd.
func newIPAMSim(net *memnet.Network, n int, tune func(*ipam.GlobalConfig), etcd []string) (*IPAMSim, error) {
	c, err := newCluster(net, n, gossip.ProfileFast, etcd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &IPAMSim{c: c, cancel: cancel, lost: map[int][]LostLease{}}
	for i, kv := range c.nodes {
		table := kvstable.New(kv)
		cfg := ipam.GlobalConfig{Table: table, OnLost: func(network string, addrs []netip.Addr) {
			s.mu.Lock()
			for _, a := range addrs {
				s.lost[i] = append(s.lost[i], LostLease{network, a})
			}
			s.mu.Unlock()
		}}
		IPAMTimings(&cfg)
		if tune != nil {
			tune(&cfg)
		}
		g, err := ipam.NewGlobal(cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Hosts = append(s.Hosts, g)
		s.done.Add(1)
		go func() { defer s.done.Done(); kvstable.Run(ctx, table, g) }()
	}
	return s, nil
}

// Names returns the hosts' names, in order.
func (s *IPAMSim) Names() []string { return s.c.names }

// Members is how many members host i sees.
func (s *IPAMSim) Members(i int) int { return s.c.nodes[i].Node().NumMembers() }

// LostLease is a lease a host was told it lost.
type LostLease struct {
	Network string
	Addr    netip.Addr
}

// Lost returns the leases host i was told it lost.
func (s *IPAMSim) Lost(i int) []LostLease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lost[i])
}

// Close stops every host.
func (s *IPAMSim) Close() {
	s.cancel()
	s.done.Wait()
	s.c.close()
}

// IPAMFirstResult is how long hosts of a fresh global network waited for
// their first address, from the moment the network's creation returned.
type IPAMFirstResult struct {
	Hosts         int
	Creator       time.Duration // the creating host's own first address
	P50, P90, Max time.Duration // the other hosts'
	Create        time.Duration // CreateNetwork, Settle included
}

// RunIPAMFirstAddress measures, on a cluster of n hosts, the time each
// host takes to get its first address of a global network just created
// on another; with etcd endpoints, with the tables in etcd.
func RunIPAMFirstAddress(n int, etcd []string) (IPAMFirstResult, error) {
	s, err := newIPAMSim(memnet.NewNetwork(int64(n)), n, nil, etcd)
	if err != nil {
		return IPAMFirstResult{}, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	if _, err := s.Hosts[0].CreateNetwork(ctx, "first", ipam.PoolConfig{Subnet: "10.100.0.0/16"}, 0); err != nil {
		return IPAMFirstResult{}, err
	}
	r := IPAMFirstResult{Hosts: n, Create: time.Since(t0)}
	start := time.Now()
	waits := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, g := range s.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.Allocate(ctx, "first")
			waits[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return r, fmt.Errorf("host %d: %w", i, err)
		}
	}
	r.Creator = waits[0]
	others := slices.Clone(waits[1:])
	slices.Sort(others)
	if len(others) > 0 {
		r.P50, r.P90, r.Max = others[len(others)/2], others[len(others)*9/10], others[len(others)-1]
	}
	return r, nil
}
