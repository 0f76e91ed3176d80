package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// prefetchPerHost: a host asks for its first block of a network before it
// needs one when the network has at least this many blocks per live host.
const prefetchPerHost = 4

// maxInheritPerRefresh bounds, per live host, the untouched blocks of a
// gone creator one refresh looks at for those this host is the heir of,
// so a refresh stays short on an IPv6 range.
const maxInheritPerRefresh = 1024

// refreshLocked reads the whole table and acts on it.
func (g *Global) refreshLocked() { g.refreshPartLocked(nil, true) }

// refreshPartLocked refreshes the networks named in dirty (all when
// dirty is nil), and the subnet claims if claims is set. Hosts' absence
// is tracked on full refreshes only, which see every row.
func (g *Global) refreshPartLocked(dirty map[string]bool, claims bool) {
	now := g.cfg.Now()
	defer func() { close(g.wake); g.wake = make(chan struct{}) }()
	defer func() { g.avoidFresh = false }() // asked for this refresh alone
	g.storeErr = nil

	members := g.cfg.Table.Members()
	live := make(map[string]bool, len(members)+1)
	live[g.self] = true
	for _, m := range members {
		live[m] = true
	}
	seen := map[string]bool{}
	full := dirty == nil

	if claims || full {
		if len(g.unsure) > 0 {
			g.withdrawUnsureLocked()
		}
		g.claimsLocked(seen)
	}
	for _, name := range sortedKeys(g.nets) {
		if full || dirty[name] {
			g.refreshNetLocked(g.nets[name], now, live, seen)
		}
	}
	if !full {
		return
	}
	for h := range seen {
		if live[h] {
			delete(g.absent, h)
		} else if _, ok := g.absent[h]; !ok {
			g.absent[h] = now
		}
	}
	for h := range g.absent {
		if !seen[h] {
			delete(g.absent, h)
		}
	}
}

// claimsLocked reads the subnet claims: new networks, moved ones,
// deleted ones, overlaps.
func (g *Global) claimsLocked(seen map[string]bool) {
	claims, deleted := g.currentClaimsLocked(seen)
	g.dropLosingCreationsLocked(claims)
	for _, name := range sortedKeys(g.nets) {
		n := g.nets[name]
		c, ok := claims[name]
		switch {
		case !ok && deleted[name]:
			g.dropLocked(n, true)
		case !ok:
			// Its rows are out of sight (their writers absent): a network
			// goes only when its deletion is seen.
		case c.Creator != n.claim.Creator || c.Created != n.claim.Created || c.Subnet != n.claim.Subnet ||
			c.IPRange != n.claim.IPRange || c.BlockBits != n.claim.BlockBits:
			g.dropLocked(n, false)
		}
	}
	for _, name := range sortedKeys(claims) {
		c := claims[name]
		n, ok := g.nets[name]
		if !ok {
			if n = g.newNetLocked(name, c); n == nil {
				continue
			}
		}
		n.claim = c
	}
	g.conflictsLocked()
}

// currentClaimsLocked reads the subnet rows: per network, the greatest
// revision of each creation; of several creations, the earliest one not
// deleted. deleted names the networks with a deleted creation in sight.
func (g *Global) currentClaimsLocked(seen map[string]bool) (claims map[string]subnetClaim, deleted map[string]bool) {
	type creation struct {
		creator string
		created int64
	}
	byCreation := map[string]map[creation]subnetClaim{}
	for _, r := range g.cfg.Table.List(keySubnet) {
		name, _, ok := splitKey(r.Key, keySubnet)
		if !ok {
			continue
		}
		c, err := decodeCachedLocked[subnetClaim](g, r)
		if err != nil || c.Creator == "" {
			g.cfg.Logger.Warn("ipam: ignoring a malformed subnet row", "key", r.Key, "node", r.Writer, "error", err)
			continue
		}
		seen[r.Writer], seen[c.Creator] = true, true
		m := byCreation[name]
		if m == nil {
			m = map[creation]subnetClaim{}
			byCreation[name] = m
		}
		k := creation{c.Creator, c.Created}
		// A deletion is final: whatever revision another copy (a mirror,
		// a move on the other side of a partition) carries.
		if old, ok := m[k]; !ok || (c.Deleted && !old.Deleted) || (c.Deleted == old.Deleted && c.Rev > old.Rev) {
			m[k] = c
		}
	}
	out, deleted := map[string]subnetClaim{}, map[string]bool{}
	g.creations = map[string][]subnetClaim{}
	for name, m := range byCreation {
		var best *subnetClaim
		for _, c := range m {
			if c.Deleted {
				deleted[name] = true
				continue
			}
			// A claim no host can serve (written by a release that let it
			// through) never wins, nor counts as a creation: the name
			// stays free for a good one.
			if err := claimErr(name, c); err != nil {
				g.badClaimLocked(name, c, err)
				continue
			}
			g.creations[name] = append(g.creations[name], c)
			if best == nil || earlier(c, *best) {
				best = &c
			}
		}
		if best != nil && ValidNetworkName(name) {
			out[name] = *best
		}
	}
	return out, deleted
}

// dropLosingCreationsLocked deletes this host's creations of a name that
// lost to an earlier one (made on both sides of a partition, or at once):
// the loser goes for good, so it cannot come back when the winner is
// removed.
func (g *Global) dropLosingCreationsLocked(winners map[string]subnetClaim) {
	for _, name := range sortedKeys(g.creations) {
		w, ok := winners[name]
		if !ok {
			continue
		}
		for _, c := range g.creations[name] {
			if c.Creator != g.self || (c.Creator == w.Creator && c.Created == w.Created) {
				continue
			}
			g.cfg.Logger.Warn("ipam: a network created here lost to an earlier creation of the same name; withdrawing this one",
				"network", name, "winner", w.Creator)
			if err := g.withdrawLocked(g.nets[name], name, c); err != nil {
				g.cfg.Logger.Error("ipam: withdrawing a losing creation", "network", name, "error", err)
			}
		}
	}
}

// claimErr says why no host can serve claim c of network name, or nil:
// its pool does not parse, or its block size does not fit its range.
func claimErr(name string, c subnetClaim) error {
	pool, err := parsePool(name, PoolConfig{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway, AuxAddresses: c.Aux})
	if err != nil {
		return err
	}
	hostBits := min(pool.Range.Addr().BitLen()-pool.Range.Bits(), MaxRangeBits)
	if c.BlockBits < 2 || c.BlockBits > hostBits {
		return &Error{Network: name, Field: "block-size", Value: strconv.Itoa(pool.Range.Addr().BitLen() - c.BlockBits), Err: ErrInvalid,
			Detail: fmt.Sprintf("blocks of %d host bits do not fit range %v", c.BlockBits, pool.Range)}
	}
	return nil
}

// badClaimLocked handles a claim claimErr refuses: it is logged once,
// and withdrawn (deleted).
func (g *Global) badClaimLocked(name string, c subnetClaim, err error) {
	k := subnetKey(name, c.Creator, c.Created)
	first := !g.badClaims[k]
	g.badClaims[k] = true
	if first {
		g.cfg.Logger.Warn("ipam: ignoring a subnet claim no host can serve", "network", name, "node", c.Creator, "error", err)
	}
	if c.Creator != g.self && slices.Contains(g.cfg.Table.Members(), c.Creator) {
		// Its creator is alive and judges its own claim (a newer release
		// may serve what this one cannot).
		return
	}
	// Withdrawn (by its creator, or by any host once the creator is
	// gone: a deleted copy of a creation, under this host's key, deletes
	// it everywhere), it reads as deleted, also on hosts of an older
	// release; a failed write is tried again at the next refresh.
	if err := g.withdrawLocked(g.nets[name], name, c); err != nil && first {
		g.cfg.Logger.Error("ipam: withdrawing a subnet claim no host can serve", "network", name, "error", err)
	}
}

// earlier orders creations: by the creator's clock, then by name.
func earlier(a, b subnetClaim) bool {
	if a.Created != b.Created {
		return a.Created < b.Created
	}
	return a.Creator < b.Creator
}

// newNetLocked sets up a network first seen in the table, with this
// host's saved leases of it.
func (g *Global) newNetLocked(name string, c subnetClaim) *gnet {
	pool, err := NewPool(name, PoolConfig{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway, AuxAddresses: c.Aux})
	if err != nil { // claimErr let it through
		g.cfg.Logger.Warn("ipam: ignoring a network whose claim does not parse", "network", name, "node", c.Creator, "error", err)
		return nil
	}
	hostBits := min(pool.Range.Addr().BitLen()-pool.Range.Bits(), MaxRangeBits)
	n := &gnet{name: name, claim: c, pool: pool, blockBits: c.BlockBits, nblocks: uint64(1) << (hostBits - c.BlockBits),
		held: map[uint64]*heldBlock{}, count: map[uint64]int{}, written: map[string]string{}, reqSeen: map[string]reqSeen{}}
	if st, ok, err := g.cfg.Store.Load(name); err != nil {
		g.cfg.Logger.Error("ipam: loading saved leases", "network", name, "error", err)
	} else if ok {
		for _, a := range st.Allocated {
			if err := pool.AllocateStatic(a); err != nil {
				g.cfg.Logger.Warn("ipam: a saved lease no longer fits its network", "network", name, "error", err)
				continue
			}
			if off, ok := pool.alloc.offset(a); ok {
				n.count[blockOf(off, n.blockBits)]++
			}
		}
	}
	g.nets[name] = n
	return n
}

// dropLocked forgets a network that was deleted or moved: this host's
// rows of it go, and its leases are reported lost.
func (g *Global) dropLocked(n *gnet, deleted bool) {
	if st := n.pool.State(); len(st.Allocated) > 0 {
		g.lost = append(g.lost, lostLeases{n.name, st.Allocated})
	}
	for key := range n.written {
		if !strings.HasPrefix(key, keySubnet) { // a claim goes only by a deleted claim
			g.cfg.Table.Delete(key)
		}
	}
	// And those written before this process started (n.written knows
	// only its own writes): after a restart they would outlive the
	// network.
	for _, prefix := range []string{keyBlock, keyHost, keyClaim} {
		for _, r := range g.cfg.Table.List(prefix + n.name + "/") {
			if _, done := n.written[r.Key]; !done && r.Writer == g.self {
				g.cfg.Table.Delete(r.Key)
			}
		}
	}
	// Its leases are reported lost: none of them may come back.
	g.cfg.Store.Save(n.name, State{})
	delete(g.nets, n.name)
}

// deleteNetworkLocked withdraws this host's creation n: a deleted claim,
// which beats the copies mirrors hold.
func (g *Global) deleteNetworkLocked(n *gnet) {
	if err := g.withdrawLocked(nil, n.name, n.claim); err != nil {
		g.cfg.Logger.Error("ipam: withdrawing a network", "network", n.name, "error", err)
	}
	g.dropLocked(n, true)
}

// conflictsLocked marks every network whose subnet overlaps one claimed
// earlier; an automatic subnet of this host's moves.
func (g *Global) conflictsLocked() {
	names := sortedKeys(g.nets)
	sort.SliceStable(names, func(i, j int) bool { return earlier(g.nets[names[i]].claim, g.nets[names[j]].claim) })
	var kept []*gnet
	for _, name := range names {
		n := g.nets[name]
		n.conflict = ""
		for _, k := range kept {
			if k.pool.Subnet.Overlaps(n.pool.Subnet) {
				n.conflict = k.name
				break
			}
		}
		if n.conflict == "" {
			kept = append(kept, n)
			continue
		}
		if n.claim.Creator != g.self || !n.claim.Auto {
			continue
		}
		if g.cfg.Avoid != nil && !g.avoidFresh {
			g.wantAvoid = true // moved by the next Refresh, which asks Avoid first
			continue
		}
		p, err := g.pickSubnetLocked(n.name)
		if err != nil {
			g.cfg.Logger.Error("ipam: an automatic subnet lost to an earlier claim and no other is free", "network", n.name, "error", err)
			continue
		}
		g.cfg.Logger.Info("ipam: an automatic subnet lost to an earlier claim; moving", "network", n.name, "subnet", p.String(), "winner", n.conflict)
		c := n.claim
		c.Rev++
		c.Subnet, c.Gateway = p.String(), p.Addr().Next().String()
		g.putLocked(n, subnetKey(n.name, g.self, c.Created), c)
	}
}

// blockRow is the value of a block row: a grant, for a subnet (rows of
// a subnet the network moved away from do not count).
type blockRow struct {
	blockGrant
	Subnet string `json:"subnet"`
}

// grantRow is the winning statement about one block.
type grantRow struct {
	blockGrant
	writer string
}

// blockRowsLocked returns the block rows of n that apply to its current
// subnet: per block, the latest grant.
func (g *Global) blockRowsLocked(n *gnet, seen map[string]bool) map[uint64]grantRow {
	out := map[uint64]grantRow{}
	prefix := keyBlock + n.name + "/"
	for _, r := range g.cfg.Table.List(prefix) {
		idxs, _, ok := strings.Cut(strings.TrimPrefix(r.Key, prefix), "/")
		idx, err := strconv.ParseUint(idxs, 10, 64)
		if !ok || err != nil || idx >= n.nblocks {
			continue
		}
		b, err := decodeCachedLocked[blockRow](g, r)
		if err != nil || b.Holder == "" || b.Subnet != n.claim.Subnet {
			continue
		}
		if seen != nil {
			seen[r.Writer], seen[b.Holder] = true, true
		}
		if old, ok := out[idx]; !ok || b.after(old.blockGrant) {
			out[idx] = grantRow{b.blockGrant, r.Writer}
		}
	}
	return out
}

// holderLocked returns who holds block idx: the winning grant's holder,
// or the network's creator for a block never handed out.
func (g *Global) holderLocked(n *gnet, idx uint64) (blockGrant, bool) {
	rows := g.blockRowsLocked(n, nil)
	if r, ok := rows[idx]; ok {
		return r.blockGrant, true
	}
	return blockGrant{Holder: n.claim.Creator}, false
}

// writeGrantLocked records that block idx now belongs to b.Holder.
func (g *Global) writeGrantLocked(n *gnet, idx uint64, b blockGrant) bool {
	v := blockRow{b, n.claim.Subnet}
	return g.putLocked(n, blockKey(n.name, idx, g.self), v) == nil
}

// goneForGoodLocked reports whether host has been out of the cluster for
// InheritAfter, or is out of it and forgotten: its blocks pass to their
// heirs.
func (g *Global) goneForGoodLocked(host string, now time.Time) bool {
	since, absent := g.absent[host]
	return absent && (now.Sub(since) >= g.cfg.InheritAfter || (g.cfg.Forgotten != nil && g.cfg.Forgotten(host)))
}

// netRefresh is what the phases of one network's refresh share.
type netRefresh struct {
	n    *gnet
	now  time.Time
	live map[string]bool
	// rows is, per block, the winning grant; the grants this refresh
	// writes are added as it goes.
	rows map[uint64]grantRow
	// heldBy counts the blocks of each holder.
	heldBy map[string]int
	// implicit counts the blocks never granted: the creator's, untouched.
	implicit uint64
	// creator says this host created the network, so the implicit blocks
	// are its to give.
	creator bool
	// giveable are this host's blocks it can grant, spare how many blocks
	// it can give away in all (giveable, and implicit ones if creator).
	giveable []uint64
	spare    int
	// kept is the empty block this host keeps for itself, if any: it goes
	// only to a host that holds no block at all, as a last resort.
	kept []uint64
}

// refreshNetLocked runs the block protocol for one network: it accepts
// the grants to this host, inherits from hosts gone for good, counts what
// it could give, answers other hosts' requests and states its own need.
func (g *Global) refreshNetLocked(n *gnet, now time.Time, live, seen map[string]bool) {
	if g.claims != nil {
		g.refreshByClaimsLocked(n, now, live, seen)
		return
	}
	r := &netRefresh{n: n, now: now, live: live, rows: g.blockRowsLocked(n, seen), heldBy: map[string]int{}}
	r.implicit = n.nblocks - uint64(len(r.rows))
	r.creator = n.claim.Creator == g.self
	g.acceptGrantsLocked(r)
	states := g.hostStatesLocked(n, seen)
	g.inheritLocked(r, states)
	g.countSpareLocked(r)
	// This host's own need first: a creator takes its first block before
	// it answers anyone, so the lowest block (where the gateway and the
	// usual static addresses lie) stays with the host that created the
	// network even when another host asked before its first refresh.
	want := g.ownNeedLocked(r)
	g.answerRequestsLocked(r, states)
	g.requestBlocksLocked(r, want)
}

// acceptGrantsLocked takes the grants to this host (its own row now says
// so) and lets go of the blocks it lost.
func (g *Global) acceptGrantsLocked(r *netRefresh) {
	n := r.n
	for _, idx := range sortedKeys(r.rows) {
		row := r.rows[idx]
		r.heldBy[row.Holder]++
		if row.Holder == g.self {
			if _, ok := n.held[idx]; !ok {
				n.held[idx] = &heldBlock{}
			}
			n.held[idx].grant = row.blockGrant
			g.writeGrantLocked(n, idx, row.blockGrant)
		} else {
			delete(n.held, idx)
		}
		if row.Holder != g.self && n.count[idx] > 0 {
			g.loseBlockLocked(n, idx)
		}
	}
}

// inheritLocked passes the blocks of hosts gone for good to their heirs:
// this host takes those it is the heir of, granted ones and, when the
// creator is gone, untouched ones as the live hosts need them (as many as
// they want beyond what they hold; not every one of them, which on an
// IPv6 range would be a row for each of up to 2^18 blocks).
func (g *Global) inheritLocked(r *netRefresh, states map[string]hostState) {
	n, now := r.n, r.now
	members := sortedKeys(r.live)
	take := func(idx uint64) bool {
		b := blockGrant{Holder: g.self, Era: now.UnixNano(), Gen: 1}
		if heir(n.name, idx, members) != g.self || !g.writeGrantLocked(n, idx, b) {
			return false
		}
		n.held[idx] = &heldBlock{grant: b, usableAt: now.Add(g.cfg.Settle)}
		return true
	}
	for _, idx := range sortedKeys(r.rows) {
		row := r.rows[idx]
		if row.Holder != g.self && g.goneForGoodLocked(row.Holder, now) && take(idx) {
			g.cfg.Logger.Info("ipam: inheriting a block of a host gone for good", "network", n.name, "block", idx, "node", row.Holder)
		}
	}
	if r.implicit == 0 || r.creator || !g.goneForGoodLocked(n.claim.Creator, now) {
		return
	}
	need := max(0, g.wantLocked(n, now, len(r.live))-len(n.held))
	for host, st := range states {
		if host != g.self && r.live[host] {
			need += max(0, st.Want-r.heldBy[host])
		}
	}
	empty := 0
	for idx := range n.held {
		if n.count[idx] == 0 {
			empty++
		}
	}
	need -= max(0, empty-1) // this host's empty blocks (but the one it keeps) answer first
	taken, looked := 0, 0
	for idx := uint64(0); idx < n.nblocks && taken < need && looked < maxInheritPerRefresh*len(members); idx++ {
		if _, ok := r.rows[idx]; !ok {
			looked++
			if take(idx) {
				taken++
				r.rows[idx] = grantRow{n.held[idx].grant, g.self}
				r.heldBy[g.self]++
				r.implicit--
			}
		}
	}
}

// countSpareLocked counts what this host could give away: its empty
// usable blocks but one, and the untouched blocks if it is the creator.
func (g *Global) countSpareLocked(r *netRefresh) {
	n := r.n
	var empty []uint64
	for _, idx := range sortedKeys(n.held) {
		if n.count[idx] == 0 && !r.now.Before(n.held[idx].usableAt) {
			empty = append(empty, idx)
		}
	}
	if len(empty) > 0 {
		r.kept, r.giveable = empty[:1], empty[1:]
	}
	r.spare = len(r.giveable)
	if r.creator {
		r.spare += int(min(r.implicit, 1<<30))
	}
}

// answerRequestsLocked grants blocks to the live hosts that want more
// than they hold, staggered by this host's rank among the hosts with
// something to give, so that one request is not answered by all.
func (g *Global) answerRequestsLocked(r *netRefresh, states map[string]hostState) {
	n, now := r.n, r.now
	for _, host := range sortedKeys(states) {
		st := states[host]
		if host == g.self || !r.live[host] || st.Want <= r.heldBy[host] {
			delete(n.reqSeen, host)
			continue
		}
		rs, ok := n.reqSeen[host]
		if !ok || rs.seq != st.Seq {
			rs = reqSeen{st.Seq, now}
			n.reqSeen[host] = rs
		}
		if r.spare == 0 && r.heldBy[host] == 0 && st.Waiting && len(r.kept) > 0 && !othersSpare(states, host, g.self, r.live) &&
			now.Sub(rs.at) >= time.Duration(len(r.live)+1)*g.cfg.ServeDelay {
			// A host with no block at all, and no one with a block to
			// spare: it gets the block this host kept, once every other
			// server has had its turn (a small range: all its blocks held).
			r.giveable, r.kept = r.kept, nil
			r.spare = 1
			g.cfg.Logger.Debug("ipam: giving the empty block kept to a host that holds none", "network", n.name, "node", host)
		}
		if r.spare == 0 {
			continue
		}
		if now.Sub(rs.at) < time.Duration(g.serverRankLocked(n, host, st.Seq, states, r.live))*g.cfg.ServeDelay {
			continue
		}
		for st.Want > r.heldBy[host] && r.spare > 0 {
			if !g.grantLocked(r, host) {
				break
			}
		}
	}
}

// waitingLocked: an Allocate waits on this host and its blocks have no
// free address.
func (n *gnet) waitingLocked(now time.Time) bool {
	free, _ := n.freeInHeldLocked(now)
	return n.waiters > 0 && free == 0
}

// othersSpare: a live host other than requester and self says it has
// blocks to spare.
func othersSpare(states map[string]hostState, requester, self string, live map[string]bool) bool {
	for h, s := range states {
		if h != requester && h != self && live[h] && s.Spare > 0 {
			return true
		}
	}
	return false
}

// hostStatesLocked reads the hosts' rows of n, each written by its host.
func (g *Global) hostStatesLocked(n *gnet, seen map[string]bool) map[string]hostState {
	states := map[string]hostState{}
	prefix := keyHost + n.name + "/"
	for _, row := range g.cfg.Table.List(prefix) {
		host := strings.TrimPrefix(row.Key, prefix)
		st, err := decodeCachedLocked[hostState](g, row)
		if host != row.Writer || err != nil {
			continue
		}
		seen[host] = true
		states[host] = st
	}
	return states
}

// grantLocked grants host one block: a giveable one, else an untouched
// one if this host is the creator. It reports whether it did.
func (g *Global) grantLocked(r *netRefresh, host string) bool {
	n := r.n
	var idx uint64
	var b blockGrant
	switch {
	case len(r.giveable) > 0:
		idx, r.giveable = r.giveable[0], r.giveable[1:]
		b = n.held[idx].grant
		b.Gen++
		delete(n.held, idx)
	case r.creator && r.implicit > 0:
		idx = firstImplicit(r.rows, n.nblocks)
		b.Gen = 1
		r.implicit--
	default:
		return false
	}
	b.Holder = host
	if !g.writeGrantLocked(n, idx, b) {
		return false
	}
	r.rows[idx] = grantRow{b, g.self}
	r.heldBy[host]++
	r.spare--
	g.cfg.Logger.Debug("ipam: granted a block", "network", n.name, "block", idx, "node", host)
	return true
}

// ownNeedLocked works out how many blocks this host wants: a block more
// when full (or 3/4 full, early), taken at once from the untouched ones
// if it is the creator.
func (g *Global) ownNeedLocked(r *netRefresh) int {
	n := r.n
	want := g.wantLocked(n, r.now, len(r.live))
	if want > len(n.held) && r.creator && r.implicit > 0 {
		idx := firstImplicit(r.rows, n.nblocks)
		b := blockGrant{Holder: g.self, Gen: 1}
		if g.writeGrantLocked(n, idx, b) {
			r.rows[idx] = grantRow{b, g.self}
			n.held[idx] = &heldBlock{grant: b}
			r.heldBy[g.self]++
			r.implicit--
			r.spare--
		}
	}
	return want
}

// requestBlocksLocked states this host's need (want blocks) and what it
// has to spare in its host row.
func (g *Global) requestBlocksLocked(r *netRefresh, want int) {
	n := r.n
	hs := hostState{Want: want, Seq: n.hostRow.Seq, Spare: max(r.spare, 0), Waiting: n.waitingLocked(r.now)}
	if want > len(n.held) && want > n.hostRow.Want {
		hs.Seq++
	}
	if hs != n.hostRow {
		if g.putLocked(n, hostKey(n.name, g.self), hs) == nil {
			n.hostRow = hs
		}
	}
}

// loseBlockLocked drops this host's leases in a block another host now
// holds (it was absent longer than InheritAfter) and reports them.
func (g *Global) loseBlockLocked(n *gnet, idx uint64) {
	lo := idx << n.blockBits
	var lost []netip.Addr
	for off := lo; off < lo+1<<n.blockBits && off < n.pool.alloc.size; off++ {
		if a := n.pool.alloc.addr(off); n.pool.alloc.isSet(off) && n.pool.InUse(a) {
			n.pool.Release(a)
			lost = append(lost, a)
		}
	}
	delete(n.count, idx)
	if len(lost) > 0 {
		g.cfg.Logger.Warn("ipam: a block passed to another host while this one was away; its leases are lost", "network", n.name, "block", idx, "count", len(lost))
		g.lost = append(g.lost, lostLeases{n.name, lost})
		g.saveLocked(n)
	}
}

func firstImplicit(rows map[uint64]grantRow, nblocks uint64) uint64 {
	for idx := uint64(0); idx < nblocks; idx++ {
		if _, ok := rows[idx]; !ok {
			return idx
		}
	}
	return nblocks // unreachable while implicit > 0
}

// heir is the live member ranked first for a block: every host computes
// the same one from the same membership.
func heir(network string, idx uint64, members []string) string {
	var best string
	var bestRank uint64
	s := strconv.FormatUint(idx, 10)
	for _, m := range members {
		if r := rank(network, s, m); best == "" || r > bestRank {
			best, bestRank = m, r
		}
	}
	return best
}

// serverRankLocked is this host's place among the live hosts that could answer
// host's request: the creator first while it has untouched blocks, then
// the others in an order that depends on the request, so the load
// spreads. Only this host is assumed to have something to give.
func (g *Global) serverRankLocked(n *gnet, host string, seq uint64, states map[string]hostState, live map[string]bool) int {
	if n.claim.Creator == g.self {
		return 0
	}
	var servers []string
	for h, s := range states {
		if h != g.self && h != host && live[h] && s.Spare > 0 {
			servers = append(servers, h)
		}
	}
	servers = append(servers, g.self)
	seqs := strconv.FormatUint(seq, 10)
	creator := n.claim.Creator
	sort.Slice(servers, func(i, j int) bool {
		if (servers[i] == creator) != (servers[j] == creator) {
			return servers[i] == creator
		}
		return rank(n.name, host, seqs, servers[i]) < rank(n.name, host, seqs, servers[j])
	})
	for i, s := range servers {
		if s == g.self {
			return i
		}
	}
	return len(servers)
}
