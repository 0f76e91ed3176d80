// Package gossiptest adds the faults only tests need to memnet's in-memory
// memberlist network: partitions and packet delay. It also holds the
// helpers the tests of such networks share.
package gossiptest

import (
	"container/heap"
	"io"
	"log"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip/memnet"
)

// Network is a memnet.Network that can also be partitioned and delay
// packets. Loss, Kill and Revive are memnet's.
type Network struct {
	*memnet.Network
	f *faults
}

// NewNetwork returns an empty network. seed drives the loss and delay
// randomness: a given sequence of sends sees the same drops and delays
// for the same seed (concurrent senders make the order, and so the
// outcome, vary).
func NewNetwork(seed int64) *Network {
	f := &faults{rng: rand.New(rand.NewSource(seed))}
	f.sched.wake = make(chan struct{}, 1)
	return &Network{Network: memnet.NewShapedNetwork(seed, f), f: f}
}

// Partition splits the network into groups of node names. Nodes in different
// groups cannot exchange packets or open streams, and open streams between
// them are closed. Nodes not named in any group form one more group together.
// A new call replaces the previous partition.
func (n *Network) Partition(groups ...[]string) {
	g := make(map[string]int)
	for i, names := range groups {
		for _, name := range names {
			g[name] = i + 1 // unnamed nodes: group 0
		}
	}
	n.f.groups.Store(&g)
	n.CutStreams()
}

// Heal removes any partition.
func (n *Network) Heal() {
	n.f.groups.Store(nil)
}

// SetDelay delays every subsequently sent packet by a uniform random duration
// in [min,max]. SetDelay(0, 0) restores immediate delivery. Streams are not
// affected.
func (n *Network) SetDelay(min, max time.Duration) {
	if min < 0 {
		min = 0
	}
	if max < min {
		max = min
	}
	n.f.delayMin.Store(int64(min))
	n.f.delayMax.Store(int64(max))
}

// faults is the network's memnet.Shaper. Like memnet's packet path it
// takes no locks but for the delay's random numbers: the partition is an
// immutable map swapped atomically.
type faults struct {
	groups atomic.Pointer[map[string]int] // node name -> partition group; nil when healed

	delayMin atomic.Int64
	delayMax atomic.Int64

	rngMu sync.Mutex
	rng   *rand.Rand

	sched scheduler
}

// Apart implements memnet.Shaper.
func (f *faults) Apart(from, to string) bool {
	g := f.groups.Load()
	return g != nil && (*g)[from] != (*g)[to]
}

// Send implements memnet.Shaper.
func (f *faults) Send(dst *memnet.Transport, deliver func()) {
	d := f.delay()
	if d <= 0 {
		deliver()
		return
	}
	f.sched.add(time.Now().Add(d), dst, deliver)
}

// Forget implements memnet.Shaper.
func (f *faults) Forget(dst *memnet.Transport) {
	f.sched.purge(dst)
}

// delay draws how long to hold a packet.
func (f *faults) delay() time.Duration {
	min, max := time.Duration(f.delayMin.Load()), time.Duration(f.delayMax.Load())
	if max <= min {
		return min
	}
	f.rngMu.Lock()
	defer f.rngMu.Unlock()
	return min + time.Duration(f.rng.Int63n(int64(max-min)+1))
}

// scheduler delivers delayed packets from a single goroutine that runs only
// while packets are pending.
type scheduler struct {
	mu      sync.Mutex
	q       pending
	seq     uint64
	running bool
	wake    chan struct{}
}

type delayed struct {
	at      time.Time
	seq     uint64
	dst     *memnet.Transport
	deliver func()
}

type pending []*delayed

func (p pending) Len() int { return len(p) }
func (p pending) Less(i, j int) bool {
	if !p[i].at.Equal(p[j].at) {
		return p[i].at.Before(p[j].at)
	}
	return p[i].seq < p[j].seq
}
func (p pending) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *pending) Push(x any)   { *p = append(*p, x.(*delayed)) }
func (p *pending) Pop() any {
	old := *p
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*p = old[:len(old)-1]
	return x
}

func (s *scheduler) add(at time.Time, dst *memnet.Transport, deliver func()) {
	s.mu.Lock()
	s.seq++
	d := &delayed{at: at, seq: s.seq, dst: dst, deliver: deliver}
	heap.Push(&s.q, d)
	first := s.q[0] == d
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.run()
	} else if first {
		s.poke()
	}
}

// purge delivers the pending packets for dst now: dst is shut down, so
// memnet drops and counts them.
func (s *scheduler) purge(dst *memnet.Transport) {
	s.mu.Lock()
	var gone []*delayed
	q := s.q[:0]
	for _, d := range s.q {
		if d.dst != dst {
			q = append(q, d)
		} else {
			gone = append(gone, d)
		}
	}
	for i := len(q); i < len(s.q); i++ {
		s.q[i] = nil
	}
	s.q = q
	heap.Init(&s.q)
	s.mu.Unlock()
	for _, d := range gone {
		d.deliver()
	}
	s.poke() // let run notice an empty queue and exit
}

// poke wakes run without waiting.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		wait := time.Until(s.q[0].at)
		if wait <= 0 {
			d := heap.Pop(&s.q).(*delayed)
			s.mu.Unlock()
			d.deliver()
			continue
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
			// Go >= 1.23 timers: Reset above discards any stale tick.
		}
	}
}

// Config returns memberlist.DefaultLocalConfig() set up to use t: Name is
// name, Transport is t and Logger writes to logOutput, or discards when
// logOutput is nil. Other settings, including intervals, are unchanged.
func Config(t *memnet.Transport, name string, logOutput io.Writer) *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.Name = name
	c.Transport = t
	if logOutput == nil {
		logOutput = io.Discard
	}
	c.LogOutput = nil
	c.Logger = log.New(logOutput, "", log.LstdFlags|log.Lmicroseconds)
	return c
}
