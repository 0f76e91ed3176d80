// Package kvs keeps the replicated tables vxnet's hosts share: networks,
// endpoints, services, address blocks. Every row has an owner (the node that
// wrote it); rows are replicated to every node.
//
// # Model
//
// A row is (table, key) → value, stamped with its owner and the owner's
// Lamport time when written. A delete writes a tombstone. Two rows for the
// same (table, key) are ordered by (version, owner): the greater wins
// everywhere, so every node that has seen the same rows holds the same
// table (last-writer-wins). A node only ever accepts or rejects a row by
// comparing it with the row it holds for the same key, never with a per-node
// high-water mark, so one lost message cannot make a node refuse an owner's
// later rows (moby/moby#53437).
//
// # Spreading a change
//
// A write is forwarded within ForwardInterval (batched into packets) to
// Fanout random members, and queued in memberlist's piggyback queue at its
// origin. Every node that learns a row from a forward passes it on once
// the same way (rumour mongering): most nodes have it within milliseconds.
//
// Each write also has a place in its owner's stream: (epoch, seq), where
// seq counts the owner's writes in this run. Every SyncInterval a node
// sends one random member its position in every owner's stream (a version
// vector, a few bytes per owner); the member answers with the rows that
// cover whatever the node lacks, and says up to where they do. A lost
// packet therefore delays an update by about one SyncInterval, never until
// the next anti-entropy round. Rows learned through repair or sync are not
// passed on, so a joining node sets off no storm (docker/libnetwork#2216).
//
// # Repair (anti-entropy)
//
// memberlist's periodic push/pull carries a digest, not the rows: for each
// owner, the number of its rows (tombstones included), the highest version
// and an XOR of the rows' hashes. The state is a few dozen bytes per node,
// far below memberlist's 20 MB push/pull limit (moby/moby#41416). Where the
// two sides' digests for an owner differ, each side streams its rows of that
// owner to the other in chunks; merging is idempotent, so both converge.
//
// # Owners that go away
//
//   - A node that leaves gracefully has its rows withdrawn at once.
//   - A node that fails has its rows hidden from readers after FailedGrace,
//     and restored if it comes back before ReapAfter; only then are they
//     forgotten (moby/moby#53142: dropping them at once returned NXDOMAIN for
//     names whose host came back).
//   - Rows of an owner that left or was reaped are refused until it is alive
//     again, so repair from a lagging node cannot resurrect them.
//   - Only a row's owner can delete it: a tombstone that claims another
//     owner's live row is rejected and counted (moby/moby#50342).
//   - A node that receives a newer row claiming to be its own, which it does
//     not hold, deletes it with a newer tombstone: it is the authority on its
//     own rows. Hence: Put your persisted rows before joining.
//   - Tombstones are kept for TombstoneTTL, so that late or repaired copies
//     of a deleted row cannot bring it back.
//
// All of this is for host-scoped rows: an endpoint, a host's address
// blocks. They describe their writer and go with it.
//
// # Cluster rows
//
// Rows of the tables named in Config.ClusterTables (networks, subnet
// claims) are the cluster's, not their writer's. No node's death, absence,
// partition or lost state hides or deletes them; only an explicit delete
// does:
//
//   - They are never hidden or withdrawn with their writer, and are
//     accepted from a writer that left or was reaped; anti-entropy keeps
//     carrying them (a gone writer's digest lists them), so a node that
//     joins later learns them from anyone.
//   - Any node may delete one: its tombstone, in its own slot, has a
//     version above every write it has seen. Of all the slots of a row,
//     tombstones included, the greatest (version, owner) wins: a delete
//     beats the writes it saw, a write made after seeing a delete beats
//     it, and concurrent ones are ordered alike everywhere.
//   - Their tombstones are never reaped (one per name ever deleted), so a
//     copy held through a partition of any length cannot bring a deleted
//     row back.
//   - A node that receives its own cluster row, which it does not hold
//     (it lost its state), takes it as is instead of deleting it.
//   - Nodes persist every cluster row they hold, any owner's, and put
//     them back as they were (Config.InitialEntries): a node restarted
//     alone still knows the cluster's objects, and a restart never
//     rewrites them.
//
// Under partition each side keeps every cluster row it had and may write
// and delete; after the heal every node holds the same slots and so shows
// the same winner. What a row means when two sides created it at once
// (two networks of one name) is decided above this package, by a rule
// every node computes alike.
//
// # First claim wins
//
// In the host-scoped tables of Config.FirstClaim (endpoints), one key may
// be written by two nodes that could not see each other. There the
// visible live row with the smallest (claim, owner) wins, where the claim
// is its owner's Lamport time when it first wrote the row's current life:
// rewrites keep it, so the winner never flips while both live, and every
// node shows the same one. A node restarted puts its rows back with the
// claims they had (Row.Claim, InitialRows or PutClaimed), so a row
// claimed before the restart still wins over one another node claimed
// while it was down; a row without one claims anew, at the restored
// clock. The loser's owner sees that its row lost and acts on it.
//
// # The etcd backend
//
// Etcd keeps the same rows in etcd instead: each owner's slot of a row is
// a key, PREFIX/rows/TABLE/KEY/OWNER, so readers see the same winner by
// the same rules, with etcd's revisions as versions (a row's modification
// revision; in a FirstClaim table its claim is the key's creation
// revision, kept by rewrites). A node reads the tables whole, then
// watches from the revision it read; every read is served from that
// copy, so readers never wait on etcd and keep the last tables while it
// is down. A write returns once etcd took it and the watch brought it
// back (read your writes).
//
//   - A node's host-scoped rows are on its lease: they go when it stops
//     renewing it (it died, or lost etcd for longer than the lease), and
//     with Revoke (a graceful leave). The node keeps its own rows and is
//     their authority: after every full read it writes back those etcd
//     lost or holds on an older lease, and deletes the ones it does not
//     hold (unless adopting them, Config.AdoptOwnRows). So its delete of
//     its own row never fails, as in gossip: one etcd did not take is
//     finished by a full read asked for at once.
//   - Cluster rows are on no lease; any node's delete removes every slot
//     of the row at once. etcd orders every write, so no tombstones are
//     needed.
//   - Claim and Unclaim are compare-and-swap on a row (IPAM's block
//     claims): a claim is written only if no slot of the row exists, or
//     if the slot it takes over is still at the version read.
//   - A full read again after any failure: etcd unreachable, the watch
//     cancelled or behind a compaction, the lease lost.
//
// Gossip still runs for membership (who is alive); it carries no rows.
package kvs
