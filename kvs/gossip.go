package kvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/gossip"
)

// Gossip is the default Backend: tables replicated over a gossip.Node.
type Gossip struct {
	cfg  Config
	st   *store
	node atomic.Pointer[gossip.Node] // set once New returns; messages may come earlier
	log  *slog.Logger

	malformed atomic.Uint64
	jobs      chan func() // sends that must not run on memberlist's goroutines

	outMu     sync.Mutex // guards outbox and sending
	outbox    []Entry    // rows to forward at the next tick
	sending   int        // rows of the batch now being sent
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ Tables             = (*Gossip)(nil)
	_ gossip.Application = (*Gossip)(nil)
)

// NewGossip starts a gossip node with gcfg and the tables on top of it.
// Put this node's persisted rows before calling Join on Node().
func NewGossip(cfg Config, gcfg gossip.Config) (*Gossip, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{
		cfg: cfg,
		// A new epoch per run: time-ordered, so a restarted owner's run
		// is recognised as newer.
		st:   newStore(gcfg.Name, timings{cfg.FailedGrace, cfg.ReapAfter, cfg.TombstoneTTL}, cfg.InitialClock, uint64(time.Now().UnixNano())),
		log:  log.With("component", "kvs", "node", gcfg.Name),
		jobs: make(chan func(), 256),
		stop: make(chan struct{}),
	}
	g.st.cluster, g.st.firstClaim, g.st.adopt = setOf(cfg.ClusterTables), setOf(cfg.FirstClaim), cfg.AdoptOwnRows
	for _, e := range cfg.InitialEntries {
		if err := checkRow(e.Table, e.Key, e.Value); err != nil || !g.st.cluster[e.Table] || e.Owner == "" || e.Version == 0 {
			return nil, fmt.Errorf("kvs: config InitialEntries: %v: not a row of a cluster table (%v)", e, err)
		}
		g.st.restore(e)
	}
	for _, r := range cfg.InitialRows {
		if err := checkRow(r.Table, r.Key, r.Value); err != nil {
			return nil, fmt.Errorf("kvs: config InitialRows: %w", err)
		}
		if g.st.cluster[r.Table] {
			return nil, fmt.Errorf("kvs: config InitialRows: table %s is a cluster table: put its rows back with InitialEntries", r.Table)
		}
		g.st.putClaimed(r.Table, r.Key, r.Value, r.Claim)
	}
	node, err := gossip.New(gcfg, g)
	if err != nil {
		return nil, err
	}
	g.node.Store(node)
	g.st.setMembership(node.IsMember, time.Now())
	g.wg.Add(4)
	go g.routineExpire()
	go g.routineJobs()
	go g.routineForward()
	go g.routineSync()
	return g, nil
}

// Node returns the gossip node (Join, Members, Leave, keys).
func (g *Gossip) Node() *gossip.Node { return g.node.Load() }

// Put implements Backend.
func (g *Gossip) Put(table, key string, value []byte) (Entry, error) {
	return g.PutClaimed(table, key, value, 0)
}

// PutClaimed implements Tables.
func (g *Gossip) PutClaimed(table, key string, value []byte, claim uint64) (Entry, error) {
	if err := checkRow(table, key, value); err != nil {
		return Entry{}, err
	}
	if g.closed() {
		return Entry{}, ErrClosed
	}
	e := g.st.putClaimed(table, key, value, claim)
	g.originate(e)
	return e, nil
}

// Delete implements Backend.
func (g *Gossip) Delete(table, key string) error {
	if g.closed() {
		return ErrClosed
	}
	e, err := g.st.del(table, key, time.Now())
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", table, key, err)
	}
	g.originate(e)
	return nil
}

func checkRow(table, key string, value []byte) error {
	switch {
	case table == "" || len(table) > MaxNameLen:
		return fmt.Errorf("kvs: table name %q: want 1-%d bytes", table, MaxNameLen)
	case key == "" || len(key) > MaxKeyLen:
		return fmt.Errorf("kvs: table %s: key of %d bytes: want 1-%d", table, len(key), MaxKeyLen)
	case len(value) > MaxValueLen:
		return fmt.Errorf("kvs: table %s key %s: value of %d bytes exceeds %d", table, key, len(value), MaxValueLen)
	}
	return nil
}

// Get implements Backend.
func (g *Gossip) Get(table, key string) (Entry, bool) { return g.st.get(table, key) }

// List implements Backend.
func (g *Gossip) List(table string) []Entry { return g.st.list(table) }

// Watch implements Backend.
func (g *Gossip) Watch(table string) ([]Entry, <-chan Event, func()) {
	snap, w := g.st.watch(table)
	return snap, w.q.Out(), func() { g.st.unwatch(w) }
}

// StopAdopting ends Config.AdoptOwnRows: from now on this node is again
// the authority on its own rows.
func (g *Gossip) StopAdopting() {
	g.st.mu.Lock()
	g.st.adopt = false
	g.st.mu.Unlock()
}

// Hidden returns the live rows of a table that readers do not see because
// their owners failed and are not reaped yet: they come back if their
// owners do.
func (g *Gossip) Hidden(table string) []Entry { return g.st.hiddenRows(table) }

// Down implements Tables.
func (g *Gossip) Down() map[string]time.Time { return g.st.down() }

// ClusterEntries returns every row of the cluster tables, any owner's,
// tombstones included: what a node persists to put back with
// Config.InitialEntries.
func (g *Gossip) ClusterEntries() []Entry { return g.st.clusterEntries() }

// OthersEntries implements Tables: none, as peers hand them over.
func (g *Gossip) OthersEntries() []Entry { return nil }

// OwnRows returns this node's rows of its host-scoped tables: what a node
// persists to put back with Config.InitialRows.
func (g *Gossip) OwnRows() []Row {
	var rows []Row
	for _, e := range g.st.list("") {
		if e.Owner == g.st.self && !g.IsCluster(e.Table) {
			// The claim as written, not as it competes (a forget rule
			// makes readers' copies show another).
			rows = append(rows, Row{Table: e.Table, Key: e.Key, Value: e.Value, Claim: g.st.rawClaim(e.Table, e.Key)})
		}
	}
	return rows
}

// WaitQuiet waits until no row has arrived for quiet (a node that just
// joined has caught up with the cluster), at most max or until ctx ends.
func (g *Gossip) WaitQuiet(ctx context.Context, quiet, max time.Duration) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(min(quiet/10, 100*time.Millisecond))
	defer tick.Stop()
	last, quietSince := g.Stats().Applied, time.Now()
	for time.Since(quietSince) < quiet {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
		if n := g.Stats().Applied; n != last {
			last, quietSince = n, time.Now()
		}
	}
}

// IsCluster reports whether table is one of Config.ClusterTables.
func (g *Gossip) IsCluster(table string) bool { return g.st.cluster[table] }

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Stats returns the counters.
func (g *Gossip) Stats() Stats {
	s := g.st.snapshotStats()
	s.Malformed = g.malformed.Load()
	return s
}

// Digest is a hash of every visible row: two nodes with the same digest
// show readers the same tables.
func (g *Gossip) Digest() uint64 { return g.st.digestAll() }

// Health implements Tables: gossip takes writes whenever the node runs.
func (g *Gossip) Health() Health {
	return Health{Backend: "gossip", Up: !g.closed()}
}

// Clock is the Lamport clock, for persisting across restarts.
func (g *Gossip) Clock() uint64 { return g.Stats().Clock }

// Close leaves nothing behind: it stops the node without a leave message
// (call Node().Leave first for a graceful exit) and closes every watch.
func (g *Gossip) Close() error {
	var err error
	g.closeOnce.Do(func() {
		close(g.stop)
		err = g.node.Load().Shutdown()
		g.wg.Wait()
		g.st.closeWatchers()
	})
	return err
}

func (g *Gossip) closed() bool {
	select {
	case <-g.stop:
		return true
	default:
		return false
	}
}

// originate sends a write made here: forwarded like any new row, and
// also queued once in memberlist's piggyback queue (TransmitLimitedQueue),
// which repeats it in the next gossip rounds; a newer write of the same key
// replaces it there. Relays do not queue, so the queue's load stays
// proportional to this node's own writes.
func (g *Gossip) originate(e Entry) {
	g.spread(e)
	if n := g.node.Load(); n != nil {
		n.Broadcast(e.Table+"\x00"+e.Key, encodeUpdate([]Entry{e}))
	}
}

// spread queues a row this node has just learned or written for
// forwarding to Fanout random members at the next tick.
func (g *Gossip) spread(e Entry) {
	g.outMu.Lock()
	g.outbox = append(g.outbox, e)
	g.outMu.Unlock()
}

// maxPacket is what a best-effort message may carry: memberlist's UDP
// buffer less its framing and encryption.
const maxPacket = 1200

// vectorMax is how many owners a sync vector lists: each takes 6 bytes and
// a seq, rarely more than 2 bytes.
const vectorMax = (maxPacket - 64) / 8

// routineForward sends what spread queued, batched into packets, each to
// Fanout random members. Rows too large for a packet go over a stream.
func (g *Gossip) routineForward() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ForwardInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.outMu.Lock()
		batch := g.outbox
		g.outbox = nil
		// Counted as it leaves the outbox; sending marks the batch in
		// flight until its last packet is out (see outboxLen).
		g.st.count(func(s *Stats) { s.Forwarded += uint64(len(batch)) })
		g.sending = len(batch)
		g.outMu.Unlock()
		n := g.node.Load()
		if len(batch) == 0 || n == nil {
			g.doneSending()
			continue
		}
		for len(batch) > 0 {
			k, size := 0, 0
			for k < len(batch) && (k == 0 || size+entrySize(&batch[k]) < maxPacket) {
				size += entrySize(&batch[k])
				k++
			}
			msg := encodeUpdate(batch[:k])
			for _, peer := range n.RandomMembers(g.cfg.Fanout) {
				if len(msg) <= maxPacket {
					n.SendBestEffort(peer, msg)
				} else {
					n.SendReliable(peer, msg)
				}
			}
			batch = batch[k:]
		}
		g.doneSending()
	}
}

func (g *Gossip) doneSending() {
	g.outMu.Lock()
	g.sending = 0
	g.outMu.Unlock()
}

// outboxLen is the number of rows waiting to be forwarded or being sent.
func (g *Gossip) outboxLen() int {
	g.outMu.Lock()
	defer g.outMu.Unlock()
	return len(g.outbox) + g.sending
}

func entrySize(e *Entry) int {
	return len(e.Table) + len(e.Key) + len(e.Owner) + len(e.Value) + 32
}

// routineSync sends a random member this node's position in every
// owner's stream; the member answers with the writes this node lacks.
func (g *Gossip) routineSync() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.SyncInterval)
	defer t.Stop()
	var round uint32
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		n := g.node.Load()
		if n == nil {
			continue
		}
		peers := n.RandomMembers(1)
		if len(peers) == 0 {
			continue
		}
		// vectorMax owners fit in one packet; larger clusters cover
		// their owners part by part, a part per round.
		round++
		part, items := g.st.vector(round, vectorMax)
		msg := encodeVector(g.st.self, part, items)
		for len(msg) > maxPacket && len(items) > 0 { // long seqs: fewer owners
			items = items[:len(items)*3/4]
			part.Cut = true
			msg = encodeVector(g.st.self, part, items)
		}
		if n.SendBestEffort(peers[0], msg) == nil {
			g.st.count(func(s *Stats) { s.SyncsSent++ })
		}
	}
}

// answerVector sends a member the writes its vector shows it lacks.
func (g *Gossip) answerVector(m *message) {
	n := g.node.Load()
	if n == nil || m.sender == g.st.self {
		return
	}
	for _, c := range g.st.behind(m.sender, m.part, m.vector) {
		msgs := encodeRows(g.st.self, c.owner, c.epoch, c.from, c.complete, c.rows, MaxMessageSize/2)
		if len(msgs) != 1 {
			continue // too much for a catch-up: push/pull repair handles it
		}
		if len(msgs[0]) <= maxPacket {
			n.SendBestEffort(m.sender, msgs[0])
		} else {
			n.SendReliable(m.sender, msgs[0])
		}
		g.st.count(func(s *Stats) { s.CatchUpsSent++ })
	}
}

// NotifyMsg implements gossip.Application.
func (g *Gossip) NotifyMsg(b []byte) {
	m, err := decode(b)
	if err != nil {
		g.malformed.Add(1)
		g.log.Debug("dropped malformed message", "error", err)
		return
	}
	now := time.Now()
	switch m.typ {
	case msgUpdate:
		for _, e := range m.entries {
			switch res, mine := g.st.apply(e, now); res {
			case applyChanged:
				g.spread(e)
			case applyReclaimed:
				g.spread(mine)
			}
		}
	case msgRows:
		// Repair: merged, not re-broadcast (but our own rows' answers are).
		for _, e := range m.entries {
			if res, mine := g.st.apply(e, now); res == applyReclaimed {
				g.spread(mine)
			}
		}
		g.st.completeTo(m.owner, m.epoch, m.from, m.complete)
	case msgVector:
		g.enqueue(func() { g.answerVector(m) })
	default:
		g.malformed.Add(1)
	}
}

// LocalState implements gossip.Application: the digest, not the rows.
func (g *Gossip) LocalState(join bool) []byte {
	return encodeDigest(g.st.self, g.st.digests())
}

// MergeRemoteState implements gossip.Application: owners whose rows the
// two sides hold differently are streamed to the peer.
func (g *Gossip) MergeRemoteState(b []byte, join bool) {
	m, err := decode(b)
	if err != nil || m.typ != msgDigest {
		g.malformed.Add(1)
		return
	}
	if m.sender == g.st.self {
		return
	}
	for _, owner := range g.st.differing(m.digests) {
		g.enqueue(func() { g.repair(m.sender, owner) })
	}
}

// MemberEvent implements gossip.Application.
func (g *Gossip) MemberEvent(ev gossip.MemberEvent) {
	now := time.Now()
	switch ev.Type {
	case gossip.EventJoin:
		g.st.memberAlive(ev.Member.Name)
	case gossip.EventLeave:
		g.st.memberLeft(ev.Member.Name, now)
	case gossip.EventFail:
		g.st.memberFailed(ev.Member.Name, now)
	}
}

// enqueue hands a send to routineJobs: memberlist's callbacks must not
// block on the network. A full queue drops the job (counted): the next
// sync or push/pull asks again.
func (g *Gossip) enqueue(job func()) {
	select {
	case g.jobs <- job:
	default:
		g.st.count(func(s *Stats) { s.RepairDropped++ })
	}
}

// routineJobs runs queued sends.
func (g *Gossip) routineJobs() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case job := <-g.jobs:
			job()
		}
	}
}

// repair streams an owner's rows to a peer whose digest differs.
func (g *Gossip) repair(peer, owner string) {
	for _, msg := range encodeRows(g.st.self, owner, 0, 0, 0, g.st.rowsOf(owner), 0) {
		if err := g.Node().SendReliable(peer, msg); err != nil {
			if !errors.Is(err, gossip.ErrShutdown) {
				g.log.Debug("repair send failed", "peer", peer, "error", err)
			}
			return
		}
	}
	g.st.count(func(s *Stats) { s.RepairsSent++ })
}

// routineExpire runs the store's clocks.
func (g *Gossip) routineExpire() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.st.expire(now)
		}
	}
}
