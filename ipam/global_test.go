package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
	"github.com/vxnet/vxnet/ipam"
	"github.com/vxnet/vxnet/ipam/ipamtest"
)

// clock is a settable clock shared by simulated hosts.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type simHost struct {
	name   string
	cancel context.CancelFunc
	g      *ipam.Global
	store  ipam.MemStore
	mu     sync.Mutex
	lost   []netip.Addr
}

type sim struct {
	t     *testing.T
	net   *ipamtest.Network
	clock *clock
	hosts map[string]*simHost
	base  string
	size  int
	// forgotten are the hosts an operator forgot (GlobalConfig.Forgotten).
	forgotten sync.Map
	// avoid is every host's GlobalConfig.Avoid; nil: none.
	avoid func() []netip.Prefix
}

// claimsMode makes newSim's tables take claims (ipam.Claimer, as etcd's
// do): TestGlobalClaims runs tests with it set. The package's tests do
// not run in parallel.
var claimsMode bool

func newSim(t *testing.T, names ...string) *sim {
	s := &sim{t: t, net: ipamtest.NewNetwork(), clock: newClock(), hosts: map[string]*simHost{}, base: ipam.DefaultBase, size: ipam.DefaultSize}
	s.net.Claims = claimsMode
	for _, n := range names {
		s.net.Table(n)
	}
	for _, n := range names {
		s.start(n, ipam.MemStore{})
	}
	return s
}

func (s *sim) start(name string, store ipam.MemStore) *simHost {
	h := &simHost{name: name, store: store}
	g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: s.net.Table(name), Store: store, Settle: 10 * time.Millisecond,
		InheritAfter: time.Hour, ServeDelay: 20 * time.Millisecond, Tick: 2 * time.Millisecond, Now: s.clock.Now,
		DefaultBase: s.base, DefaultSize: s.size, Avoid: s.avoid,
		Forgotten: func(host string) bool { _, ok := s.forgotten.Load(host); return ok },
		OnLost:    func(_ string, a []netip.Addr) { h.mu.Lock(); h.lost = append(h.lost, a...); h.mu.Unlock() }})
	if err != nil {
		s.t.Fatal(err)
	}
	h.g = g
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	done := make(chan struct{})
	h.cancel = func() { cancel(); <-done }
	go func() { g.Run(ctx); close(done) }()
	s.hosts[name] = h
	return h
}

// crash stops a host's process and cuts it off; restart brings up a new
// process with the same saved leases (and, in the table, its rows).
func (s *sim) crash(name string) {
	s.hosts[name].cancel()
	s.net.Kill(name)
}

func (s *sim) restart(name string) *simHost {
	s.net.Revive(name)
	return s.start(name, s.hosts[name].store)
}

func (s *sim) create(host, network string, c ipam.PoolConfig) netip.Prefix {
	s.t.Helper()
	p, err := s.hosts[host].g.CreateNetwork(ctxT(s.t), network, c, 0)
	if err != nil {
		s.t.Fatalf("%s: create %s: %v", host, network, err)
	}
	return p
}

func (s *sim) alloc(host, network string) netip.Addr {
	s.t.Helper()
	a, err := s.hosts[host].g.Allocate(ctxT(s.t), network)
	if err != nil {
		s.t.Fatalf("%s: allocate on %s: %v", host, network, err)
	}
	return a
}

// allocStepping is alloc where the address may come from a block still
// to be inherited: the shared clock moves on (past Settle) until it does.
func (s *sim) allocStepping(host, network string) netip.Addr {
	s.t.Helper()
	type result struct {
		a   netip.Addr
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := s.hosts[host].g.Allocate(ctxT(s.t), network)
		done <- result{a, err}
	}()
	var r result
	testutil.WaitFor(s.t, host+" to allocate on "+network, 10*time.Second, func() bool {
		select {
		case r = <-done:
			return true
		default:
			s.clock.Add(20 * time.Millisecond)
			s.hosts[host].g.Refresh()
			return false
		}
	})
	if r.err != nil {
		s.t.Fatalf("%s: allocate on %s: %v", host, network, r.err)
	}
	return r.a
}

// step moves the shared clock past a serve delay and waits until each of
// hosts has looked at its table again since.
func (s *sim) step(hosts ...string) {
	s.t.Helper()
	before := map[string]int{}
	for _, h := range hosts {
		before[h] = s.net.Lists(h)
	}
	s.clock.Add(20 * time.Millisecond)
	testutil.WaitFor(s.t, "every host to refresh", 5*time.Second, func() bool {
		for _, h := range hosts {
			if s.net.Lists(h) < before[h]+6 {
				return false
			}
		}
		return true
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkUnique fails on an address leased by two hosts or outside the
// network's subnet.
func (s *sim) checkUnique(network string) int {
	s.t.Helper()
	owner := map[netip.Addr]string{}
	for name, h := range s.hosts {
		sub, ok := h.g.Subnet(network)
		for _, a := range h.g.Leases(network) {
			if !ok || !sub.Contains(a) {
				s.t.Errorf("%s leases %v outside %v", name, a, sub)
			}
			if o, dup := owner[a]; dup {
				s.t.Errorf("address %v leased by both %s and %s", a, o, name)
			}
			owner[a] = name
		}
	}
	return len(owner)
}

func TestGlobal_threeHostsConcurrentAllocateNoDuplicates(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	p := s.create("h1", "web", ipam.PoolConfig{Subnet: "10.20.0.0/22"})
	if p.String() != "10.20.0.0/22" {
		t.Fatalf("subnet %v", p)
	}
	var wg sync.WaitGroup
	for _, h := range []string{"h1", "h2", "h3"} {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					s.alloc(h, "web")
				}
			}()
		}
	}
	wg.Wait()
	if n := s.checkUnique("web"); n != 450 {
		t.Fatalf("%d leases, want 450", n)
	}
	// Every host holds blocks of its own; blocks never overlap.
	seen := map[netip.Prefix]string{}
	for name, h := range s.hosts {
		bs := h.g.Blocks("web")
		if len(bs) == 0 {
			t.Errorf("%s holds no block", name)
		}
		for _, b := range bs {
			if o, dup := seen[b]; dup {
				t.Errorf("block %v held by %s and %s", b, o, name)
			}
			seen[b] = name
		}
	}
}

func TestGlobal_exhaustionNamesNetwork(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "tiny", ipam.PoolConfig{Subnet: "10.21.0.0/28"})
	// /28: 16 addresses in 4 blocks of 4; network, gateway and broadcast
	// leave 13.
	got := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := s.hosts["h2"].g.Allocate(ctx, "tiny")
		cancel()
		if err != nil {
			if !errors.Is(err, ipam.ErrExhausted) || !strings.Contains(err.Error(), `"tiny"`) {
				t.Fatalf("error %v", err)
			}
			break
		}
		got++
	}
	if got != 13 {
		t.Fatalf("h2 got %d addresses, want all 13 usable", got)
	}
}

// TestGlobal_exhaustedAtOnceWhenEveryBlockIsHere: a host that holds every
// block of a full range says so at once, rather than waiting for a block
// no one can grant.
func TestGlobal_exhaustedAtOnceWhenEveryBlockIsHere(t *testing.T) {
	s := newSim(t, "h1")
	s.create("h1", "tiny", ipam.PoolConfig{Subnet: "10.21.0.0/28"})
	for i := 0; i < 13; i++ {
		if _, err := s.hosts["h1"].g.Allocate(context.Background(), "tiny"); err != nil {
			t.Fatalf("address %d: %v", i+1, err)
		}
	}
	// No deadline: waiting for a grant would hang the test.
	_, err := s.hosts["h1"].g.Allocate(context.Background(), "tiny")
	if !errors.Is(err, ipam.ErrExhausted) || !strings.Contains(err.Error(), "every address of the range is in use") {
		t.Fatalf("error %v, want exhausted at once", err)
	}
}

// TestGlobal_lastEmptyBlockToAHostWithNone: in a range of two blocks, both
// held by h1 (one in use, one emptied), h2, which holds none, gets the
// empty one once no one else could answer, instead of waiting forever.
func TestGlobal_lastEmptyBlockToAHostWithNone(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "small", ipam.PoolConfig{Subnet: "10.23.0.0/29"}) // blocks .0/30 and .4/30
	var last netip.Addr
	for range 3 {
		last = s.alloc("h1", "small")
	}
	if got := s.hosts["h1"].g.Blocks("small"); len(got) != 2 {
		t.Fatalf("h1 holds %v, want both blocks", got)
	}
	if err := s.hosts["h1"].g.Release("small", last); err != nil {
		t.Fatal(err)
	}
	type result struct {
		a   netip.Addr
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := s.hosts["h2"].g.Allocate(ctxT(t), "small")
		done <- result{a, err}
	}()
	// The grant waits (live hosts + 1) serve delays of the shared clock.
	var r result
	for waiting := true; waiting; {
		select {
		case r = <-done:
			waiting = false
		default:
			s.step("h1", "h2")
		}
	}
	if r.err != nil || !netip.MustParsePrefix("10.23.0.4/30").Contains(r.a) {
		t.Fatalf("h2 allocated %v %v, want an address of the emptied block 10.23.0.4/30", r.a, r.err)
	}
	if got := s.hosts["h1"].g.Blocks("small"); len(got) != 1 || got[0] != netip.MustParsePrefix("10.23.0.0/30") {
		t.Errorf("h1 holds %v, want only the block in use", got)
	}
	s.checkUnique("small")
}

// TestGlobal_prefetchedBlocksStay: where every host fetches a block ahead
// (the range has four per host), a host that joins with every block held
// and no address asked for is given none of the empty blocks others keep:
// those go only to a host with an address waiting. The holders settle.
func TestGlobal_prefetchedBlocksStay(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	s.create("h1", "small", ipam.PoolConfig{Subnet: "10.25.0.0/26"}) // 16 blocks of 4
	held := func(h string) int { return len(s.hosts[h].g.Blocks("small")) }
	for i := 0; i < 200 && (held("h2") == 0 || held("h3") == 0); i++ {
		s.step("h1", "h2", "h3")
	}
	for held("h1")+held("h2")+held("h3") < 16 {
		s.alloc("h1", "small")
	}
	for range 3 {
		s.alloc("h1", "small") // h1's last block in use too
	}
	s.net.Table("h4")
	s.start("h4", ipam.MemStore{})
	holders := func() string {
		return fmt.Sprintf("h1=%d h2=%d h3=%d h4=%d", held("h1"), held("h2"), held("h3"), held("h4"))
	}
	changes, last := 0, holders()
	for range 100 {
		s.step("h1", "h2", "h3", "h4")
		if cur := holders(); cur != last {
			changes, last = changes+1, cur
		}
	}
	if changes > 0 {
		t.Errorf("the blocks moved %d times after h4 joined (now %s): empty blocks go back and forth between hosts that need none", changes, last)
	}
	s.checkUnique("small")
}

// TestGlobal_blockHolders: every host lists the blocks hosts hold, each
// with its holder, and counts the others (the creator's untouched ones;
// by claims, free ones).
func TestGlobal_blockHolders(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "four", ipam.PoolConfig{Subnet: "10.24.0.0/28"})
	a1, a2 := s.alloc("h1", "four"), s.alloc("h2", "four")
	agree := func(view string) bool {
		held, others, ok := s.hosts[view].g.BlockHolders("four")
		if !ok || uint64(len(held))+others != 4 {
			t.Fatalf("%s: BlockHolders = %v %d %v, want 4 blocks in all", view, held, others, ok)
		}
		found := map[string]bool{}
		for i, b := range held {
			if i > 0 && held[i-1].Block.Addr().Compare(b.Block.Addr()) >= 0 {
				t.Fatalf("%s: blocks out of order: %v", view, held)
			}
			found[b.Holder+" "+strconv.FormatBool(b.Block.Contains(a1))+" "+strconv.FormatBool(b.Block.Contains(a2))] = true
		}
		return len(held) == 2 && others == 2 && found["h1 true false"] && found["h2 false true"]
	}
	testutil.WaitFor(t, "h1 and h2 to list both blocks in use with their holders", 5*time.Second, func() bool { return agree("h1") && agree("h2") })
	if _, _, ok := s.hosts["h1"].g.BlockHolders("nope"); ok {
		t.Error("blocks of a network that does not exist")
	}
}

func TestGlobal_releaseReusesNothingAtOnce(t *testing.T) {
	s := newSim(t, "h1")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.22.0.0/24"})
	a := s.alloc("h1", "web")
	if err := s.hosts["h1"].g.Release("web", a); err != nil {
		t.Fatal(err)
	}
	if b := s.alloc("h1", "web"); b == a {
		t.Fatalf("released %v handed out again at once", a)
	}
	if err := s.hosts["h1"].g.Release("web", a); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Fatalf("double release: %v", err)
	}
}

func TestGlobal_restartReusesNoLease(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.23.0.0/24"})
	before := map[netip.Addr]bool{}
	for range 10 {
		before[s.alloc("h2", "web")] = true
	}
	s.crash("h2")
	s.restart("h2") // a new process: same table rows, saved leases
	for range 20 {
		if a := s.alloc("h2", "web"); before[a] {
			t.Fatalf("restarted host handed out %v again", a)
		}
	}
	if n := len(s.hosts["h2"].g.Leases("web")); n != 30 {
		t.Fatalf("%d leases after restart, want 30", n)
	}
}

func TestGlobal_goneForGoodBlocksInherited(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.24.0.0/26"}) // 16 blocks of 4
	var h2addrs []netip.Addr
	for range 20 {
		h2addrs = append(h2addrs, s.alloc("h2", "web"))
	}
	h2blocks := s.hosts["h2"].g.Blocks("web")
	s.crash("h2")
	s.hosts["h3"].g.Refresh() // notices the absence now, on the test's clock
	// Absent, but not yet for good: its blocks stay its own.
	s.clock.Add(30 * time.Minute)
	for range 10 {
		s.alloc("h3", "web")
	}
	s.crash("h1") // the creator goes too: its untouched blocks must pass on
	s.hosts["h3"].g.Refresh()
	s.clock.Add(2 * time.Hour)
	for range 5 {
		s.clock.Add(20 * time.Millisecond)
		s.hosts["h3"].g.Refresh()
	}
	// The blocks no one holds pass as h3 needs them, not all at once.
	if held := s.hosts["h3"].g.Blocks("web"); len(held) >= 16 {
		t.Errorf("h3 took all %d blocks before it needed them", len(held))
	}
	for range 61 - 10 { // the whole range: 64 less network, gateway, broadcast
		s.allocStepping("h3", "web")
	}
	for _, b := range h2blocks {
		if !slices.Contains(s.hosts["h3"].g.Blocks("web"), b) {
			t.Errorf("h3, holding the whole range, lacks h2's block %v", b)
		}
	}
	s.restart("h2")
	s.restart("h1")
	// Each old lease of h2 is either still its own (its block came back
	// to it, empty on h3's side) or reported lost: never both, never
	// neither, and no address is leased twice.
	h2 := s.hosts["h2"]
	h2.mu.Lock()
	lost := map[netip.Addr]bool{}
	for _, a := range h2.lost {
		lost[a] = true
	}
	h2.mu.Unlock()
	kept := map[netip.Addr]bool{}
	for _, a := range h2.g.Leases("web") {
		kept[a] = true
	}
	for _, a := range h2addrs {
		if lost[a] == kept[a] {
			t.Errorf("%v: lost %v, kept %v", a, lost[a], kept[a])
		}
	}
	if len(lost) != len(h2addrs) {
		t.Errorf("h2 lost %d of its %d leases; h3 took the whole range while it was gone", len(lost), len(h2addrs))
	}
	s.checkUnique("web")
}

// TestGlobal_forgottenBlocksPassAtOnce: a host that is absent and
// forgotten is gone for good at once: its blocks pass on without waiting
// InheritAfter, and the untouched ones of a forgotten creator as the
// others need them; a host forgotten but live keeps its own.
func TestGlobal_forgottenBlocksPassAtOnce(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3", "h4")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.25.0.0/26"}) // 16 blocks of 4
	for range 6 {
		s.alloc("h2", "web")
	}
	h2blocks := s.hosts["h2"].g.Blocks("web")
	s.alloc("h4", "web")
	h4blocks := s.hosts["h4"].g.Blocks("web")
	s.crash("h2")
	s.crash("h1")
	s.forgotten.Store("h1", true)
	s.forgotten.Store("h2", true)
	s.forgotten.Store("h4", true) // a mistake: h4 is live
	s.clock.Add(time.Minute)      // far from InheritAfter (an hour)
	for _, b := range h4blocks {
		if !slices.Contains(s.hosts["h4"].g.Blocks("web"), b) {
			t.Errorf("live h4 lost its block %v for being named forgotten", b)
		}
	}
	// Far less than InheritAfter later, h3 hands out more than the blocks
	// it held: the forgotten hosts' pass to it as it needs them.
	for range 4*len(h2blocks) + 8 {
		s.allocStepping("h3", "web")
	}
	// The forgotten hosts' leases are void (back, they would be told they
	// are lost); among the others, none is held twice.
	delete(s.hosts, "h1")
	delete(s.hosts, "h2")
	s.checkUnique("web")
}

// TestGlobal_goneCreatorOfLargeRange: the untouched blocks of a gone
// creator of an IPv6 /64 (2^18 blocks) are not all written to the table:
// the others take them as they need them, and hand out addresses.
func TestGlobal_goneCreatorOfLargeRange(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	s.create("h1", "v6", ipam.PoolConfig{Subnet: "fd00:96::/64"})
	s.alloc("h2", "v6")
	s.crash("h1")
	s.forgotten.Store("h1", true)
	for range 10 {
		s.clock.Add(20 * time.Millisecond)
		for _, h := range []string{"h2", "h3"} {
			s.hosts[h].g.Refresh()
		}
	}
	for _, h := range []string{"h2", "h3"} {
		if n := len(s.hosts[h].g.Blocks("v6")); n > 8 {
			t.Errorf("%s took %d blocks of the gone creator's before needing them", h, n)
		}
	}
	got := map[netip.Addr]bool{}
	for range 70 { // more than a block of 64
		a := s.allocStepping("h3", "v6")
		if got[a] {
			t.Fatalf("h3 handed out %v twice", a)
		}
		got[a] = true
	}
	if n := len(s.hosts["h3"].g.Blocks("v6")); n > 8 {
		t.Errorf("h3 holds %d blocks for 70 addresses", n)
	}
	delete(s.hosts, "h1")
	s.checkUnique("v6")
}

func TestGlobal_partitionedAutoSubnetsMoveOnHeal(t *testing.T) {
	s := newSim(t)
	s.base, s.size = "10.30.0.0/23", 24 // two subnets only
	for _, n := range []string{"h1", "h2"} {
		s.net.Table(n)
	}
	s.start("h1", ipam.MemStore{})
	s.start("h2", ipam.MemStore{})
	s.create("h1", "pre", ipam.PoolConfig{})
	s.net.Partition([]string{"h1"}, []string{"h2"})
	pa := s.create("h1", "a", ipam.PoolConfig{})
	pb := s.create("h2", "b", ipam.PoolConfig{})
	if pa != pb {
		t.Fatalf("the only free subnet: %v and %v", pa, pb)
	}
	s.alloc("h2", "b")
	s.net.Heal()
	// b was claimed later: it hands out nothing while it overlaps a.
	testutil.WaitFor(t, "b in conflict", 5*time.Second, func() bool {
		_, err := s.hosts["h2"].g.Allocate(ctxT(t), "b")
		return errors.Is(err, ipam.ErrOverlap)
	})
	if _, err := s.hosts["h1"].g.Allocate(ctxT(t), "a"); err != nil {
		t.Fatalf("the earlier claim must keep working: %v", err)
	}
	// A network in conflict still takes its addresses back.
	inB := s.hosts["h2"].g.Leases("b")
	if err := s.hosts["h2"].g.Release("b", inB[0]); err != nil {
		t.Fatalf("release in a network in conflict: %v", err)
	}
	// Free a subnet: b moves there, and its old leases are reported lost.
	leased := s.hosts["h2"].g.Leases("b")
	if err := s.hosts["h1"].g.DeleteNetwork("pre"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "b moved off a's subnet", 5*time.Second, func() bool {
		p1, ok1 := s.hosts["h1"].g.Subnet("b")
		p2, ok2 := s.hosts["h2"].g.Subnet("b")
		return ok1 && ok2 && p1 == p2 && !p1.Overlaps(pa)
	})
	testutil.WaitFor(t, "h2 told of b's lost lease", 5*time.Second, func() bool {
		h := s.hosts["h2"]
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.lost) == len(leased)
	})

	s.alloc("h2", "b")
	s.checkUnique("a")
	s.checkUnique("b")
}

// An automatic subnet steers around what GlobalConfig.Avoid names (the
// host's LANs, the hosts' underlay addresses); when that and the claims
// cover the whole pool, the error says why. A subnet given explicitly is
// not IPAM's to refuse for it.
func TestGlobal_autoSubnetAvoidsHostNetworks(t *testing.T) {
	s := newSim(t)
	s.base, s.size = "10.50.0.0/22", 24 // four subnets
	avoid := []netip.Prefix{netip.MustParsePrefix("10.50.1.0/24"), netip.MustParsePrefix("10.50.2.7/32")}
	s.avoid = func() []netip.Prefix { return avoid }
	s.net.Table("h1")
	s.start("h1", ipam.MemStore{})
	got := map[netip.Prefix]bool{}
	for i := range 2 {
		p := s.create("h1", fmt.Sprintf("n%d", i), ipam.PoolConfig{})
		for _, a := range avoid {
			if p.Overlaps(a) {
				t.Errorf("n%d got %v, which overlaps %v", i, p, a)
			}
		}
		got[p] = true
	}
	if !got[netip.MustParsePrefix("10.50.0.0/24")] || !got[netip.MustParsePrefix("10.50.3.0/24")] {
		t.Errorf("got %v, want the two subnets nothing avoids", got)
	}
	_, err := s.hosts["h1"].g.CreateNetwork(ctxT(t), "n2", ipam.PoolConfig{}, 0)
	if !errors.Is(err, ipam.ErrExhausted) || !strings.Contains(err.Error(), "10.50.1.0/24") || !strings.Contains(err.Error(), "this host's networks") {
		t.Errorf("third automatic subnet: %v, want exhausted, naming the host network stepped around", err)
	}
	if p := s.create("h1", "lan", ipam.PoolConfig{Subnet: "10.50.1.0/24"}); p != avoid[0] {
		t.Errorf("explicit subnet: got %v", p)
	}
}

// An automatic subnet that loses an overlap after a partition moves to a
// free subnet that steers around what Avoid says when it moves (asked
// again then: the host's networks may have changed since the creation).
func TestGlobal_movedAutoSubnetAvoidsHostNetworks(t *testing.T) {
	s := newSim(t)
	s.base, s.size = "10.51.0.0/22", 24 // four subnets
	var avoid atomic.Pointer[netip.Prefix]
	lan := func(p string) { q := netip.MustParsePrefix(p); avoid.Store(&q) }
	lan("10.51.3.0/24")
	s.avoid = func() []netip.Prefix { return []netip.Prefix{*avoid.Load()} }
	for _, n := range []string{"h1", "h2"} {
		s.net.Table(n)
	}
	s.start("h1", ipam.MemStore{})
	s.start("h2", ipam.MemStore{})
	s.create("h1", "p0", ipam.PoolConfig{Subnet: "10.51.0.0/24"})
	s.create("h1", "p2", ipam.PoolConfig{Subnet: "10.51.2.0/24"})
	testutil.WaitFor(t, "h2 sees p0 and p2", 5*time.Second, func() bool {
		_, ok0 := s.hosts["h2"].g.Subnet("p0")
		_, ok2 := s.hosts["h2"].g.Subnet("p2")
		return ok0 && ok2
	})
	s.net.Partition([]string{"h1"}, []string{"h2"})
	pa := s.create("h1", "a", ipam.PoolConfig{})
	pb := s.create("h2", "b", ipam.PoolConfig{})
	if want := netip.MustParsePrefix("10.51.1.0/24"); pa != want || pb != want {
		t.Fatalf("a %v, b %v: want both on the one subnet neither claimed nor avoided, %v", pa, pb, want)
	}
	// The LAN moves: 10.51.3.0/24 is free now, p0's 10.51.0.0/24 is the LAN's.
	lan("10.51.0.0/24")
	s.net.Heal()
	testutil.WaitFor(t, "b in conflict", 5*time.Second, func() bool {
		_, err := s.hosts["h2"].g.Allocate(ctxT(t), "b")
		return errors.Is(err, ipam.ErrOverlap) || func() bool { p, _ := s.hosts["h2"].g.Subnet("b"); return p != pb }()
	})
	if err := s.hosts["h1"].g.DeleteNetwork("p0"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "b moved to the subnet the LAN left", 5*time.Second, func() bool {
		p1, ok1 := s.hosts["h1"].g.Subnet("b")
		p2, ok2 := s.hosts["h2"].g.Subnet("b")
		return ok1 && ok2 && p1 == p2 && p1 != pb
	})
	if p, _ := s.hosts["h2"].g.Subnet("b"); p != netip.MustParsePrefix("10.51.3.0/24") {
		t.Errorf("b moved to %v, want 10.51.3.0/24 (10.51.0.0/24 is the LAN's now)", p)
	}
	s.alloc("h2", "b")
}

func TestGlobal_userSubnetOverlapRefused(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "a", ipam.PoolConfig{Subnet: "10.40.0.0/16"})
	_, err := s.hosts["h2"].g.CreateNetwork(ctxT(t), "b", ipam.PoolConfig{Subnet: "10.40.3.0/24"}, 0)
	if !errors.Is(err, ipam.ErrOverlap) || !strings.Contains(err.Error(), "network a") || !strings.Contains(err.Error(), "10.40.3.0/24") {
		t.Fatalf("error %v", err)
	}
	_, err = s.hosts["h2"].g.CreateNetwork(ctxT(t), "a", ipam.PoolConfig{Subnet: "10.41.0.0/24"}, 0)
	if !errors.Is(err, ipam.ErrInUse) {
		t.Fatalf("same name: %v", err)
	}
}

func TestGlobal_deleteDropsEverywhere(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "web", ipam.PoolConfig{})
	s.alloc("h2", "web")
	if err := s.hosts["h1"].g.DeleteNetwork("web"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "h2 drops web", 5*time.Second, func() bool {
		_, ok := s.hosts["h2"].g.Subnet("web")
		return !ok
	})
	if _, err := s.hosts["h2"].g.Allocate(ctxT(t), "web"); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Fatalf("allocate on a deleted network: %v", err)
	}
	// The name can be used again.
	s.create("h2", "web", ipam.PoolConfig{})
	s.alloc("h1", "web")
}

// TestGlobal_deleteAfterRestartLeavesNoRows: a network deleted after its
// hosts restarted leaves none of their rows (blocks granted, host rows,
// block claims) in the table, though this run of theirs did not write
// them.
func TestGlobal_deleteAfterRestartLeavesNoRows(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.24.0.0/24"})
	a1, a2 := s.alloc("h1", "web"), s.alloc("h2", "web")
	rows := func() []string {
		var keys []string
		for _, prefix := range []string{"block/web/", "host/web/", "claim/web/"} {
			for _, r := range s.net.Table("h1").List(prefix) {
				keys = append(keys, r.Key)
			}
		}
		return keys
	}
	if len(rows()) == 0 {
		t.Fatal("no rows of web to begin with")
	}
	for _, h := range []string{"h1", "h2"} {
		s.crash(h)
		s.restart(h)
	}
	for h, a := range map[string]netip.Addr{"h1": a1, "h2": a2} {
		if err := s.hosts[h].g.Release("web", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.hosts["h1"].g.DeleteNetwork("web"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "every row of web to go", 5*time.Second, func() bool {
		_, ok := s.hosts["h2"].g.Subnet("web")
		return !ok && len(rows()) == 0
	})
}

// TestGlobal_oneHostNetwork: no host but the creator takes a block of a
// one-host network (nat), so the creator hands out every address of its
// range.
func TestGlobal_oneHostNetwork(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	s.create("h1", "nat", ipam.PoolConfig{Subnet: "10.62.0.0/26", OneHost: true})
	s.create("h1", "plain", ipam.PoolConfig{Subnet: "10.63.0.0/26"})
	testutil.WaitFor(t, "h2 and h3 to take a first block of plain", 5*time.Second, func() bool {
		held, _, _ := s.hosts["h1"].g.BlockHolders("plain")
		hosts := map[string]bool{}
		for _, b := range held {
			hosts[b.Holder] = true
		}
		return hosts["h2"] && hosts["h3"]
	})
	got := 0
	for {
		if _, err := s.hosts["h1"].g.Allocate(ctxT(t), "nat"); err != nil {
			if !errors.Is(err, ipam.ErrExhausted) {
				t.Fatalf("after %d addresses: %v", got, err)
			}
			break
		}
		got++
	}
	if got != 61 { // 64 less the network, broadcast and gateway addresses
		t.Errorf("h1 handed out %d addresses of nat's /26, want 61", got)
	}
	held, _, _ := s.hosts["h2"].g.BlockHolders("nat")
	for _, b := range held {
		if b.Holder != "h1" {
			t.Errorf("block %s of nat held by %s", b.Block, b.Holder)
		}
	}
	// Another host asked for an address (a service's VIP) gets a block.
	s.create("h1", "nat2", ipam.PoolConfig{Subnet: "10.64.0.0/26", OneHost: true})
	if a := s.alloc("h2", "nat2"); !netip.MustParsePrefix("10.64.0.0/26").Contains(a) {
		t.Errorf("h2's address on nat2: %v", a)
	}
}

func TestGlobal_staticAddress(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.50.0.0/24"}) // 64 blocks of 4
	testutil.WaitFor(t, "h2 to see web's gateway", 5*time.Second, func() bool {
		gw, ok := s.hosts["h2"].g.Gateway("web")
		return ok && gw == netip.MustParseAddr("10.50.0.1")
	})
	static := netip.MustParseAddr("10.50.0.200") // an untouched block: the creator's
	if claimsMode {
		// By claims the other hosts take blocks across the range; block
		// 0 is the creator's.
		static = netip.MustParseAddr("10.50.0.3")
	}
	if err := s.hosts["h1"].g.AllocateStatic("web", static); err != nil {
		t.Fatal(err)
	}
	a := s.alloc("h2", "web")
	err := s.hosts["h1"].g.AllocateStatic("web", a)
	if !errors.Is(err, ipam.ErrOtherHost) || !strings.Contains(err.Error(), "h2") {
		t.Fatalf("static in another host's block: %v", err)
	}
	err = s.hosts["h2"].g.AllocateStatic("web", netip.MustParseAddr("10.51.0.1"))
	if !errors.Is(err, ipam.ErrOutOfRange) {
		t.Fatalf("outside: %v", err)
	}
	if !claimsMode {
		// A block no host has taken: the creator hands it out, and says so.
		err = s.hosts["h2"].g.AllocateStatic("web", netip.MustParseAddr("10.50.0.250"))
		if !errors.Is(err, ipam.ErrOtherHost) || !strings.Contains(err.Error(), "no host has taken its block") || !strings.Contains(err.Error(), "creator, host h1") {
			t.Errorf("static in an untaken block, not on its creator: %v", err)
		}
	}
}

// TestGlobal_creatorKeepsFirstBlock: other hosts ask for a block the
// moment they see a new network; however their requests and the
// creator's first refresh interleave, the creator keeps the first block,
// so a static address at the low end of the range can be taken on the
// host that created the network.
func TestGlobal_creatorKeepsFirstBlock(t *testing.T) {
	for i := range 40 {
		s := newSim(t, "h1", "h2", "h3")
		network := fmt.Sprintf("web%d", i)
		s.create("h1", network, ipam.PoolConfig{Subnet: "fd00:79::/64"})
		if err := s.hosts["h1"].g.AllocateStatic(network, netip.MustParseAddr("fd00:79::a")); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		for _, h := range s.hosts {
			h.cancel()
		}
	}
}

func TestGlobal_badInputNamesField(t *testing.T) {
	s := newSim(t, "h1")
	for _, tc := range []struct {
		name, subnet string
		block        int
		want         string
	}{
		{"bad/name", "", 0, "name"},
		{"ok", "10.60.0.0/24", 31, "block-size"},
		{"ok", "10.60.0.0/24", 20, "block-size"},
		{"ok", "10.60.0.1/24", 0, "did you mean"},
	} {
		_, err := s.hosts["h1"].g.CreateNetwork(ctxT(t), tc.name, ipam.PoolConfig{Subnet: tc.subnet}, tc.block)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s /%d: error %v, want it to mention %q", tc.name, tc.subnet, tc.block, err, tc.want)
		}
	}
	if _, err := s.hosts["h1"].g.Allocate(ctxT(t), "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown network: %v", err)
	}
}

// FuzzGlobal_rows: rows another host wrote (gossip input) may be anything;
// a host reads them without a panic and keeps its leases unique.
func FuzzGlobal_rows(f *testing.F) {
	f.Add("subnet/web/x/1", []byte(`{"creator":"x","created":1,"rev":1,"subnet":"10.0.0.0/24","blockBits":4}`))
	f.Add("block/web/0/x", []byte(`{"holder":"x","gen":1,"subnet":"10.9.0.0/24"}`))
	f.Add("block/web/99999999999999999999/x", []byte(`{"holder":"h1","gen":18446744073709551615,"subnet":"10.9.0.0/24"}`))
	f.Add("host/web/x", []byte(`{"want":1000000,"seq":1,"spare":-5}`))
	f.Add("subnet/web/x/1", []byte(`{"creator":"x","created":-1,"rev":1,"subnet":"::/0","blockBits":200}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		net := ipamtest.NewNetwork()
		g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: net.Table("h1"), Settle: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.CreateNetwork(context.Background(), "web", ipam.PoolConfig{Subnet: "10.9.0.0/24"}, 0); err != nil {
			t.Fatal(err)
		}
		net.Table("x").Put(key, value)
		g.Refresh()
		seen := map[netip.Addr]bool{}
		for range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			a, err := g.Allocate(ctx, "web")
			cancel()
			if err != nil {
				return
			}
			if seen[a] {
				t.Fatalf("%v handed out twice", a)
			}
			seen[a] = true
		}
	})
}

// BenchmarkGlobal_allocateRelease: one allocate and one release of a
// global network on a host holding blocks and 100 other leases; with the
// whole lease list saved each time, and with no store.
func BenchmarkGlobal_allocateRelease(b *testing.B) {
	b.Run("memstore", func(b *testing.B) { benchGlobal(b, ipam.MemStore{}) })
	b.Run("leaselog", func(b *testing.B) { benchGlobal(b, &logStore{leases: map[netip.Addr]bool{}}) })
	b.Run("nostore", func(b *testing.B) { benchGlobal(b, noStore{}) })
}

// logStore keeps leases one by one (ipam.LeaseLog), as a file log would.
type logStore struct {
	noStore
	leases map[netip.Addr]bool
}

func (s *logStore) Leased(_ string, a netip.Addr) error   { s.leases[a] = true; return nil }
func (s *logStore) Released(_ string, a netip.Addr) error { delete(s.leases, a); return nil }

// noStore keeps nothing: the cost of the protocol without persistence.
type noStore struct{}

func (noStore) Leased(string, netip.Addr) error   { return nil }
func (noStore) Released(string, netip.Addr) error { return nil }

func (noStore) Load(string) (ipam.State, bool, error) { return ipam.State{}, false, nil }
func (noStore) Save(string, ipam.State) error         { return nil }

func benchGlobal(b *testing.B, store ipam.Store) {
	net := ipamtest.NewNetwork()
	g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: net.Table("h1"), Store: store, Settle: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := g.CreateNetwork(ctx, "web", ipam.PoolConfig{Subnet: "10.9.0.0/16"}, 0); err != nil {
		b.Fatal(err)
	}
	for range 100 { // some leases held throughout
		if _, err := g.Allocate(ctx, "web"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a, err := g.Allocate(ctx, "web")
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Release("web", a); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGlobal_ipv6Network(t *testing.T) {
	s := newSim(t, "h1", "h2")
	p := s.create("h1", "v6", ipam.PoolConfig{Subnet: "fd00:77::/64"})
	if !p.Addr().Is6() {
		t.Fatalf("subnet %v", p)
	}
	var wg sync.WaitGroup
	for _, h := range []string{"h1", "h2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.alloc(h, "v6")
			}
		}()
	}
	wg.Wait()
	if n := s.checkUnique("v6"); n != 200 {
		t.Fatalf("%d leases, want 200", n)
	}
	for _, a := range s.hosts["h2"].g.Leases("v6") {
		if a == netip.MustParseAddr("fd00:77::") || a == netip.MustParseAddr("fd00:77::1") {
			t.Errorf("handed out %v (subnet-router anycast or gateway)", a)
		}
	}
}

// TestGlobal_releaseBeforeTheNetworkIsKnown: right after a restart a host
// may release an address of a network the cluster has not told it of yet;
// the saved lease goes.
func TestGlobal_releaseBeforeTheNetworkIsKnown(t *testing.T) {
	a := netip.MustParseAddr("10.9.0.5")
	store := ipam.MemStore{"web": {Allocated: []netip.Addr{netip.MustParseAddr("10.9.0.4"), a}}}
	g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: ipamtest.NewNetwork().Table("h1"), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Release("web", a); err != nil {
		t.Fatal(err)
	}
	if got := store["web"].Allocated; len(got) != 1 || got[0] != netip.MustParseAddr("10.9.0.4") {
		t.Fatalf("saved leases %v", got)
	}
	if err := g.Release("web", a); !errors.Is(err, ipam.ErrNotAllocated) {
		t.Fatalf("second release: %v", err)
	}
}

// TestGlobal_networkOutlivesItsCreator: a network stays in sight on every
// host when its creator dies, and any host can remove it.
func TestGlobal_networkOutlivesItsCreator(t *testing.T) {
	s := newSim(t, "h1", "h2", "h3")
	p := s.create("h1", "web", ipam.PoolConfig{})
	s.alloc("h2", "web")
	s.crash("h1")
	for _, h := range []string{"h2", "h3"} {
		s.hosts[h].g.Refresh()
		if got, ok := s.hosts[h].g.Subnet("web"); !ok || got != p {
			t.Errorf("%s after the creator died: %v %v, want %v", h, got, ok, p)
		}
	}
	s.alloc("h2", "web")
	if err := s.hosts["h3"].g.DeleteNetwork("web"); err != nil {
		t.Fatalf("delete by a host that did not create it: %v", err)
	}
	testutil.WaitFor(t, "web gone from h2", 5*time.Second, func() bool {
		_, ok := s.hosts["h2"].g.Subnet("web")
		return !ok
	})
	s.restart("h1")
	testutil.WaitFor(t, "web gone from its returning creator", 5*time.Second, func() bool {
		_, ok := s.hosts["h1"].g.Subnet("web")
		return !ok
	})
}

// TestGlobal_oneCreationWinsAfterHeal: the same name created on both sides
// of a partition: after the heal every host names the same creation, the
// loser's leases are reported lost, and removing the network removes the
// name for good (the loser does not take its place).
func TestGlobal_oneCreationWinsAfterHeal(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.net.Partition([]string{"h1"}, []string{"h2"})
	s.create("h1", "fixed", ipam.PoolConfig{Subnet: "10.88.0.0/24"})
	s.clock.Add(time.Millisecond)
	s.create("h2", "fixed", ipam.PoolConfig{Subnet: "10.88.0.0/24"})
	a1, a2 := s.alloc("h1", "fixed"), s.alloc("h2", "fixed")
	if a1 != a2 {
		t.Logf("both sides handed out %v and %v", a1, a2)
	}
	s.net.Heal()
	testutil.WaitFor(t, "both hosts to name h1's creation", 5*time.Second, func() bool {
		c1, t1, ok1 := s.hosts["h1"].g.Creation("fixed")
		c2, t2, ok2 := s.hosts["h2"].g.Creation("fixed")
		return ok1 && ok2 && c1 == "h1" && c2 == "h1" && t1.Equal(t2)
	})
	testutil.WaitFor(t, "h2 told its lease is lost", 5*time.Second, func() bool {
		h := s.hosts["h2"]
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.lost) == 1 && h.lost[0] == a2
	})
	if l := s.hosts["h2"].g.Leases("fixed"); len(l) != 0 {
		t.Errorf("h2 still leases %v", l)
	}
	s.alloc("h2", "fixed")
	s.checkUnique("fixed")
	if err := s.hosts["h2"].g.DeleteNetwork("fixed"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		testutil.WaitFor(t, h+" to drop fixed", 5*time.Second, func() bool {
			s.hosts[h].g.Refresh()
			_, ok := s.hosts[h].g.Subnet("fixed")
			return !ok
		})
	}
}

// TestGlobal_refusedCreationLeavesNothing: a user subnet refused during
// Settle (the overlap appeared when a partition healed) leaves no network
// behind on any host, mirrors included, and the name can be used again.
func TestGlobal_refusedCreationLeavesNothing(t *testing.T) {
	s := newSim(t, "h1", "h3", "h4")
	s.net.Table("h2")
	s.net.Partition([]string{"h1", "h3"}, []string{"h2", "h4"})
	s.create("h1", "a", ipam.PoolConfig{Subnet: "10.40.0.0/16"})
	// h2 settles slowly, so that the heal comes while it waits.
	g2, err := ipam.NewGlobal(ipam.GlobalConfig{Table: s.net.Table("h2"), Settle: time.Second, InheritAfter: time.Hour,
		ServeDelay: 20 * time.Millisecond, Tick: 2 * time.Millisecond, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go g2.Run(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := g2.CreateNetwork(context.Background(), "b", ipam.PoolConfig{Subnet: "10.40.3.0/24"}, 0)
		done <- err
	}()
	testutil.WaitFor(t, "h4 to see b", 5*time.Second, func() bool {
		_, ok := s.hosts["h4"].g.Subnet("b")
		return ok
	})
	s.net.Heal()
	if err := <-done; !errors.Is(err, ipam.ErrOverlap) {
		t.Fatalf("creation across the heal: %v, want ErrOverlap", err)
	}
	for _, g := range []*ipam.Global{s.hosts["h1"].g, g2, s.hosts["h3"].g, s.hosts["h4"].g} {
		testutil.WaitFor(t, "b dropped everywhere", 5*time.Second, func() bool {
			g.Refresh()
			_, ok := g.Subnet("b")
			return !ok
		})
	}
	s.create("h3", "b", ipam.PoolConfig{Subnet: "10.41.0.0/24"})
}

// TestGlobal_dualStackSides: a dual-stack network's IPv6 side is a network
// of its own name (NAME#6) whose claim takes the IPv4 side's creation
// time; both hand out addresses, and a name#6 of an invalid name is
// refused.
func TestGlobal_dualStackSides(t *testing.T) {
	s := newSim(t, "h1", "h2")
	s.create("h1", "web", ipam.PoolConfig{Subnet: "10.0.9.0/24"})
	_, created, ok := s.hosts["h1"].g.Creation("web")
	if !ok {
		t.Fatal("no creation of web")
	}
	p, err := s.hosts["h1"].g.CreateNetworkAt(ctxT(t), "web"+ipam.V6Suffix, ipam.PoolConfig{Subnet: "fd00:9::/64"}, 0, created)
	if err != nil || p.String() != "fd00:9::/64" {
		t.Fatalf("IPv6 side: %v %v", p, err)
	}
	for _, h := range []string{"h1", "h2"} {
		testutil.WaitFor(t, h+" to see web#6", 10*time.Second, func() bool { _, ok := s.hosts[h].g.Subnet("web" + ipam.V6Suffix); return ok })
		if _, at, ok := s.hosts[h].g.Creation("web" + ipam.V6Suffix); !ok || !at.Equal(created) {
			t.Errorf("%s: IPv6 side created %v, want %v", h, at, created)
		}
		if a := s.alloc(h, "web"+ipam.V6Suffix); !a.Is6() {
			t.Errorf("%s: IPv6 side gave %v", h, a)
		}
		if a := s.alloc(h, "web"); !a.Is4() {
			t.Errorf("%s: IPv4 side gave %v", h, a)
		}
	}
	if _, err := s.hosts["h1"].g.CreateNetworkAt(ctxT(t), "-bad"+ipam.V6Suffix, ipam.PoolConfig{Subnet: "fd00:8::/64"}, 0, created); err == nil {
		t.Error("an invalid name's IPv6 side was created")
	}
	if _, err := s.hosts["h1"].g.CreateNetworkAt(ctxT(t), "x"+ipam.V6Suffix, ipam.PoolConfig{Subnet: "fd00:7::/64"}, 0, time.Time{}); err == nil {
		t.Error("created without a creation time")
	}
}

// TestGlobalClaims runs the tests whose promises hold in both modes with
// blocks taken by claims, as on an etcd store.
func TestGlobalClaims(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"threeHostsConcurrentAllocateNoDuplicates", TestGlobal_threeHostsConcurrentAllocateNoDuplicates},
		{"exhaustionNamesNetwork", TestGlobal_exhaustionNamesNetwork},
		{"exhaustedAtOnceWhenEveryBlockIsHere", TestGlobal_exhaustedAtOnceWhenEveryBlockIsHere},
		{"releaseReusesNothingAtOnce", TestGlobal_releaseReusesNothingAtOnce},
		{"restartReusesNoLease", TestGlobal_restartReusesNoLease},
		{"goneForGoodBlocksInherited", TestGlobal_goneForGoodBlocksInherited},
		{"forgottenBlocksPassAtOnce", TestGlobal_forgottenBlocksPassAtOnce},
		{"staticAddress", TestGlobal_staticAddress},
		{"creatorKeepsFirstBlock", TestGlobal_creatorKeepsFirstBlock},
		{"ipv6Network", TestGlobal_ipv6Network},
		{"networkOutlivesItsCreator", TestGlobal_networkOutlivesItsCreator},
		{"deleteDropsEverywhere", TestGlobal_deleteDropsEverywhere},
		{"deleteAfterRestartLeavesNoRows", TestGlobal_deleteAfterRestartLeavesNoRows},
		{"oneHostNetwork", TestGlobal_oneHostNetwork},
		{"dualStackSides", TestGlobal_dualStackSides},
		{"lastEmptyBlockToAHostWithNone", TestGlobal_lastEmptyBlockToAHostWithNone},
		{"blockHolders", TestGlobal_blockHolders},
		{"prefetchedBlocksStay", TestGlobal_prefetchedBlocksStay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claimsMode = true
			defer func() { claimsMode = false }()
			tc.f(t)
		})
	}
}

// lateTable is a table whose store takes subnet claims but reports a
// failure for the first one (etcd paused: the caller's deadline passed,
// the write went in when etcd resumed).
type lateTable struct {
	ipam.Table
	mu     sync.Mutex
	failed bool
}

func (l *lateTable) Put(key string, value []byte) error {
	err := l.Table.Put(key, value)
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(key, ipam.SubnetKeyPrefix) && !l.failed {
		l.failed = true
		return errors.New("store unavailable: context deadline exceeded")
	}
	return err
}

// TestGlobal_failedCreationLeavesNoClaim: a creation whose claim the store
// took after reporting a failure leaves no network behind: the next
// refresh withdraws the claim, and the name can be created again.
func TestGlobal_failedCreationLeavesNoClaim(t *testing.T) {
	tbl := &lateTable{Table: ipamtest.NewNetwork().Table("h1")}
	g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: tbl, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := ipam.PoolConfig{Subnet: "10.91.0.0/24"}
	if _, err := g.CreateNetwork(ctxT(t), "down", c, 0); err == nil {
		t.Fatal("the failed write was not reported")
	}
	g.Refresh()
	if _, _, ok := g.Creation("down"); ok {
		t.Fatal("the claim of the failed creation still stands after a refresh")
	}
	if p, err := g.CreateNetwork(ctxT(t), "down", c, 0); err != nil || p.String() != c.Subnet {
		t.Fatalf("creating it again: %v %v", p, err)
	}
}

// withdrawStore is a MemStore that keeps the claims to withdraw too
// (ipam.WithdrawalLog), as the agent's state file does.
type withdrawStore struct {
	ipam.MemStore
	mu      sync.Mutex
	pending []ipam.PendingWithdrawal
}

func (s *withdrawStore) PendingWithdrawals() ([]ipam.PendingWithdrawal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pending), nil
}

func (s *withdrawStore) SavePendingWithdrawals(l []ipam.PendingWithdrawal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = slices.Clone(l)
	return nil
}

// TestGlobal_failedCreationWithdrawnAfterRestart: the claim of a failed
// creation that the table shows only after the host restarted is still
// withdrawn, by the new run, from what the store kept, even when the
// restart comes long after the failure and the table catches up only
// later; once withdrawn, the store keeps nothing more. Another host's
// claim, or one that does not decode, in the store is dropped.
func TestGlobal_failedCreationWithdrawnAfterRestart(t *testing.T) {
	net := ipamtest.NewNetwork()
	base := net.Table("h1")
	// The first run's store reports the write failed and never shows it
	// to that run: it lands while the host is down.
	first := &hiddenClaims{Table: &lateTable{Table: base}}
	first.hidden.Store(true)
	store := &withdrawStore{MemStore: ipam.MemStore{}}
	g, err := ipam.NewGlobal(ipam.GlobalConfig{Table: first, Store: store, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := ipam.PoolConfig{Subnet: "10.92.0.0/24"}
	if _, err := g.CreateNetwork(ctxT(t), "late", c, 0); err == nil {
		t.Fatal("the failed write was not reported")
	}
	g.Refresh()
	if len(store.pending) != 1 || store.pending[0].Network != "late" {
		t.Fatalf("the store keeps %+v, want the claim of network late", store.pending)
	}
	store.pending = append(store.pending,
		ipam.PendingWithdrawal{Network: "other", Claim: []byte(`{"creator":"h2","created":5,"rev":1,"subnet":"10.93.0.0/24"}`), Since: time.Now()},
		ipam.PendingWithdrawal{Network: "junk", Claim: []byte(`{"creator":`), Since: time.Now()})

	// The restart, eleven minutes after the failure, on the same store:
	// the table shows the claim only once it has caught up.
	later := time.Now().Add(11 * time.Minute)
	second := &hiddenClaims{Table: base}
	second.hidden.Store(true)
	g2, err := ipam.NewGlobal(ipam.GlobalConfig{Table: second, Store: store, Settle: time.Millisecond, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	if len(store.pending) != 1 || store.pending[0].Network != "late" {
		t.Fatalf("after the restart the store keeps %+v, want only the claim of network late", store.pending)
	}
	second.hidden.Store(false)
	g2.Refresh()
	if _, _, ok := g2.Creation("late"); ok {
		t.Fatal("the claim of the failed creation stands after the restart")
	}
	if len(store.pending) != 0 {
		t.Fatalf("the store still keeps %+v after the withdrawal", store.pending)
	}
	if p, err := g2.CreateNetwork(ctxT(t), "late", c, 0); err != nil || p.String() != c.Subnet {
		t.Fatalf("creating it again: %v %v", p, err)
	}
}

// hiddenClaims is a table whose subnet claims are not seen while hidden
// is set (List of a claim's key is empty): a write the store took after
// its caller gave up, shown only once the host is back and its table has
// caught up.
type hiddenClaims struct {
	ipam.Table
	hidden atomic.Bool
}

func (h *hiddenClaims) List(prefix string) []ipam.Row {
	if h.hidden.Load() && strings.HasPrefix(prefix, ipam.SubnetKeyPrefix) {
		return nil
	}
	return h.Table.List(prefix)
}

// TestGlobal_unservableClaimHoldsNoName: a range too small for one address
// block is refused before anything is written, and a claim like it already
// in the table (written by an older release) never wins its name: a good
// creation of the name succeeds on every host, and the bad claim is
// withdrawn.
func TestGlobal_unservableClaimHoldsNoName(t *testing.T) {
	s := newSim(t, "h1", "h2")
	g1 := s.hosts["h1"].g
	for _, r := range []string{"10.144.0.0/32", "10.144.0.4/31", "10.144.0.5/32"} {
		_, err := g1.CreateNetwork(ctxT(t), "d8", ipam.PoolConfig{Subnet: "10.144.0.0/24", IPRange: r}, 0)
		if !errors.Is(err, ipam.ErrInvalid) || !strings.Contains(err.Error(), "ip-range") || !strings.Contains(err.Error(), r) {
			t.Errorf("range %s: %v, want it refused naming ip-range and the range", r, err)
		}
	}
	if rows := s.net.Table("h1").List(ipam.SubnetKeyPrefix); len(rows) != 0 {
		t.Fatalf("refused creations left %d claims: %+v", len(rows), rows)
	}

	// An older release's claims: a /32 range with blocks of 4 addresses,
	// one of h1's and one of a host gone (which any host withdraws).
	bad := `{"creator":"h1","created":5,"rev":1,"subnet":"10.144.0.0/24","ipRange":"10.144.0.0/32","blockBits":2}`
	if err := s.net.Table("h1").Put(ipam.SubnetKeyPrefix+"d8/h1/5", []byte(bad)); err != nil {
		t.Fatal(err)
	}
	gone := `{"creator":"gone","created":6,"rev":1,"subnet":"10.145.0.0/24","ipRange":"10.145.0.0/32","blockBits":2}`
	if err := s.net.Table("h2").Put(ipam.SubnetKeyPrefix+"d9/gone/6", []byte(gone)); err != nil {
		t.Fatal(err)
	}
	if p9 := s.create("h2", "d9", ipam.PoolConfig{Subnet: "10.149.0.0/24"}); p9.String() != "10.149.0.0/24" {
		t.Fatalf("d9 created as %v", p9)
	}
	p := s.create("h2", "d8", ipam.PoolConfig{Subnet: "10.148.0.0/24"})
	for name, h := range s.hosts {
		testutil.WaitFor(t, name+" to serve d8", 5*time.Second, func() bool {
			h.g.Refresh()
			got, ok := h.g.Subnet("d8")
			return ok && got == p
		})
	}
	// Withdrawn by a deleted copy of its creation, which any host may
	// write.
	for _, c := range []struct{ name, created string }{{"d8", `"created":5,`}, {"d9", `"created":6,`}} {
		testutil.WaitFor(t, "the bad claim of "+c.name+" to be withdrawn", 5*time.Second, func() bool {
			g1.Refresh()
			for _, r := range s.net.Table("h1").List(ipam.SubnetKeyPrefix + c.name + "/") {
				if strings.Contains(string(r.Value), c.created) && strings.Contains(string(r.Value), `"deleted":true`) {
					return true
				}
			}
			return false
		})
	}
	if a := s.alloc("h1", "d8"); !p.Contains(a) {
		t.Fatalf("h1 leased %v outside %v", a, p)
	}
}
