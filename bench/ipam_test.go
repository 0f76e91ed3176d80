package bench

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/gossip/gossiptest"
	"github.com/vxnet/vxnet/gossip/memnet"
	"github.com/vxnet/vxnet/internal/etcdtest"
	"github.com/vxnet/vxnet/internal/testutil"
	"github.com/vxnet/vxnet/ipam"
)

// TestIPAMSim_lossyPartitionedNoDuplicates: 100 hosts (20 with -short)
// over a network that drops 1% of packets create networks and allocate
// concurrently, then split in two halves that keep allocating and
// creating, then heal. The oracle, after convergence: no address leased
// twice, every lease inside its network's subnet, every host agreeing on
// each network's subnet, no two subnets overlapping.
func TestIPAMSim_lossyPartitionedNoDuplicates(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	net := gossiptest.NewNetwork(7)
	net.SetLoss(0.01)
	s, err := newIPAMSim(net.Network, n, func(c *ipam.GlobalConfig) { c.DefaultBase, c.DefaultSize = "10.200.0.0/21", 24 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	names := s.Names()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	phase("cluster up")

	var mu sync.Mutex
	var errs []error
	alloc := func(h int, network string, k int) {
		for range k {
			if _, err := s.Hosts[h].Allocate(ctx, network); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("host %d, %s: %w", h, network, err))
				mu.Unlock()
				return
			}
		}
	}
	parallel := func(f func(h int)) {
		var wg sync.WaitGroup
		for h := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(h) }()
		}
		wg.Wait()
	}

	// Phase 1, connected: concurrent creations, automatic subnets from a
	// pool of 8, and a big user subnet cut in /28 blocks.
	auto := []string{"a0", "a1", "a2", "a3", "a4"}
	parallel(func(h int) {
		switch {
		case h < len(auto):
			if _, err := s.Hosts[h].CreateNetwork(ctx, auto[h], ipam.PoolConfig{}, 0); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		case h == len(auto):
			if _, err := s.Hosts[h].CreateNetwork(ctx, "big", ipam.PoolConfig{Subnet: "10.100.0.0/16"}, 28); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	testutil.WaitFor(t, "every host to know every network", time.Minute, func() bool {
		for _, g := range s.Hosts {
			for _, name := range append([]string{"big"}, auto...) {
				if _, ok := g.Subnet(name); !ok {
					return false
				}
			}
		}
		return true
	})
	phase("networks known everywhere")
	parallel(func(h int) {
		alloc(h, "big", 5)
		if h < 10 {
			alloc(h, auto[h%len(auto)], 3)
		}
	})

	// Phase 2: split in halves; both keep allocating (past their blocks,
	// so they must ask for more) and each side creates a network from the
	// same small pool.
	phase("first addresses")
	half := n / 2
	net.Partition(names[:half], names[half:])
	testutil.WaitFor(t, "the halves to see only themselves", time.Minute, func() bool {
		return s.Members(0) == half && s.Members(n-1) == n-half
	})
	phase("split")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		parallel(func(h int) {
			switch h {
			case 0:
				if _, err := s.Hosts[h].CreateNetwork(ctx, "left", ipam.PoolConfig{}, 0); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				alloc(h, "left", 3)
			case half:
				if _, err := s.Hosts[h].CreateNetwork(ctx, "right", ipam.PoolConfig{}, 0); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				alloc(h, "right", 3)
			}
			alloc(h, "big", 20)
		})
	}()
	// Heal while requests on the side without the creator of "big" wait.
	testutil.WaitFor(t, "the left half to finish or block", time.Minute, func() bool {
		return len(s.Hosts[0].Leases("big")) >= 25 || len(s.Hosts[0].Leases("left")) >= 3
	})
	phase("healing")
	net.Heal()
	testutil.WaitFor(t, "the cluster to join again", 2*time.Minute, func() bool {
		return s.Members(0) == n && s.Members(n-1) == n
	})
	phase("joined")
	wg.Wait()
	phase("allocations done")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// Leases lost (a network that moved) are handed out again, as the
	// agent readdresses the endpoints.
	lost := 0
	parallel(func(h int) {
		for _, l := range s.Lost(h) {
			alloc(h, l.Network, 1)
		}
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for h := range n {
		lost += len(s.Lost(h))
	}

	networks := append([]string{"big", "left", "right"}, auto...)
	testutil.WaitFor(t, "every host to agree on every subnet", time.Minute, func() bool {
		for _, name := range networks {
			want, ok := s.Hosts[0].Subnet(name)
			if !ok {
				return false
			}
			for _, g := range s.Hosts {
				if p, ok := g.Subnet(name); !ok || p != want {
					return false
				}
			}
		}
		return true
	})
	subnets := map[string]netip.Prefix{}
	for _, name := range networks {
		subnets[name], _ = s.Hosts[0].Subnet(name)
	}
	for a, pa := range subnets {
		for b, pb := range subnets {
			if a < b && pa.Overlaps(pb) {
				t.Errorf("subnets overlap: %s %v and %s %v", a, pa, b, pb)
			}
		}
	}
	total := 0
	for _, name := range networks {
		owner := map[netip.Addr]int{}
		for h, g := range s.Hosts {
			for _, a := range g.Leases(name) {
				if !subnets[name].Contains(a) {
					t.Errorf("host %d leases %v outside %s %v", h, a, name, subnets[name])
				}
				if o, dup := owner[a]; dup {
					t.Errorf("%s: %v leased by hosts %d and %d", name, a, o, h)
				}
				owner[a] = h
			}
		}
		total += len(owner)
	}
	if want := n*25 + 10*3 + 6; total != want {
		t.Errorf("%d leases, want %d", total, want)
	}
	t.Logf("%d hosts: %d leases, %d readdressed after their subnet moved, subnets %v", n, total, lost, subnets)
}

// BenchmarkIPAMFirstAddress: time for every host of a fresh global
// network to get its first address (3 and 50 hosts).
func BenchmarkIPAMFirstAddress(b *testing.B) {
	for _, n := range []int{3, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				r, err := RunIPAMFirstAddress(n, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(r.Creator.Microseconds())/1000, "creator-ms")
				b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(r.Max.Microseconds())/1000, "max-ms")
				b.ReportMetric(float64(r.Create.Microseconds())/1000, "create-ms")
			}
		})
	}
}

// TestIPAMSim_etcdClaimsNoDuplicates: 10 hosts keeping their tables in a
// real 3-member etcd take blocks by claims. They allocate concurrently
// from a small network (every block wanted by several hosts at once) and
// a larger one while an etcd member is killed and restarted. The oracle:
// no address leased twice, no block claimed twice, every lease in a
// block its host holds.
func TestIPAMSim_etcdClaimsNoDuplicates(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	const n = 10
	s, err := newIPAMSim(memnet.NewNetwork(11), n, nil, ec.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.Hosts[0].CreateNetwork(ctx, "small", ipam.PoolConfig{Subnet: "10.90.0.0/26"}, 29); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hosts[1].CreateNetwork(ctx, "big", ipam.PoolConfig{Subnet: "10.91.0.0/22"}, 28); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for h := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 40 {
				network := "big"
				if k%8 == 0 {
					network = "small"
				}
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := s.Hosts[h].Allocate(actx, network)
				acancel()
				if err == nil {
					mu.Lock()
					got[network]++
					mu.Unlock()
				}
			}
		}()
	}
	ec.Kill(2)
	ec.Start(2)
	wg.Wait()
	t.Logf("leases: %v", got)
	if got["big"] < n*35 {
		t.Errorf("%d leases of big, want %d: its range has room for all", got["big"], n*35)
	}
	for _, network := range []string{"small", "big"} {
		owner := map[netip.Addr]int{}
		blocks := map[netip.Prefix]int{}
		for h, g := range s.Hosts {
			held := g.Blocks(network)
			for _, b := range held {
				if o, dup := blocks[b]; dup {
					t.Errorf("%s: block %v held by hosts %d and %d", network, b, o, h)
				}
				blocks[b] = h
			}
			for _, a := range g.Leases(network) {
				if o, dup := owner[a]; dup {
					t.Errorf("%s: %v leased by hosts %d and %d", network, a, o, h)
				}
				owner[a] = h
				in := false
				for _, b := range held {
					in = in || b.Contains(a)
				}
				if !in {
					t.Errorf("%s: host %d leases %v outside the blocks it holds %v", network, h, a, held)
				}
			}
		}
		if len(owner) != got[network] {
			t.Errorf("%s: %d leases held, %d handed out", network, len(owner), got[network])
		}
	}
}
