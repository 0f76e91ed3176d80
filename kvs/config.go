package kvs

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures the gossip backend.
type Config struct {
	// FailedGrace is how long the rows of a node declared failed stay
	// visible, in case it was a false alarm. Default 5 s (1 s with
	// FastTimings).
	FailedGrace time.Duration
	// ReapAfter is how long the rows of a failed node are kept (hidden)
	// before they are forgotten; a node back before then gets them back.
	// Default 24 h (1 min with FastTimings).
	ReapAfter time.Duration
	// TombstoneTTL is how long a deleted row's tombstone is kept so that
	// late copies cannot bring the row back. Default 24 h (5 min with
	// FastTimings). Must be longer than any partition you expect to heal.
	TombstoneTTL time.Duration
	// ExpireInterval is how often the clocks above are checked. Default
	// 1 s (100 ms with FastTimings).
	ExpireInterval time.Duration
	// Fanout is how many random members each node forwards a new row to,
	// once, when it first learns it. Default 3.
	Fanout int
	// ForwardInterval batches forwarding: rows learned within it leave in
	// the same packets. Default 10 ms.
	ForwardInterval time.Duration
	// SyncInterval is how often a node sends one random member its
	// position in every owner's stream of writes, so that the member sends
	// back whatever the node missed. It bounds how long a lost packet
	// delays an update. Default 200 ms (100 ms with FastTimings).
	SyncInterval time.Duration
	// InitialClock restores the Lamport clock a restarted node persisted,
	// so that its new writes are newer than its old ones.
	InitialClock uint64
	// InitialRows are this node's persisted rows, written before the node
	// listens: a peer's copy of them arriving first would otherwise be
	// taken for a stale copy and deleted.
	InitialRows []Row
	// ClusterTables name the tables whose rows belong to the cluster, not
	// to the node that wrote them (networks, subnet claims): they are
	// never hidden or dropped when their writer fails, leaves, is reaped
	// or comes back without its state; any node may delete them; and of
	// all the writes of a row, tombstones included, the greatest
	// (version, owner) wins. Their tombstones are never reaped, so no copy
	// held through a partition, however long, can bring a deleted row
	// back. See the package documentation.
	ClusterTables []string
	// FirstClaim names host-scoped tables in which, of several nodes'
	// live rows under one key, the first claimed wins (the smallest
	// (Entry.Claim, owner)) rather than the last written: an endpoint name
	// created on two hosts at once has one owner everywhere. Rows put back
	// with InitialRows keep the claim they had (Row.Claim), or without one
	// claim anew at the node's restored clock: against a row another node
	// wrote meanwhile, the smaller claim wins, whichever node wrote it.
	FirstClaim []string
	// InitialEntries are persisted rows of cluster tables (any owner's,
	// tombstones included) put back as they were, versions and all,
	// before the node listens: a node restarted alone still knows the
	// cluster's objects, and a restart never rewrites them.
	InitialEntries []Entry
	// InitialOthers (etcd backend) are the other hosts' rows of host
	// tables as last read from etcd, persisted: served until etcd is
	// read again, so that a host restarted while etcd is down keeps the
	// last tables. The gossip backend learns them from its peers instead.
	InitialOthers []Entry
	// AdoptOwnRows, for a node that lost its state and rebuilds it from
	// the cluster: copies of its own rows it does not hold are taken as
	// they are instead of being deleted, until StopAdopting.
	AdoptOwnRows bool
	// Logger receives table logs; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns data-centre timings.
func DefaultConfig() Config {
	return Config{FailedGrace: 5 * time.Second, ReapAfter: 24 * time.Hour, TombstoneTTL: 24 * time.Hour, ExpireInterval: time.Second,
		Fanout: 3, ForwardInterval: 10 * time.Millisecond, SyncInterval: 200 * time.Millisecond}
}

// FastTimings returns timings for tests and small clusters, to pair with
// gossip's fast profile: a dead node's rows go within about 3-4 s.
func FastTimings() Config {
	return Config{FailedGrace: 500 * time.Millisecond, ReapAfter: time.Minute, TombstoneTTL: 5 * time.Minute, ExpireInterval: 100 * time.Millisecond,
		Fanout: 3, ForwardInterval: 10 * time.Millisecond, SyncInterval: 100 * time.Millisecond}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.FailedGrace == 0 {
		c.FailedGrace = d.FailedGrace
	}
	if c.ReapAfter == 0 {
		c.ReapAfter = d.ReapAfter
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = d.TombstoneTTL
	}
	if c.ExpireInterval == 0 {
		c.ExpireInterval = d.ExpireInterval
	}
	if c.Fanout == 0 {
		c.Fanout = d.Fanout
	}
	if c.ForwardInterval == 0 {
		c.ForwardInterval = d.ForwardInterval
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = d.SyncInterval
	}
}

func (c *Config) validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"FailedGrace", c.FailedGrace}, {"ReapAfter", c.ReapAfter}, {"TombstoneTTL", c.TombstoneTTL},
		{"ExpireInterval", c.ExpireInterval}, {"ForwardInterval", c.ForwardInterval}, {"SyncInterval", c.SyncInterval}} {
		if f.v < 0 {
			return fmt.Errorf("kvs: config %s %v is negative", f.name, f.v)
		}
	}
	if c.Fanout < 1 || c.Fanout > 32 {
		return fmt.Errorf("kvs: config Fanout %d out of range 1-32", c.Fanout)
	}
	if c.ReapAfter < c.FailedGrace {
		return fmt.Errorf("kvs: config ReapAfter %v is shorter than FailedGrace %v", c.ReapAfter, c.FailedGrace)
	}
	return nil
}

// Row is a row to write: the table, the key and the value. Claim is, in a
// FirstClaim table, the claim a persisted row of this node had (see
// Config.InitialRows); 0 claims anew.
type Row struct {
	Table, Key string
	Value      []byte
	Claim      uint64 `json:",omitempty"`
}

// Stats are the backend's counters.
type Stats struct {
	Rows             int    // rows held, tombstones and hidden rows included
	Clock            uint64 // Lamport clock
	LocalWrites      uint64 // puts and deletes made here
	Applied          uint64 // rows from others that changed the table
	Stale            uint64 // rows from others already known or superseded
	RejectedGone     uint64 // rows of owners that left or were reaped
	Reclaimed        uint64 // stale copies of our own rows answered
	Malformed        uint64 // messages that did not decode
	Forwarded        uint64 // rows forwarded to random members
	SyncsSent        uint64 // stream positions sent to a random member
	CatchUpsSent     uint64 // owners' missed writes sent back after a sync
	RepairsSent      uint64 // owners' rows streamed to a peer by anti-entropy
	RepairDropped    uint64 // repairs skipped because the send queue was full
	OwnersReaped     uint64 // failed owners forgotten after ReapAfter
	OwnersForgotten  uint64 // failed owners forgotten at once (Tables.SetForgotten)
	TombstonesReaped uint64
}
