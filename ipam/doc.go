// Package ipam hands out subnets and addresses: on one host alone (the
// local scope) and across a cluster with no central writer (the global
// scope).
//
// # Local scope
//
//   - Pool: a network's subnet, optional --ip-range, --gateway and
//     --aux-address reservations, parsed with errors that name the network,
//     the field and the value. A bitmap allocator over the range hands out
//     addresses next-fit (the address after the last one given, wrapping),
//     so a released address is not reused at once; network and broadcast
//     addresses (IPv4), the IPv6 subnet-router anycast address, the gateway
//     and aux addresses are never handed out. IPv4 and IPv6 (dual stack: one
//     Pool per family). Static requests (--ip) may lie outside --ip-range.
//   - State and Store: a pool's allocations and cursor, saved through a
//     Store the agent backs with its file store and restored into a new
//     pool after a restart, so no address still in use is handed out again.
//     A Store that is also a LeaseLog records one change at a time.
//   - SubnetPool: default address pools like Docker's (10.0.0.0/8 carved
//     into /24 subnets, base and size configurable); user subnets are
//     reserved and never overlap another network's.
//
// # Global scope
//
// Global works over a Table: rows every host sees, each written only by
// its own host (kvs satisfies it through ipam/kvstable). Block and wish
// rows of a host that is not live may be out of sight, as kvs hides a
// failed host's rows; subnet claims never are: they are the cluster's (a
// kvs cluster table), so a network outlives its creator's death, absence
// or lost state. Three kinds of rows, keyed kind/network/...:
//
//   - subnet/NET/WRITER/CREATED: a network's claim {creator, created, rev,
//     subnet, range, gateway, aux, block size, auto}. The creator writes it;
//     a deletion is a claim marked deleted, by any host, and final.
//   - block/NET/INDEX/WRITER: who holds one block of the network's range
//     {holder, era, gen}. Written by the holder's granter, by the holder
//     accepting it, or by an heir.
//   - host/NET/HOST: a host's wish {want: blocks it wants to hold, seq,
//     spare: blocks it could give away}.
//
// Dual stack. A network with an IPv6 subnet beside its IPv4 one is two
// networks here: NAME (IPv4) and NAME+V6Suffix ("NAME#6", IPv6; no
// network name holds '#'). The IPv6 side is created with CreateNetworkAt
// and the IPv4 side's creation time, so that of two creations of the name
// the same one wins both claims; its caller (the agent) routes each
// address to its side and withdraws a losing creation's IPv6 side with it.
//
// One name, one network. Of two creations of one name (made on both sides
// of a partition, or at the same moment), the earlier (created, creator)
// wins on every host; the loser's creator withdraws its claim as soon as it
// sees the winner, and its hosts report their leases of the loser lost, so
// the agent readdresses those endpoints into the winner. DeleteNetwork,
// from any host, deletes every creation of the name in sight, so a loser
// never takes the winner's place.
//
// Subnets. A host creating a network claims its subnet (the user's, or
// the next default-pool subnet no visible claim overlaps, nor any network
// GlobalConfig.Avoid names (the host's LANs and routes, the hosts'
// underlay addresses), starting at a place that depends on the name and host so
// concurrent creations rarely collide), then waits Settle and checks
// again. Of two overlapping claims
// the earlier (created, creator) wins everywhere; an automatic subnet that
// loses moves to a free one (its hosts drop their leases of it and report
// them through OnLost so the agent readdresses those endpoints); a user
// subnet that loses is refused at creation, or, if the overlap appears only
// when a partition heals, its network hands out no address until it is
// removed. Inside one connected cluster a creation returns only once it has
// settled, so no overlapping subnet is ever used.
//
// Blocks. A network's range is cut into blocks (block-size option; by
// default 64 blocks where the range allows, of at most 64 addresses: a /24
// in blocks of 4, a /20 or larger in /26s).
// Ownership moves and is never contended: every block starts with the
// network's creator, and only a block's holder hands it on, by writing a
// grant to the new holder, who accepts it with a row of its own. A host
// hands out addresses only from blocks it holds, so two hosts can never
// both hand out from one block, across a partition too: the holder is on
// one side of it. A host asks for a block (want > held) when its blocks
// are full, and early when they are 3/4 full. Where the range has at least
// four blocks per live host, every host asks for one block as soon as it
// sees the network, so that a host later cut off from the creator and the
// hosts with spare blocks still hands out addresses of its own. The creator answers first
// while it has untouched blocks; otherwise the live hosts with spare
// (empty) blocks answer, staggered by rank: the host ranked k answers only
// if the request is still open after k×ServeDelay. A host keeps one empty
// block for itself, but for a host that holds no block at all and has an
// address asked for (its host row says waiting; not one fetching a block
// ahead) while no one has one to spare (a small range, every block held):
// that host gets it once every other could have answered ((live hosts +
// 1)×ServeDelay). Of several grants of one block, the one with the
// greatest (era, gen, holder) wins.
//
// Hosts gone for good. A host absent (not a live member) for InheritAfter
// (default 24 h, kvs's ReapAfter) is gone for good. Its blocks pass to the
// live member ranked first by hash(network, block, member): every host
// computes the same heir with no human step. The untouched blocks of a
// gone creator pass the same way, as the live hosts need them (no more
// than they want beyond what they hold: an IPv6 range has up to 2^18). The heir writes a grant in a new era (its clock), which
// beats every grant it could not see; it uses the block only after Settle,
// so a competing heir's claim arrives first. A host that comes back later
// finds its blocks held by others and reports its leases in them lost.
//
// What this does not promise: a partition longer than InheritAfter is
// taken for a death, and both sides may then use the same blocks; while a
// network's creator and every host with spare blocks are out of reach, a
// host that fills its blocks waits; static addresses (--ip) of a global
// network must lie in a block the host holds (or, on the creator, in an
// untouched one).
//
// # Blocks by claims (a store that takes them: etcd)
//
// When the Table is a Claimer whose store takes atomic claims (the agent's
// etcd store), blocks are not granted: a host takes a free block with one
// compare-and-swap on claim/NET/INDEX (written only if no host holds it),
// and the store decides every race, so no two hosts ever hold one block,
// whatever the partitions between hosts. There are no requests, grants or
// spares to count; the lowest free block is taken (hosts other than a live
// creator leave it block 0, where the gateway and the usual static
// addresses lie, until no other is free). A static address takes its
// block if it is free, on any host. A claim outlives its holder: a host
// that dies keeps its blocks (its containers' addresses are still its)
// until it is gone for good, when the block's heir takes it over with a
// compare-and-swap against the claim it read, usable at once. When no
// block is free and a host wants one (its host row says so), hosts give
// back their empty blocks but one, and that one too to a host that holds
// none and has an address waiting. Subnet claims work as above in both
// modes: etcd makes every write visible in order, so the Settle wait is
// short and decides the same way.
//
// The difference in what the two modes promise: with gossip, a host holds
// a block because its holder said so, and the promise holds inside one
// connected side of a partition; with claims, because the store said so,
// and it holds across any partition of the hosts, as long as the store
// (an etcd quorum) is reachable: a host that cannot reach it takes no new
// block (its addresses come from the blocks it holds). A holder is gone
// for good only when it has been out of the gossip membership for
// InheritAfter and its host row of the network (on its etcd lease) is
// gone too: a host cut off from the other hosts but not from the store
// keeps its blocks; one cut off from both for longer than InheritAfter
// loses them to heirs, exactly as with gossip.
package ipam
