package kvs

import (
	"context"
	"fmt"
	"time"

	"github.com/vxnet/vxnet/gossip"
)

// Entry is one row of a replicated table.
type Entry struct {
	Table   string
	Key     string
	Value   []byte
	Owner   string // the node that wrote it
	Version uint64 // the owner's Lamport time of the write
	Deleted bool   // a tombstone
	// DeletedAt is when the owner deleted the row (Unix nanoseconds, its
	// clock): every node reaps the tombstone TombstoneTTL after it.
	DeletedAt int64

	// Epoch and Seq place the write in its owner's stream of writes:
	// Epoch names the owner's run (it changes when the owner restarts),
	// Seq counts its writes 1, 2, 3... Nodes use them only to find writes
	// they missed; which row wins is decided by Version alone.
	Epoch uint64
	Seq   uint64

	// Claim, in a table where the first claim wins (Config.FirstClaim),
	// is the owner's Lamport time when it first wrote the row's current
	// life: later writes of the same live row keep it, so a row that is
	// rewritten (after a restart, say) never overtakes an earlier claim.
	// Zero in other tables.
	Claim uint64
}

// newer reports whether e supersedes o, the same owner's slot of the
// same row.
func (e *Entry) newer(o *Entry) bool {
	if e.Version != o.Version {
		return e.Version > o.Version
	}
	// The same write seen twice, or a tombstone at the same version: the
	// tombstone wins so a delete is never undone by a duplicate.
	return e.Deleted && !o.Deleted
}

func (e Entry) String() string {
	state := "live"
	if e.Deleted {
		state = "deleted"
	}
	return fmt.Sprintf("%s/%s@%s:%d(%s)", e.Table, e.Key, e.Owner, e.Version, state)
}

// EventType says what a watcher is told. Append-only.
type EventType int

const (
	// EventPut: a row appeared or changed (or came back with its owner).
	EventPut EventType = iota
	// EventDelete: a row was deleted, or withdrawn with its owner.
	EventDelete
)

func (t EventType) String() string {
	if t == EventPut {
		return "put"
	}
	return "delete"
}

// Event is one change seen by a watcher.
type Event struct {
	Type  EventType
	Entry Entry
}

// Backend is a replicated table store. The gossip backend is the default;
// a strongly consistent one (etcd) can implement the same interface.
type Backend interface {
	// Put writes a row owned by this node.
	Put(table, key string, value []byte) (Entry, error)
	// Delete deletes a row this node owns, or any row of a cluster
	// table. ErrNotFound if there is no live row, ErrNotOwner if another
	// node owns it (host-scoped tables).
	Delete(table, key string) error
	// Get returns a live, visible row.
	Get(table, key string) (Entry, bool)
	// List returns the live, visible rows of a table ("" for all tables),
	// ordered by table and key.
	List(table string) []Entry
	// Watch returns the current rows of table ("" for all) and, atomically
	// with it, a channel of every later change in order. A slow reader
	// never blocks replication; its events queue up. cancel stops the
	// watch and closes the channel; so does Close.
	Watch(table string) (snapshot []Entry, events <-chan Event, cancel func())
	// Close stops the backend.
	Close() error
}

// Tables is what the agent needs of a backend beyond Backend: membership,
// what to persist, and the store's health. Gossip and Etcd implement it.
type Tables interface {
	Backend
	// Node is the gossip node that says who is alive (and carries the
	// rows, for the gossip backend).
	Node() *gossip.Node
	// OwnRows are this host's host-scoped rows, to persist and put back
	// with Config.InitialRows.
	OwnRows() []Row
	// PutClaimed is Put for a persisted row put back later than
	// InitialRows: in a FirstClaim table it keeps the claim it had (Row.
	// Claim) rather than claim anew, unless the row has a smaller one.
	PutClaimed(table, key string, value []byte, claim uint64) (Entry, error)
	// ClusterEntries are the cluster tables' rows, to persist and put
	// back with Config.InitialEntries.
	ClusterEntries() []Entry
	// OthersEntries are the other hosts' rows of host tables, to persist
	// and put back with Config.InitialOthers (etcd; nil for gossip).
	OthersEntries() []Entry
	// Clock is the backend's clock (gossip: Lamport; etcd: revision).
	Clock() uint64
	// IsCluster reports whether table is one of Config.ClusterTables.
	IsCluster(table string) bool
	// Hidden returns rows of failed owners readers do not see.
	Hidden(table string) []Entry
	// Down returns every owner this node sees down (its rows kept for its
	// return), and since when.
	Down() map[string]time.Time
	// DownRun returns the run (epoch) of an owner Down lists, for a
	// ForgetRule; false if it is not down.
	DownRun(name string) (uint64, bool)
	// SetForgotten installs every rule that forgets a run of an owner:
	// its rows go at once where it is down, or when it goes down, and its
	// claims made before the forget count as made then (see ForgetRule).
	SetForgotten(rules map[string]ForgetRule)
	// Forgotten reports whether an owner's rows went by a forget rule
	// and it has not been alive since.
	Forgotten(name string) bool
	// ReclaimForgotten claims anew this node's rows that a rule naming
	// this node makes lose, and returns how many it wrote.
	ReclaimForgotten() int
	// WaitQuiet waits until a node that just started has caught up.
	WaitQuiet(ctx context.Context, quiet, max time.Duration)
	// StopAdopting ends Config.AdoptOwnRows.
	StopAdopting()
	// Stats returns the counters.
	Stats() Stats
	// Health says whether the store can take writes.
	Health() Health
	// Digest is a hash of every visible row: two nodes with the same
	// digest show readers the same tables.
	Digest() uint64
}
