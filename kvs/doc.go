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
package kvs
