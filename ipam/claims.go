package ipam

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Blocks by claims, over a store that takes a claim atomically (a
// Claimer: etcd). A block is held by whoever claimed it: a host takes a
// free block with one compare-and-swap, and keeps it until it gives it
// back (an empty spare, when another host needs one and none is free) or
// until it is gone for good (absent for InheritAfter), when the block's
// heir takes it over with another compare-and-swap against the claim it
// read. Two hosts can never hold one block: the store decides every
// claim, and a host hands out addresses only from blocks whose claim it
// holds.

// claimed is one block's claim as read.
type claimed struct {
	holder  string
	version uint64
	stale   bool // for a subnet the network moved away from: anyone's to take over
}

// claimRowsLocked reads n's block claims, per block.
func (g *Global) claimRowsLocked(n *gnet, seen map[string]bool) map[uint64]claimed {
	out := map[uint64]claimed{}
	prefix := keyClaim + n.name + "/"
	for _, r := range g.cfg.Table.List(prefix) {
		idx, err := strconv.ParseUint(strings.TrimPrefix(r.Key, prefix), 10, 64)
		if err != nil || idx >= n.nblocks {
			continue
		}
		b, err := decodeCachedLocked[blockRow](g, r)
		if err != nil || b.Holder != r.Writer {
			// Not a claim this version wrote: out of use, but its key is
			// taken, so it is taken over like a stale one.
			out[idx] = claimed{holder: r.Writer, version: r.Version, stale: true}
			continue
		}
		if seen != nil {
			seen[r.Writer] = true
		}
		out[idx] = claimed{holder: r.Writer, version: r.Version, stale: b.Subnet != n.claim.Subnet}
	}
	return out
}

// takeLocked claims block idx for this host: a free one (from ""), or
// from a holder at the version read. It reports whether it won; an error
// is the store's (it could not say), recorded for Allocate to return.
func (g *Global) takeLocked(n *gnet, idx uint64, from string, version uint64) (bool, error) {
	if g.storeErr != nil {
		n.claimErr = g.storeErr
		return false, g.storeErr
	}
	key := claimKey(n.name, idx)
	b := blockGrant{Holder: g.self, Gen: 1}
	v := mustJSON(blockRow{b, n.claim.Subnet})
	ok, err := g.claims.Claim(key, v, from, version)
	if err != nil {
		n.claimErr = fmt.Errorf("ipam: network %q: claiming block %d: %w", n.name, idx, err)
		g.storeErr = n.claimErr
		return false, err
	}
	if !ok {
		return false, nil
	}
	n.written[key] = string(v)
	if n.held[idx] == nil {
		n.held[idx] = &heldBlock{grant: b}
	}
	return true, nil
}

// freeBlockLocked is a block no live claim holds (a stale claim counts
// as free). The creator looks from block 0 up, so it holds the block
// where the gateway and the usual static addresses lie; the other hosts
// from a place of their own (hash of network and host), so that hosts
// claiming at once rarely race for one block, and leave block 0 to a
// live creator unless no other block is free.
func (g *Global) freeBlockLocked(n *gnet, rows map[uint64]claimed, live map[string]bool) (uint64, bool) {
	free := func(idx uint64) bool {
		r, ok := rows[idx]
		return (!ok || r.stale) && n.held[idx] == nil
	}
	start, spare0 := uint64(0), false
	if n.claim.Creator != g.self {
		start = rank(n.name, g.self) % n.nblocks
		spare0 = live[n.claim.Creator]
	}
	// At most len(rows)+len(held)+2 blocks are looked at before a free
	// one: the range may be an IPv6 one of millions of blocks.
	for i, tries := start, uint64(len(rows)+len(n.held)+2); tries > 0; i, tries = (i+1)%n.nblocks, tries-1 {
		if (i != 0 || !spare0) && free(i) {
			return i, true
		}
	}
	// The last free block is block 0: taken rather than none.
	return 0, spare0 && free(0)
}

// refreshByClaimsLocked runs the claims for one network: what this host
// holds, leases it kept in blocks it no longer holds, inheritance, its
// own need, and spares given back.
func (g *Global) refreshByClaimsLocked(n *gnet, now time.Time, live, seen map[string]bool) {
	n.claimErr = nil
	rows := g.claimRowsLocked(n, seen)
	for _, idx := range sortedKeys(n.held) {
		r, ok := rows[idx]
		switch {
		case ok && r.holder == g.self && !r.stale:
		case !ok:
			// Its claim is out of sight: gone (taken again if it can be),
			// or not in this host's copy yet (the next refresh decides).
			if won, _ := g.takeLocked(n, idx, "", 0); won {
				rows[idx] = claimed{holder: g.self}
			}
		default:
			delete(n.held, idx)
			if n.count[idx] > 0 {
				g.loseBlockLocked(n, idx)
			}
		}
	}
	for idx, r := range rows {
		if r.holder == g.self && !r.stale && n.held[idx] == nil {
			n.held[idx] = &heldBlock{grant: blockGrant{Holder: g.self, Gen: 1}}
		}
	}
	// Leases this host kept (its state file) in blocks it does not hold:
	// the block is taken back if it is free, else the leases are lost.
	for _, idx := range sortedKeys(n.count) {
		if n.count[idx] <= 0 || n.held[idx] != nil {
			continue
		}
		r, ok := rows[idx]
		if ok && !r.stale && r.holder != g.self {
			g.loseBlockLocked(n, idx)
			continue
		}
		// Free, or stale: taken back; on the store's error, tried again
		// at the next refresh (the leases stay).
		if won, _ := g.takeLocked(n, idx, r.holder, r.version); won {
			rows[idx] = claimed{holder: g.self}
		}
	}
	// Blocks of hosts gone for good pass to their heirs. Gone for good
	// means absent from gossip for InheritAfter and without a host row
	// of the network in the store (host rows are on their host's lease:
	// a host that still reaches the store keeps its blocks whatever the
	// gossip partitions).
	states := g.hostStatesLocked(n, seen)
	members := sortedKeys(live)
	for _, idx := range sortedKeys(rows) {
		r := rows[idx]
		if _, inStore := states[r.holder]; inStore || r.holder == g.self || r.stale || !g.goneForGoodLocked(r.holder, now) || heir(n.name, idx, members) != g.self {
			continue
		}
		if won, _ := g.takeLocked(n, idx, r.holder, r.version); won {
			g.cfg.Logger.Info("ipam: inheriting a block of a host gone for good", "network", n.name, "block", idx, "node", r.holder)
			rows[idx] = claimed{holder: g.self}
		}
	}
	// This host's need: the lowest free blocks, claimed one by one (a
	// race lost to another host moves on to the next).
	want := g.wantLocked(n, now, len(live))
	for tries := 0; want > len(n.held) && tries < 16; tries++ {
		idx, ok := g.freeBlockLocked(n, rows, live)
		if !ok {
			break
		}
		r := rows[idx]
		won, err := g.takeLocked(n, idx, r.holder, r.version)
		if err != nil {
			break // the store cannot say now: no more tries this refresh
		}
		if won {
			rows[idx] = claimed{holder: g.self}
		} else {
			rows[idx] = claimed{holder: "(another host)"}
		}
	}
	// With no block free, a host that wants one says so in its host row,
	// and hosts with empty blocks give back all but one.
	_, anyFree := g.freeBlockLocked(n, rows, live)
	hs := hostState{Want: want, Seq: n.hostRow.Seq, Waiting: n.waitingLocked(now)}
	if hs != n.hostRow && g.storeErr == nil {
		if err := g.putLocked(n, hostKey(n.name, g.self), hs); err != nil {
			g.storeErr = err
		} else {
			n.hostRow = hs
		}
	}
	if !anyFree && g.storeErr == nil {
		g.giveBackSparesLocked(n, rows, live, seen)
	}
}

// giveBackSparesLocked gives back this host's empty blocks but one when
// another live host wants more blocks than it holds, and the last one too
// when that host holds none at all (a small range: every block held).
func (g *Global) giveBackSparesLocked(n *gnet, rows map[uint64]claimed, live, seen map[string]bool) {
	heldBy := map[string]int{}
	for _, r := range rows {
		heldBy[r.holder]++
	}
	wanting, starving := false, false
	for host, st := range g.hostStatesLocked(n, seen) {
		if host != g.self && live[host] && st.Want > heldBy[host] {
			wanting, starving = true, starving || heldBy[host] == 0 && st.Waiting
		}
	}
	if !wanting {
		return
	}
	kept := starving // nothing kept back from a host that holds no block
	for _, idx := range sortedKeys(n.held) {
		if n.count[idx] > 0 {
			continue
		}
		if !kept {
			kept = true
			continue
		}
		r, ok := rows[idx]
		if !ok || r.holder != g.self {
			continue
		}
		if done, err := g.claims.Unclaim(claimKey(n.name, idx), r.version); err != nil || !done {
			continue
		}
		delete(n.held, idx)
		delete(n.written, claimKey(n.name, idx))
		g.cfg.Logger.Debug("ipam: gave back an empty block another host needs", "network", n.name, "block", idx)
	}
}

// wantLocked is how many blocks this host wants: a block more when full
// (or 3/4 full, early), and a first one before any address is asked for
// where the range has room for every host's.
func (g *Global) wantLocked(n *gnet, now time.Time, liveHosts int) int {
	if n.claim.OneHost && n.claim.Creator != g.self && n.waiters == 0 {
		// No endpoint of it can be here: no block before one is asked
		// for (a service's VIP, leased by the host that made it).
		return len(n.held)
	}
	free, total := n.freeInHeldLocked(now)
	want := len(n.held)
	if (n.waiters > 0 && free == 0) || (total > 0 && free*4 < total) {
		want++
	}
	if want == 0 && n.nblocks >= prefetchPerHost*uint64(liveHosts) {
		// A block before the first address is asked for, where the range
		// has room for every host's: a host later cut off from the hosts
		// that could grant one still hands out addresses.
		want = 1
	}
	return want
}

// claimStaticLocked, for AllocateStatic of a, takes block idx if no live
// claim holds it.
func (g *Global) claimStaticLocked(n *gnet, a netip.Addr, idx uint64) error {
	r, ok := g.claimRowsLocked(n, nil)[idx]
	if ok && !r.stale && r.holder != g.self {
		return otherHostErr(n.name, a, blockPrefix(n.pool.Range, idx, n.blockBits), r.holder)
	}
	won, err := g.takeLocked(n, idx, r.holder, r.version)
	if err != nil {
		return n.claimErr // the store's error, as it said it
	}
	if !won {
		return &Error{Network: n.name, Field: "address", Value: a.String(), Err: ErrInUse,
			Detail: fmt.Sprintf("its block %v was just claimed by another host", blockPrefix(n.pool.Range, idx, n.blockBits))}
	}
	return nil
}

// ClaimsFromGrants turns the block grants of the gossip protocol (block
// rows, any writer's) into block claims, one per block for the winning
// grant's holder: what a cluster moving its tables to a store that takes
// claims (etcd) writes, so that every block stays with the host that held
// it. Grants for a subnet no live claim among rows names (the network
// moved) are left out, as are rows that are not grants.
func ClaimsFromGrants(rows []Row) []Row {
	type key struct {
		network string
		idx     uint64
	}
	subnets := map[string]map[string]bool{} // network → subnets of its live claims
	for _, r := range rows {
		network, _, ok := splitKey(r.Key, keySubnet)
		var c subnetClaim
		if !ok || decodeValue(r, &c) != nil || c.Deleted {
			continue
		}
		if subnets[network] == nil {
			subnets[network] = map[string]bool{}
		}
		subnets[network][c.Subnet] = true
	}
	best := map[key]blockRow{}
	for _, r := range rows {
		network, rest, ok := splitKey(r.Key, keyBlock)
		if !ok {
			continue
		}
		idxs, _, _ := strings.Cut(rest, "/")
		idx, err := strconv.ParseUint(idxs, 10, 64)
		if err != nil {
			continue
		}
		var b blockRow
		if decodeValue(r, &b) != nil || b.Holder == "" || (subnets[network] != nil && !subnets[network][b.Subnet]) {
			continue
		}
		k := key{network, idx}
		if old, ok := best[k]; !ok || b.after(old.blockGrant) {
			best[k] = b
		}
	}
	out := make([]Row, 0, len(best))
	for k, b := range best {
		v := blockRow{blockGrant{Holder: b.Holder, Gen: 1}, b.Subnet}
		out = append(out, Row{Key: claimKey(k.network, k.idx), Value: mustJSON(v), Writer: b.Holder})
	}
	return out
}
