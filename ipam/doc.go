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
//   - Subnets: default address pools like Docker's (10.0.0.0/8 carved into
//     /24 subnets, base and size configurable); user subnets are reserved and
//     never overlap another network's.
//
// The cluster-wide scope (per-host blocks of a global subnet, claimed over
// the replicated tables) builds on these and comes next.
package ipam
