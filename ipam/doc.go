// Package ipam hands out addresses and subnets.
//
// This first part is what one host decides alone (the local scope):
//
//   - Pool: a network's subnet, optional --ip-range, --gateway and
//     --aux-address reservations, parsed with errors that name the network,
//     the field and the value. An address allocator over the range hands out
//     addresses next-fit (the address after the last one given, wrapping),
//     so a released address is not reused at once; network and broadcast
//     addresses (IPv4), the IPv6 subnet-router anycast address, the gateway
//     and aux addresses are never handed out. IPv4 and IPv6 (dual stack: one
//     Pool per family).
//   - State and Store: a pool's allocations and cursor, saved through a
//     Store the agent backs with its file store, and restored into a new
//     pool after a restart, so no address still in use is handed out again.
//   - Subnets: default address pools like Docker's (10.0.0.0/8 carved into
//     /24 subnets, base and size configurable); user subnets are reserved and
//     never overlap another network's.
//
// The cluster-wide scope (per-host blocks of a global subnet, claimed over
// the replicated tables) builds on these and is not written yet. The plan,
// for the next step:
//
//   - Ownership moves, it is never contended: a global network's subnet is
//     cut into blocks (default /26); the host that creates the network owns
//     every block. A host that needs addresses asks an owner, and only the
//     owner writes the grant (its own kvs slot: block → new owner), so two
//     hosts can never both believe they own a block, even across a
//     partition: the owner is on one side of it.
//   - A host allocates only from blocks granted to it and seen in its own
//     replicated table; it asks for another block when its blocks are 3/4
//     full.
//   - Blocks of a host gone for good (kvs reaps its rows after ReapAfter)
//     fall to the live host ranked first by hash(network, block, host), so
//     every node picks the same heir without a human step; the heir waits
//     until the dead host's reaping, far longer than any partition a
//     tombstone survives.
//   - Global subnets are claimed the same way from the default pools, the
//     first network owning the pool.
package ipam
