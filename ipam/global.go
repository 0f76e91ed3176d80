package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GlobalConfig configures the global scope on one host.
type GlobalConfig struct {
	// Table is the replicated table (required).
	Table Table
	// Store keeps this host's leases across restarts; nil keeps them in
	// memory only.
	Store Store
	// DefaultBase and DefaultSize are the default address pools new
	// networks without --subnet take their subnet from (10.0.0.0/8 in
	// /24s).
	DefaultBase string
	DefaultSize int
	// Settle is how long a new subnet claim or an inherited block waits
	// before it is used, so that a conflicting claim in flight arrives
	// first. Default 1 s.
	Settle time.Duration
	// InheritAfter is how long a host must have been absent before the
	// live hosts take over its blocks: the definition of "gone for good".
	// Default 24 h, as kvs's ReapAfter; a partition longer than this is
	// treated as a death.
	InheritAfter time.Duration
	// Forgotten reports whether a host was forgotten by an operator (it
	// will not come back): absent, it is gone for good at once. Nil: none
	// is. Called with the Global's lock held: it must not call back.
	Forgotten func(host string) bool
	// ServeDelay staggers the hosts that could answer a request for a
	// block: the host ranked k answers only if the request is still open
	// after k×ServeDelay. Default 200 ms.
	ServeDelay time.Duration
	// Tick is how often Run reads the whole table, for what changes
	// with time alone (absence, staggered answers, Settle). Default 1 s.
	Tick time.Duration
	// OnLost is told of leases that became invalid because their network
	// moved to another subnet (it lost an overlap after a partition
	// healed) or their block passed to another host (this host was
	// absent longer than InheritAfter). The caller must readdress those
	// endpoints. Called without locks held, from the refreshing goroutine.
	OnLost func(network string, addrs []netip.Addr)
	// Avoid lists what an automatic subnet must not overlap besides the
	// claimed networks: this host's own networks (its interfaces' LANs,
	// other runtimes' bridges) and the hosts' underlay addresses, which a
	// network's routes would shadow. Called without the Global's lock at
	// each creation of a network without a subnet; an automatic subnet
	// that later moves (it lost an overlap) steers around what the last
	// call said. Nil: nothing.
	Avoid func() []netip.Prefix
	// Logger gets protocol events; nil discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *GlobalConfig) setDefaults() error {
	if c.Table == nil {
		return errors.New("ipam: GlobalConfig.Table is required")
	}
	if c.Store == nil {
		c.Store = MemStore{}
	}
	if c.DefaultBase == "" {
		c.DefaultBase, c.DefaultSize = DefaultBase, DefaultSize
	}
	if c.Settle == 0 {
		c.Settle = time.Second
	}
	if c.InheritAfter == 0 {
		c.InheritAfter = 24 * time.Hour
	}
	if c.ServeDelay == 0 {
		c.ServeDelay = 200 * time.Millisecond
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Global allocates addresses of global networks on one host. See the
// package documentation for the protocol. Safe for concurrent use.
type Global struct {
	cfg     GlobalConfig
	self    string
	subnets *SubnetPool // only for its base and size
	claims  Claimer     // set when the table's store takes claims: blocks by claims
	// storeErr, by claims: the store's error in the refresh under way;
	// once set, the refresh writes nothing more (it would only wait).
	storeErr error

	mu   sync.Mutex
	nets map[string]*gnet
	// avoid is GlobalConfig.Avoid's answer for the creation or refresh
	// under way; avoidFresh says it was asked for this one (an automatic
	// subnet moves only then), wantAvoid that a refresh should ask.
	avoid      []netip.Prefix
	avoidFresh bool
	wantAvoid  bool
	absent     map[string]time.Time // hosts seen in rows but not live, since
	wake       chan struct{}        // closed at every refresh
	lost       []lostLeases         // to report after unlocking
	kick       chan struct{}
	decoded    map[string]cachedRow // rows decoded, by key
	// creations are the live (not deleted) creations of every network
	// name in sight, the latest revision of each, from the last refresh
	// of the claims.
	creations map[string][]subnetClaim
	// unsure are this host's subnet claims that a failed creation may
	// have left in the store (a write the store took after its caller
	// gave up, a creation abandoned while it settled), by key: each
	// refresh withdraws them until a withdrawal is written.
	unsure map[string]unsureClaim
	// badClaims are the subnet claims claimErr refused, by key: each is
	// logged (and this host's withdrawn) once.
	badClaims map[string]bool

	dirtyMu     sync.Mutex
	dirtyAll    bool
	dirtyClaims bool
	dirty       map[string]bool // networks whose rows changed
}

type lostLeases struct {
	network string
	addrs   []netip.Addr
}

// gnet is one global network as this host sees it.
type gnet struct {
	name      string
	claim     subnetClaim
	pool      *Pool
	blockBits int
	nblocks   uint64

	held     map[uint64]*heldBlock // blocks this host holds
	count    map[uint64]int        // this host's leases per block
	written  map[string]string     // this host's rows: key → value written
	hostRow  hostState
	waiters  int
	reqSeen  map[string]reqSeen // open requests of other hosts
	cursor   uint64             // next-fit over held blocks
	conflict string             // the network whose earlier claim overlaps ours
	claimErr error              // by claims: the store's error at the last refresh, if any
}

type heldBlock struct {
	grant    blockGrant
	usableAt time.Time // after an inheritance: not before Settle
}

type reqSeen struct {
	seq uint64
	at  time.Time
}

// NewGlobal starts the global scope for this host. It reads the table at
// once, so rows persisted and put back before are taken into account.
func NewGlobal(cfg GlobalConfig) (*Global, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sp, err := NewSubnetPool(cfg.DefaultBase, cfg.DefaultSize)
	if err != nil {
		return nil, err
	}
	g := &Global{cfg: cfg, self: cfg.Table.Self(), subnets: sp, nets: map[string]*gnet{},
		absent: map[string]time.Time{}, wake: make(chan struct{}), kick: make(chan struct{}, 1),
		decoded: map[string]cachedRow{}, unsure: map[string]unsureClaim{}, badClaims: map[string]bool{}}
	if c, ok := cfg.Table.(Claimer); ok && c.CanClaim() {
		g.claims = c
	}
	if err := g.loadUnsure(); err != nil {
		return nil, err
	}
	g.Refresh()
	return g, nil
}

// Notify tells Run that the row at key changed ("" for a change of
// membership, or anything else that needs a full refresh); it never
// blocks. The agent calls it for every event of its table watch.
func (g *Global) Notify(key string) {
	g.dirtyMu.Lock()
	if key == "" || g.dirtyAll {
		g.dirtyAll = true
	} else if kind, rest, ok := strings.Cut(key, "/"); ok {
		network, _, _ := strings.Cut(rest, "/")
		if kind+"/" == keySubnet {
			g.dirtyClaims = true
		}
		if g.dirty == nil {
			g.dirty = map[string]bool{}
		}
		g.dirty[network] = true
	}
	g.dirtyMu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// refreshDirty refreshes what Notify marked.
func (g *Global) refreshDirty() {
	g.dirtyMu.Lock()
	all, claims, dirty := g.dirtyAll, g.dirtyClaims, g.dirty
	g.dirtyAll, g.dirtyClaims, g.dirty = false, false, nil
	g.dirtyMu.Unlock()
	if all {
		g.Refresh()
		return
	}
	if len(dirty) == 0 && !claims {
		return
	}
	g.mu.Lock()
	g.refreshPartLocked(dirty, claims)
	lost := g.lost
	g.lost = nil
	g.mu.Unlock()
	g.report(lost)
}

func (g *Global) report(lost []lostLeases) {
	if g.cfg.OnLost != nil {
		for _, l := range lost {
			g.cfg.OnLost(l.network, l.addrs)
		}
	}
}

// minRefreshGap spaces refreshes triggered by Notify: on a busy cluster
// every row anywhere changes the table, and one refresh covers them all.
const minRefreshGap = 20 * time.Millisecond

// Run refreshes on Notify and every Tick until ctx ends.
func (g *Global) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
			g.refreshDirty()
		case <-t.C:
			g.Refresh()
		}
		gap.Reset(minRefreshGap)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

// Refresh reads the table and acts on it: accepts grants, answers
// requests, inherits blocks of hosts gone for good, moves a losing
// automatic subnet.
func (g *Global) Refresh() {
	g.mu.Lock()
	want := g.wantAvoid && g.cfg.Avoid != nil
	g.mu.Unlock()
	var avoid []netip.Prefix
	if want {
		avoid = g.cfg.Avoid() // without the lock: it may ask the cluster
	}
	g.mu.Lock()
	if want {
		g.avoid, g.avoidFresh, g.wantAvoid = avoid, true, false
	}
	g.refreshLocked()
	lost := g.lost
	g.lost = nil
	g.mu.Unlock()
	g.report(lost)
}

// CreateNetwork claims a subnet for a new global network: c.Subnet, or
// the next free subnet of the default pools when it is empty. It returns
// after Settle, once no earlier claim overlaps. blockSize is the prefix
// length of the blocks hosts claim (0: the default for the range).
func (g *Global) CreateNetwork(ctx context.Context, name string, c PoolConfig, blockSize int) (netip.Prefix, error) {
	return g.createNetwork(ctx, name, c, blockSize, time.Time{})
}

// CreateNetworkAt is CreateNetwork with the claim's creation time given:
// the IPv6 side of a dual-stack network (named Name+V6Suffix) takes its
// IPv4 side's, so that of two creations of one name the same one wins both
// claims.
func (g *Global) CreateNetworkAt(ctx context.Context, name string, c PoolConfig, blockSize int, created time.Time) (netip.Prefix, error) {
	if created.IsZero() {
		return netip.Prefix{}, &Error{Network: name, Field: "created", Value: "0", Err: ErrInvalid, Detail: "a creation time is required"}
	}
	return g.createNetwork(ctx, name, c, blockSize, created)
}

func (g *Global) createNetwork(ctx context.Context, name string, c PoolConfig, blockSize int, created time.Time) (netip.Prefix, error) {
	if !ValidNetworkName(name) {
		return netip.Prefix{}, &Error{Network: name, Field: "name", Value: name, Err: ErrInvalid,
			Detail: "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"}
	}
	auto := c.Subnet == ""
	var avoid []netip.Prefix
	if auto && g.cfg.Avoid != nil {
		avoid = g.cfg.Avoid()
	}
	for attempt := 0; attempt < 16; attempt++ {
		g.mu.Lock()
		if auto && g.cfg.Avoid != nil {
			g.avoid, g.avoidFresh = avoid, true
		}
		g.refreshLocked()
		if n, ok := g.nets[name]; ok {
			err := &Error{Network: name, Field: "name", Value: name, Err: ErrInUse,
				Detail: "a network of that name exists, created by " + n.claim.Creator}
			g.mu.Unlock()
			return netip.Prefix{}, err
		}
		cc := c
		if auto {
			p, err := g.pickSubnetLocked(name)
			if err != nil {
				g.mu.Unlock()
				return netip.Prefix{}, err
			}
			cc.Subnet = p.String()
		}
		pool, err := NewPool(name, cc)
		if err != nil {
			g.mu.Unlock()
			return netip.Prefix{}, err
		}
		bb, err := blockBitsFor(name, pool.Range, blockSize)
		if err != nil {
			g.mu.Unlock()
			return netip.Prefix{}, err
		}
		if other, ok := g.overlapLocked(pool.Subnet, name, false); ok {
			g.mu.Unlock()
			return netip.Prefix{}, &Error{Network: name, Field: "subnet", Value: cc.Subnet, Err: ErrOverlap, Detail: "network " + other}
		}
		at := g.cfg.Now().UnixNano()
		if !created.IsZero() {
			at = created.UnixNano()
		}
		claim := subnetClaim{Creator: g.self, Created: at, Rev: 1, Subnet: pool.Subnet.String(),
			IPRange: c.IPRange, Gateway: pool.Gateway.String(), Aux: c.AuxAddresses, BlockBits: bb, Auto: auto, OneHost: c.OneHost}
		key := subnetKey(name, g.self, claim.Created)
		if err := g.putLocked(nil, key, claim); err != nil {
			// The store may still take the write (etcd, paused, after
			// the deadline): the claim would hold the name for a
			// network nobody made.
			g.unsureLocked(name, claim)
			g.mu.Unlock()
			return netip.Prefix{}, err
		}
		g.refreshLocked()
		if n, ok := g.nets[name]; ok {
			n.written[key] = string(mustJSON(claim))
		}
		g.mu.Unlock()

		// Wait out Settle, then check the claim still stands; an
		// automatic subnet that lost moves, and its new claim settles too.
		for settled := 0; ; settled++ {
			if err := sleepCtx(ctx, g.cfg.Settle); err != nil {
				g.mu.Lock()
				g.unsureLocked(name, claim) // abandoned: withdrawn
				g.withdrawUnsureLocked()
				g.mu.Unlock()
				return netip.Prefix{}, err
			}
			g.mu.Lock()
			g.refreshLocked()
			n, ok := g.nets[name]
			if !ok || n.claim.Creator != g.self || n.claim.Created != claim.Created {
				g.mu.Unlock()
				break // another creation of the name won, or ours vanished
			}
			if n.conflict == "" && n.claim.Subnet == claim.Subnet {
				p := n.pool.Subnet
				g.mu.Unlock()
				return p, nil
			}
			if !auto || settled > 16 {
				other := n.conflict
				g.deleteNetworkLocked(n)
				g.mu.Unlock()
				return netip.Prefix{}, &Error{Network: name, Field: "subnet", Value: claim.Subnet, Err: ErrOverlap, Detail: "network " + other}
			}
			claim = n.claim // moved: settle the new subnet
			g.mu.Unlock()
		}
		g.mu.Lock()
		if n, ok := g.nets[name]; ok && n.claim.Creator != g.self {
			err := &Error{Network: name, Field: "name", Value: name, Err: ErrInUse,
				Detail: "created at the same time by " + n.claim.Creator + ", whose claim was earlier"}
			g.mu.Unlock()
			return netip.Prefix{}, err
		}
		g.mu.Unlock()
	}
	return netip.Prefix{}, &Error{Network: name, Field: "subnet", Value: c.Subnet, Err: ErrExhausted, Detail: "every subnet tried was claimed concurrently"}
}

// CheckNetwork checks, without making anything, what CreateNetwork would
// refuse of a network's subnet: a subnet or range containers cannot use,
// a block size that does not fit its range, and a subnet that overlaps
// another network's without being the same subnet (which is the same
// network, made on another host).
func (g *Global) CheckNetwork(name string, c PoolConfig, blockSize int) error {
	pool, err := NewPool(name, c)
	if err != nil {
		return err
	}
	if _, err := blockBitsFor(name, pool.Range, blockSize); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refreshLocked()
	if other, ok := g.overlapLocked(pool.Subnet, name, true); ok {
		return &Error{Network: name, Field: "subnet", Value: c.Subnet, Err: ErrOverlap, Detail: "network " + other}
	}
	return nil
}

// DeleteNetwork withdraws a network, whichever host created it: every
// creation of the name in sight (a losing one too, so that none comes back
// in its place). Every host drops its blocks and leases of it when it sees
// the deletion.
func (g *Global) DeleteNetwork(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refreshLocked()
	n := g.nets[name]
	if len(g.creations[name]) == 0 {
		return &Error{Network: name, Field: "name", Value: name, Err: ErrNotAllocated, Detail: "no such global network"}
	}
	for _, c := range g.creations[name] {
		if err := g.withdrawLocked(n, name, c); err != nil {
			return err
		}
	}
	g.refreshLocked()
	return nil
}

// withdrawLocked writes creation c of a network as deleted, in this
// host's row (n may be nil): final for the creation, whoever created it.
func (g *Global) withdrawLocked(n *gnet, name string, c subnetClaim) error {
	c.Rev++
	c.Deleted = true
	return g.putLocked(n, subnetKey(name, g.self, c.Created), c)
}

// unsureClaim is a claim of this host's that a failed creation may have
// left in the store.
type unsureClaim struct {
	name  string
	claim subnetClaim
	since time.Time
}

// unsureFor is how long a claim whose write failed is watched for: a
// write the store takes late lands within moments of the store's return.
const unsureFor = 10 * time.Minute

// unsureLocked notes claim, of network name, as one to withdraw.
func (g *Global) unsureLocked(name string, c subnetClaim) {
	g.unsure[subnetKey(name, g.self, c.Created)] = unsureClaim{name, c, g.cfg.Now()}
	g.saveUnsureLocked()
}

// saveUnsureLocked keeps the unsure claims in the Store, where it is a
// WithdrawalLog; a failure is logged, and the claims stay in memory.
func (g *Global) saveUnsureLocked() {
	wl, ok := g.cfg.Store.(WithdrawalLog)
	if !ok {
		return
	}
	list := make([]PendingWithdrawal, 0, len(g.unsure))
	for _, key := range sortedKeys(g.unsure) {
		u := g.unsure[key]
		list = append(list, PendingWithdrawal{Network: u.name, Claim: mustJSON(u.claim), Since: u.since})
	}
	if err := wl.SavePendingWithdrawals(list); err != nil {
		g.cfg.Logger.Warn("ipam: could not save the claims of failed creations still to withdraw; a restart would forget them", "error", err)
	}
}

// loadUnsure takes up the claims an earlier run of this host had still to
// withdraw. Each is watched for unsureFor again from now: the table may
// not show a claim the store took late until it has caught up after the
// restart. One that does not decode, or is another host's, is dropped
// with a log line, and the list saved without it; the rest still count.
func (g *Global) loadUnsure() error {
	wl, ok := g.cfg.Store.(WithdrawalLog)
	if !ok {
		return nil
	}
	list, err := wl.PendingWithdrawals()
	if err != nil {
		return fmt.Errorf("ipam: the claims of failed creations still to withdraw: %w", err)
	}
	now, dropped := g.cfg.Now(), false
	for _, p := range list {
		var c subnetClaim
		reason := ""
		if err := json.Unmarshal(p.Claim, &c); err != nil {
			reason = "does not decode: " + err.Error()
		} else if c.Creator != g.self || c.Created == 0 {
			reason = fmt.Sprintf("not this host's claim: creator %q, created %d", c.Creator, c.Created)
		}
		if reason != "" {
			g.cfg.Logger.Warn("ipam: dropped a saved claim to withdraw", "network", p.Network, "reason", reason)
			dropped = true
			continue
		}
		g.unsure[subnetKey(p.Network, g.self, c.Created)] = unsureClaim{p.Network, c, now}
	}
	if dropped {
		g.saveUnsureLocked()
	}
	return nil
}

// withdrawUnsureLocked withdraws the unsure claims the table shows (only
// those: a write that never landed needs no withdrawal, and the store is
// up when it shows them), and forgets those it has not shown for
// unsureFor. A withdrawal that fails waits for the next refresh, and so
// do the others: the store is failing.
func (g *Global) withdrawUnsureLocked() {
	now, changed := g.cfg.Now(), false
	for _, key := range sortedKeys(g.unsure) {
		u := g.unsure[key]
		if !slices.ContainsFunc(g.cfg.Table.List(key), func(r Row) bool { return r.Key == key && r.Writer == g.self }) {
			if now.Sub(u.since) > unsureFor {
				delete(g.unsure, key)
				changed = true
			}
			continue
		}
		if err := g.withdrawLocked(nil, u.name, u.claim); err != nil {
			break
		}
		delete(g.unsure, key)
		changed = true
		g.cfg.Logger.Info("ipam: withdrew the subnet claim of a network whose creation failed", "network", u.name, "subnet", u.claim.Subnet)
	}
	if changed {
		g.saveUnsureLocked()
	}
}

// WithdrawOwn deletes this host's creations of a network (undoing a
// CreateNetwork whose next step failed), leaving other hosts' alone.
func (g *Global) WithdrawOwn(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refreshLocked()
	for _, c := range g.creations[name] {
		if c.Creator != g.self {
			continue
		}
		if err := g.withdrawLocked(g.nets[name], name, c); err != nil {
			g.cfg.Logger.Error("ipam: withdrawing a network", "network", name, "error", err)
		}
	}
	g.refreshLocked()
}

// Creation names the creation of a network that wins: its creator and
// when it was created (the creator's clock). Every host that sees the same
// claims names the same one.
func (g *Global) Creation(network string) (creator string, created time.Time, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return "", time.Time{}, false
	}
	return n.claim.Creator, time.Unix(0, n.claim.Created).UTC(), true
}

// Subnet returns a global network's subnet as this host sees it.
func (g *Global) Subnet(network string) (netip.Prefix, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return netip.Prefix{}, false
	}
	return n.pool.Subnet, true
}

// Gateway returns a global network's gateway (reserved, never handed out).
func (g *Global) Gateway(network string) (netip.Addr, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return netip.Addr{}, false
	}
	return n.pool.Gateway, true
}

// Blocks returns the blocks of a network this host holds.
func (g *Global) Blocks(network string) []netip.Prefix {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for _, idx := range sortedKeys(n.held) {
		out = append(out, blockPrefix(n.pool.Range, idx, n.blockBits))
	}
	return out
}

// BlockHolder is one address block of a global network that a host holds,
// as this host sees it.
type BlockHolder struct {
	Block  netip.Prefix
	Holder string
}

// BlockHolders lists, in order, the blocks of a global network that hosts
// hold (where a static address, --ip, can be taken: on the holder), and
// counts the others: untouched, the creator's to hand out (by claims:
// free, any host's to take). It reads the rows alone, so a range of
// 2^18 blocks costs what its blocks in use cost.
func (g *Global) BlockHolders(network string) (held []BlockHolder, others uint64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return nil, 0, false
	}
	holders := map[uint64]string{}
	if g.claims != nil {
		for idx, c := range g.claimRowsLocked(n, nil) {
			if !c.stale {
				holders[idx] = c.holder
			}
		}
	} else {
		for idx, r := range g.blockRowsLocked(n, nil) {
			holders[idx] = r.Holder
		}
	}
	for _, idx := range sortedKeys(holders) {
		held = append(held, BlockHolder{Block: blockPrefix(n.pool.Range, idx, n.blockBits), Holder: holders[idx]})
	}
	return held, n.nblocks - uint64(len(held)), true
}

// Allocate hands out an address of a global network from a block this
// host holds, asking for a block first when it holds none with room. It
// waits for the grant until ctx ends.
func (g *Global) Allocate(ctx context.Context, network string) (netip.Addr, error) {
	for {
		g.mu.Lock()
		n, err := g.netLocked(network)
		if err != nil {
			g.mu.Unlock()
			return netip.Addr{}, err
		}
		if a, ok := g.allocHeldLocked(n); ok {
			err := g.recordLocked(n, a, true)
			if n.blockFillingLocked(a) {
				if free, total := n.freeInHeldLocked(g.cfg.Now()); free*4 < total {
					g.refreshPartLocked(map[string]bool{network: true}, false) // ask for the next block early
				}
			}
			g.mu.Unlock()
			if err != nil {
				return netip.Addr{}, err
			}
			return a, nil
		}
		if n.allHeldLocked(g.cfg.Now()) {
			// Every block is this host's and full: no grant can come.
			g.mu.Unlock()
			return netip.Addr{}, &Error{Network: network, Field: "address", Value: "(next free)", Err: ErrExhausted,
				Detail: "every address of the range is in use on this host"}
		}
		n.waiters++
		held := len(n.held)
		g.refreshPartLocked(map[string]bool{network: true}, false) // asks for a block
		if len(n.held) != held {                                   // the creator took one itself: try again at once
			n.waiters--
			g.mu.Unlock()
			continue
		}
		if err := n.claimErr; err != nil {
			// By claims, the store could not take one: say so now rather
			// than wait for a block that cannot come.
			n.waiters--
			g.mu.Unlock()
			return netip.Addr{}, err
		}
		wake := g.wake
		g.mu.Unlock()

		var done bool
		select {
		case <-ctx.Done():
			done = true
		case <-wake:
		}
		g.mu.Lock()
		if n2, ok := g.nets[network]; ok && n2 == n {
			n.waiters--
		}
		g.mu.Unlock()
		if done {
			detail := "no block granted to this host in time: " + ctx.Err().Error()
			if n.nblocks <= 4 {
				// A small network: its few blocks are likely all held.
				detail += fmt.Sprintf(" (the range has %d address block(s) of %d, each handed out by one host at a time: create the endpoint on a host that holds one, or give the network a larger subnet)",
					n.nblocks, uint64(1)<<n.blockBits)
			}
			return netip.Addr{}, &Error{Network: network, Field: "address", Value: "(next free)", Err: ErrExhausted, Detail: detail}
		}
	}
}

// AllocateStatic takes a requested address of a global network. It must
// lie in the range, in a block this host holds or, on the host that
// created the network, in a block not yet handed to anyone.
func (g *Global) AllocateStatic(network string, a netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.netLocked(network)
	if err != nil {
		return err
	}
	off, ok := n.pool.alloc.offset(a)
	if !ok || off>>n.blockBits >= n.nblocks {
		return &Error{Network: network, Field: "address", Value: a.String(), Err: ErrOutOfRange,
			Detail: "a static address of a global network must lie in its range " + n.pool.RangeText()}
	}
	if why := n.pool.reservedFor(a); why != "" {
		return &Error{Network: network, Field: "address", Value: a.String(), Err: ErrInUse, Detail: why}
	}
	idx := blockOf(off, n.blockBits)
	if _, held := n.held[idx]; !held && g.claims != nil {
		if err := g.claimStaticLocked(n, a, idx); err != nil {
			return err
		}
	}
	if hb, held := n.held[idx]; !held || g.cfg.Now().Before(hb.usableAt) {
		b, explicit := g.holderLocked(n, idx)
		if b.Holder != g.self && !explicit {
			return &Error{Network: network, Field: "address", Value: a.String(), Err: ErrOtherHost,
				Detail: fmt.Sprintf("no host has taken its block %v yet, and such a block is handed out by the network's creator, host %s: create the endpoint there, or pick an address in a block this host holds (vxnet network inspect lists them)", blockPrefix(n.pool.Range, idx, n.blockBits), b.Holder)}
		}
		if b.Holder != g.self || explicit {
			return otherHostErr(network, a, blockPrefix(n.pool.Range, idx, n.blockBits), b.Holder)
		}
		// An untouched block of the network this host created: claim it.
		b.Gen = 1
		if !g.writeGrantLocked(n, idx, b) {
			return fmt.Errorf("ipam: network %q: claiming block %d failed", network, idx)
		}
		n.held[idx] = &heldBlock{grant: b}
	}
	if err := n.pool.AllocateStatic(a); err != nil {
		return err
	}
	n.count[idx]++
	return g.recordLocked(n, a, true)
}

// Release gives back an address of a global network, also one in
// conflict, and also one this host has not loaded yet (its saved lease
// goes).
func (g *Global) Release(network string, a netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		g.refreshLocked()
		n, ok = g.nets[network]
	}
	if !ok {
		// Not in sight yet (a host just restarted, before the cluster
		// told it of the network): the lease is only in the store.
		return g.releaseSavedLocked(network, a)
	}
	if err := n.pool.Release(a); err != nil {
		return err
	}
	if off, ok := n.pool.alloc.offset(a); ok {
		n.count[blockOf(off, n.blockBits)]--
	}
	return g.recordLocked(n, a, false)
}

// releaseSavedLocked removes a lease of a network this host has not
// loaded from the store.
func (g *Global) releaseSavedLocked(network string, a netip.Addr) error {
	st, ok, err := g.cfg.Store.Load(network)
	if err != nil {
		return fmt.Errorf("ipam: network %q: loading leases: %w", network, err)
	}
	i := -1
	if ok {
		i = slices.Index(st.Allocated, a)
	}
	if i < 0 {
		return &Error{Network: network, Field: "address", Value: a.String(), Err: ErrNotAllocated}
	}
	st.Allocated = slices.Delete(st.Allocated, i, i+1)
	if err := g.cfg.Store.Save(network, st); err != nil {
		return fmt.Errorf("ipam: network %q: saving leases: %w", network, err)
	}
	return nil
}

// Leases returns this host's leases of a network, sorted.
func (g *Global) Leases(network string) []netip.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.nets[network]
	if !ok {
		return nil
	}
	return n.stateLocked().Allocated
}

func (g *Global) netLocked(network string) (*gnet, error) {
	n, ok := g.nets[network]
	if !ok {
		g.refreshLocked()
		if n, ok = g.nets[network]; !ok {
			return nil, &Error{Network: network, Field: "network", Value: network, Err: ErrNotAllocated, Detail: "no such global network"}
		}
	}
	if n.conflict != "" {
		return nil, &Error{Network: network, Field: "subnet", Value: n.pool.Subnet.String(), Err: ErrOverlap,
			Detail: "network " + n.conflict + " claimed it first; this network hands out no address until it moves or is removed"}
	}
	return n, nil
}

// allocHeldLocked takes the next free address of a usable held block:
// the cursor's block first (the common case, without sorting), then the
// others in order.
func (g *Global) allocHeldLocked(n *gnet) (netip.Addr, bool) {
	now := g.cfg.Now()
	if idx := n.cursor >> n.blockBits; n.held[idx] != nil && !now.Before(n.held[idx].usableAt) {
		hi := (idx + 1) << n.blockBits
		if off, ok := n.pool.alloc.firstFree(n.cursor, hi); ok {
			n.pool.alloc.set(off)
			n.cursor = off + 1
			n.count[idx]++
			return n.pool.alloc.addr(off), true
		}
	}
	idxs := sortedKeys(n.held)
	if len(idxs) == 0 {
		return netip.Addr{}, false
	}
	start := sort.Search(len(idxs), func(i int) bool { return idxs[i] >= n.cursor>>n.blockBits })
	for i := 0; i < len(idxs); i++ {
		idx := idxs[(start+i)%len(idxs)]
		if now.Before(n.held[idx].usableAt) {
			continue
		}
		lo := idx << n.blockBits
		hi := lo + 1<<n.blockBits
		from := lo
		if n.cursor > lo && n.cursor < hi {
			from = n.cursor
		}
		off, ok := n.pool.alloc.firstFree(from, hi)
		if !ok && from != lo {
			off, ok = n.pool.alloc.firstFree(lo, from)
		}
		if !ok {
			continue
		}
		n.pool.alloc.set(off)
		n.cursor = off + 1
		n.count[idx]++
		return n.pool.alloc.addr(off), true
	}
	return netip.Addr{}, false
}

// allHeldLocked reports whether this host holds every block of the
// range, each usable now.
func (n *gnet) allHeldLocked(now time.Time) bool {
	blocks := (n.pool.alloc.size + 1<<n.blockBits - 1) >> n.blockBits
	if uint64(len(n.held)) < blocks {
		return false
	}
	for _, h := range n.held {
		if now.Before(h.usableAt) {
			return false
		}
	}
	return true
}

// stateLocked is the pool's State read from the blocks with leases only (a
// global range may be large; a host's leases sit in a few blocks).
func (n *gnet) stateLocked() State {
	st := State{Next: n.pool.alloc.addr(n.cursor % n.pool.alloc.size)}
	for _, idx := range sortedKeys(n.count) {
		if n.count[idx] <= 0 {
			continue
		}
		lo := idx << n.blockBits
		hi := min(lo+1<<n.blockBits, n.pool.alloc.size)
		for off := lo; off < hi; off++ {
			if !n.pool.alloc.isSet(off) {
				continue
			}
			if a := n.pool.alloc.addr(off); n.pool.InUse(a) {
				st.Allocated = append(st.Allocated, a)
			}
		}
	}
	for a := range n.pool.outside {
		st.Allocated = append(st.Allocated, a)
	}
	return st
}

// blockFillingLocked reports whether a's block is 3/4 full or more: only then
// is it worth counting the free addresses of every held block.
func (n *gnet) blockFillingLocked(a netip.Addr) bool {
	off, ok := n.pool.alloc.offset(a)
	if !ok {
		return true
	}
	lo := off >> n.blockBits << n.blockBits
	return n.pool.alloc.countFree(lo, lo+1<<n.blockBits)*4 < 1<<n.blockBits
}

// freeInHeldLocked counts the free addresses of usable held blocks.
func (n *gnet) freeInHeldLocked(now time.Time) (free, total uint64) {
	for idx, hb := range n.held {
		if now.Before(hb.usableAt) {
			continue
		}
		lo := idx << n.blockBits
		free += n.pool.alloc.countFree(lo, lo+1<<n.blockBits)
		total += 1 << n.blockBits
	}
	return free, total
}

func (g *Global) saveLocked(n *gnet) error {
	if err := g.cfg.Store.Save(n.name, n.stateLocked()); err != nil {
		return fmt.Errorf("ipam: network %q: saving leases: %w", n.name, err)
	}
	return nil
}

// recordLocked persists one lease change: through the store's LeaseLog
// when it has one, else by saving the whole state.
func (g *Global) recordLocked(n *gnet, a netip.Addr, leased bool) error {
	log, ok := g.cfg.Store.(LeaseLog)
	if !ok {
		return g.saveLocked(n)
	}
	var err error
	if leased {
		err = log.Leased(n.name, a)
	} else {
		err = log.Released(n.name, a)
	}
	if err != nil {
		return fmt.Errorf("ipam: network %q: saving lease %v: %w", n.name, a, err)
	}
	return nil
}

// putLocked writes one of this host's rows unless it already holds value.
func (g *Global) putLocked(n *gnet, key string, v any) error {
	b := mustJSON(v)
	if n != nil && n.written[key] == string(b) {
		return nil
	}
	if err := g.cfg.Table.Put(key, b); err != nil {
		return fmt.Errorf("ipam: writing %s: %w", key, err)
	}
	if n != nil {
		n.written[key] = string(b)
	}
	return nil
}

// blockBitsFor turns a block prefix length into host bits per block.
func blockBitsFor(network string, rng netip.Prefix, blockSize int) (int, error) {
	hostBits := min(rng.Addr().BitLen()-rng.Bits(), MaxRangeBits)
	if blockSize == 0 { // 64 blocks where the range allows, of at most 64 addresses
		return max(2, min(6, hostBits-6)), nil
	}
	bb := rng.Addr().BitLen() - blockSize
	if bb < 2 || bb > hostBits {
		return 0, &Error{Network: network, Field: "block-size", Value: strconv.Itoa(blockSize), Err: ErrInvalid,
			Detail: fmt.Sprintf("want a prefix length from %d to %d for range %v", rng.Addr().BitLen()-hostBits, rng.Addr().BitLen()-2, rng)}
	}
	return bb, nil
}

// pickSubnetLocked finds a default-pool subnet no visible claim overlaps,
// nor any of g.avoid (this host's networks, the hosts' underlay
// addresses), starting at a place that depends on the name so that hosts
// creating networks at once rarely pick the same.
func (g *Global) pickSubnetLocked(name string) (netip.Prefix, error) {
	s := g.subnets
	count := uint64(1) << (s.size - s.base.Bits())
	start := rank(name, g.self) % count
	var avoided netip.Prefix // the widest of g.avoid a candidate overlapped, for the error
	for i := uint64(0); i < count; i++ {
		p := s.candidate((start + i) % count)
		if a, ok := overlapsAny(p, g.avoid); ok {
			if !avoided.IsValid() || a.Bits() < avoided.Bits() || a.Bits() == avoided.Bits() && a.Addr().Less(avoided.Addr()) {
				avoided = a
			}
			continue
		}
		if _, taken := g.overlapLocked(p, name, false); !taken {
			return p, nil
		}
	}
	detail := fmt.Sprintf("every /%d of the default address pools is in use", s.size)
	if avoided.IsValid() {
		detail = fmt.Sprintf("every /%d of the default address pools is in use or overlaps this host's networks or a host's underlay address, such as %v: give --subnet apart from them", s.size, avoided)
	}
	return netip.Prefix{}, &Error{Network: name, Field: "subnet", Value: s.base.String(), Err: ErrExhausted, Detail: detail}
}

// overlapsAny returns the first of avoid that overlaps p.
func overlapsAny(p netip.Prefix, avoid []netip.Prefix) (netip.Prefix, bool) {
	for _, a := range avoid {
		if a.Overlaps(p) {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// overlapLocked names a network other than except whose subnet overlaps
// p; with sameOK, one whose subnet is p itself (the same network, made on
// another host) does not count.
func (g *Global) overlapLocked(p netip.Prefix, except string, sameOK bool) (string, bool) {
	for _, name := range sortedKeys(g.nets) {
		if n := g.nets[name]; name != except && n.pool.Subnet.Overlaps(p) && !(sameOK && n.pool.Subnet == p) {
			return name, true
		}
	}
	return "", false
}

// rank is the deterministic, well-spread order every host computes alike.
func rank(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	x := h.Sum64()
	// fnv's low bits spread poorly over short inputs: finish with a mixer.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

func sortedKeys[K uint64 | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// firstFree returns the first free offset in [lo, hi).
func (a *allocator) firstFree(lo, hi uint64) (uint64, bool) {
	hi = min(hi, a.size)
	for off := lo; off < hi; {
		w := off / 64
		free := ^a.words[w] & (^uint64(0) << (off % 64))
		if end := (w + 1) * 64; end > hi {
			free &= ^uint64(0) >> (end - hi)
		}
		if free != 0 {
			return w*64 + uint64(bits.TrailingZeros64(free)), true
		}
		off = (w + 1) * 64
	}
	return 0, false
}

// countFree counts the free offsets in [lo, hi).
func (a *allocator) countFree(lo, hi uint64) uint64 {
	hi = min(hi, a.size)
	var n uint64
	for off := lo; off < hi; {
		w := off / 64
		free := ^a.words[w] & (^uint64(0) << (off % 64))
		if end := (w + 1) * 64; end > hi {
			free &= ^uint64(0) >> (end - hi)
		}
		n += uint64(bits.OnesCount64(free))
		off = (w + 1) * 64
	}
	return n
}
