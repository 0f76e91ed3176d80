package kvs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vxnet/vxnet/gossip"
)

// EtcdConfig says where the etcd backend keeps the tables.
type EtcdConfig struct {
	// Endpoints are the etcd cluster's client URLs (http://host:2379 or
	// https://...).
	Endpoints []string
	// Prefix is where the tables live in etcd's key space; several
	// clusters can share one etcd under different prefixes. Default
	// DefaultEtcdPrefix.
	Prefix string
	// TLS, when set, is used for every connection (CA, client cert).
	TLS *tls.Config
	// LeaseTTL is the life of this host's lease: its host-scoped rows go
	// this long after it stops renewing (it died, or lost etcd). Default
	// 10 s.
	LeaseTTL time.Duration
	// RequestTimeout bounds every write and read. Default 5 s.
	RequestTimeout time.Duration
}

// DefaultEtcdPrefix is where the tables live in etcd unless told.
const DefaultEtcdPrefix = "/vxnet"

// EtcdPrefix is prefix as the etcd backend uses it: one leading slash,
// none trailing; DefaultEtcdPrefix when empty ("/" stays "/", which
// EtcdConfig refuses).
func EtcdPrefix(prefix string) string {
	if prefix == "" {
		return DefaultEtcdPrefix
	}
	return "/" + strings.Trim(prefix, "/")
}

// EtcdFormat is the layout of the keys under the prefix this version
// writes and reads; it is kept in PREFIX/meta.
const EtcdFormat = 1

func (c *EtcdConfig) setDefaults() {
	c.Prefix = EtcdPrefix(c.Prefix)
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
}

func (c *EtcdConfig) validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("kvs: etcd: no endpoints: give at least one client URL, such as http://127.0.0.1:2379")
	}
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("kvs: etcd endpoint %q: want a URL such as http://127.0.0.1:2379", ep)
		}
	}
	if c.LeaseTTL < 2*time.Second {
		return fmt.Errorf("kvs: etcd lease TTL %v: want at least 2s", c.LeaseTTL)
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("kvs: etcd request timeout %v is negative", c.RequestTimeout)
	}
	if strings.ContainsAny(c.Prefix, " \t\n") || c.Prefix == "/" {
		return fmt.Errorf("kvs: etcd prefix %q: want a path such as /vxnet", c.Prefix)
	}
	return nil
}

// Etcd is the Backend that keeps the tables in etcd: every row is a key,
// host-scoped rows are attached to their writer's lease (they go when it
// stops renewing it), and a watch keeps a local copy that readers and
// watchers are served from, with the same rules as gossip's for which
// slot of a row they see. Membership (who is alive) still comes from a
// gossip node, which carries no rows.
//
// Keys, under the prefix:
//
//	meta                      {"format": 1}
//	rows/TABLE/KEY/OWNER      the value of OWNER's slot of a row
//
// TABLE, KEY and OWNER are path-escaped, so none holds a '/'. A row's
// version is its key's modification revision; in a FirstClaim table its
// claim is the key's creation revision, so a rewrite keeps the claim.
type Etcd struct {
	cfg  Config
	ecfg EtcdConfig
	st   *store
	node *gossip.Node
	cli  *clientv3.Client
	log  *slog.Logger
	rows string // PREFIX/rows/

	// writeMu: writes share it, a resync takes it alone, so that no write
	// is in flight while this host's rows are compared with etcd's.
	writeMu sync.RWMutex

	mu         sync.Mutex
	own        map[rowKey][]byte // this host's host-scoped rows: it is their authority
	lease      clientv3.LeaseID  // 0 while there is none
	adopt      bool
	health     Health
	healthSaid bool          // a health state was logged
	leaseBad   chan struct{} // closed by a write that found the lease gone
	redo       chan struct{} // closed by a delete etcd did not take: read again
	upCh       chan struct{} // closed while health is up

	seenMu sync.Mutex
	seen   int64         // every change up to this revision is in st
	seenCh chan struct{} // closed when seen grows
	synced chan struct{} // closed after the first full read

	malformed atomic.Uint64
	ctx       context.Context
	cancel    context.CancelFunc
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ Tables = (*Etcd)(nil)

// NewEtcd starts the etcd backend, and a gossip node with gcfg for
// membership. It does not wait for etcd: readers see cfg.InitialRows and
// cfg.InitialEntries until the first full read replaces them, and writes
// fail with a clear error while etcd cannot be reached.
func NewEtcd(cfg Config, ecfg EtcdConfig, gcfg gossip.Config) (*Etcd, error) {
	ecfg.setDefaults()
	if err := ecfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Etcd{cfg: cfg, ecfg: ecfg, log: log.With("component", "kvs", "node", gcfg.Name), rows: ecfg.Prefix + "/rows/",
		st:  newStore(gcfg.Name, timings{}, 0, uint64(time.Now().UnixNano())),
		own: map[rowKey][]byte{}, adopt: cfg.AdoptOwnRows, leaseBad: make(chan struct{}), redo: make(chan struct{}), upCh: make(chan struct{}),
		seenCh: make(chan struct{}), synced: make(chan struct{}), stop: make(chan struct{}),
		health: Health{Backend: "etcd", Endpoints: ecfg.Endpoints, Since: time.Now(), Error: "not connected yet"}}
	e.st.cluster, e.st.firstClaim = setOf(cfg.ClusterTables), setOf(cfg.FirstClaim)
	for _, en := range cfg.InitialEntries {
		if err := checkRow(en.Table, en.Key, en.Value); err != nil || !e.st.cluster[en.Table] || en.Owner == "" {
			return nil, fmt.Errorf("kvs: config InitialEntries: %v: not a row of a cluster table (%v)", en, err)
		}
		if !en.Deleted {
			e.st.restore(en)
		}
	}
	for _, en := range cfg.InitialOthers {
		// The last tables, until etcd is read: a bad row is left out.
		if checkRow(en.Table, en.Key, en.Value) != nil || e.st.cluster[en.Table] || en.Owner == "" || en.Owner == gcfg.Name || en.Deleted {
			continue
		}
		e.st.restore(en)
	}
	for _, r := range cfg.InitialRows {
		if err := checkRow(r.Table, r.Key, r.Value); err != nil {
			return nil, fmt.Errorf("kvs: config InitialRows: %w", err)
		}
		if e.st.cluster[r.Table] {
			return nil, fmt.Errorf("kvs: config InitialRows: table %s is a cluster table: put its rows back with InitialEntries", r.Table)
		}
		e.own[rowKey{r.Table, r.Key}] = append([]byte(nil), r.Value...)
		e.st.put(r.Table, r.Key, r.Value)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ecfg.Endpoints, TLS: ecfg.TLS, DialTimeout: ecfg.RequestTimeout,
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("kvs: etcd client for %s: %w", strings.Join(ecfg.Endpoints, ","), err)
	}
	e.cli = cli
	if e.node, err = gossip.New(gcfg, membersOnly{}); err != nil {
		cli.Close()
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.wg.Add(1)
	go e.routineSync()
	return e, nil
}

// membersOnly is the gossip application of a node whose tables live
// elsewhere: it carries no rows.
type membersOnly struct{}

func (membersOnly) NotifyMsg([]byte)                  {}
func (membersOnly) LocalState(bool) []byte            { return nil }
func (membersOnly) MergeRemoteState([]byte, bool)     {}
func (membersOnly) MemberEvent(ev gossip.MemberEvent) {}

// slotPath is the etcd key of owner's slot of a row.
func (e *Etcd) slotPath(table, key, owner string) string {
	return e.rowPrefix(table, key) + url.PathEscape(owner)
}

// rowPrefix is the prefix of every slot of a row.
func (e *Etcd) rowPrefix(table, key string) string {
	return e.rows + url.PathEscape(table) + "/" + url.PathEscape(key) + "/"
}

// parseSlot turns an etcd key under rows/ back into a slot.
func (e *Etcd) parseSlot(k []byte) (slotKey, bool) {
	rest, ok := strings.CutPrefix(string(k), e.rows)
	if !ok {
		return slotKey{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return slotKey{}, false
	}
	var sk slotKey
	var err1, err2, err3 error
	sk.table, err1 = url.PathUnescape(parts[0])
	sk.key, err2 = url.PathUnescape(parts[1])
	sk.owner, err3 = url.PathUnescape(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || sk.owner == "" || checkRow(sk.table, sk.key, nil) != nil {
		return slotKey{}, false
	}
	return sk, true
}

// entryOf is the row an etcd key-value holds, or false (counted) if the
// key is not one of ours.
func (e *Etcd) entryOf(kv *mvccpb.KeyValue) (Entry, bool) {
	sk, ok := e.parseSlot(kv.Key)
	if !ok || len(kv.Value) > MaxValueLen {
		e.malformed.Add(1)
		return Entry{}, false
	}
	en := Entry{Table: sk.table, Key: sk.key, Value: kv.Value, Owner: sk.owner, Version: uint64(kv.ModRevision)}
	if e.st.firstClaim[sk.table] {
		en.Claim = uint64(kv.CreateRevision)
	}
	return en, true
}

// Node returns the gossip node that tells who is alive.
func (e *Etcd) Node() *gossip.Node { return e.node }

// PutClaimed implements Tables: etcd's claim is the key's creation
// revision, which a row keeps while its lease lives; a row put back
// claims anew.
func (e *Etcd) PutClaimed(table, key string, value []byte, _ uint64) (Entry, error) {
	return e.Put(table, key, value)
}

// Put implements Backend: the write is in etcd, and in this host's copy,
// when it returns.
func (e *Etcd) Put(table, key string, value []byte) (Entry, error) {
	if err := checkRow(table, key, value); err != nil {
		return Entry{}, err
	}
	if e.closed() {
		return Entry{}, ErrClosed
	}
	if en, ok := e.ownUnchanged(table, key, value); ok {
		return en, nil
	}
	e.waitUp()
	resp, err := e.put(table, key, value)
	if err != nil {
		return Entry{}, err
	}
	// Outside writeMu: a resync waiting for it must not wait for this.
	e.waitSeen(resp.Header.Revision)
	return Entry{Table: table, Key: key, Value: append([]byte(nil), value...), Owner: e.st.self, Version: uint64(resp.Header.Revision)}, nil
}

// ownUnchanged, while etcd is out of reach, takes a write of this host's
// row as it already holds it (put back at start, InitialRows) as done:
// the next resync writes it to etcd if it is not there. An agent
// restarted while etcd is down restores its endpoints without waiting
// for etcd on each.
func (e *Etcd) ownUnchanged(table, key string, value []byte) (Entry, bool) {
	if e.st.cluster[table] || e.upNow() {
		return Entry{}, false
	}
	e.mu.Lock()
	cur, ok := e.own[rowKey{table, key}]
	e.mu.Unlock()
	if !ok || !bytes.Equal(cur, value) {
		return Entry{}, false
	}
	en := Entry{Table: table, Key: key, Value: append([]byte(nil), value...), Owner: e.st.self}
	if got, ok := e.st.get(table, key); ok && got.Owner == e.st.self {
		en.Version = got.Version
	}
	return en, true
}

// put writes under writeMu, so that no resync compares this host's rows
// with etcd's while the write is in flight.
func (e *Etcd) put(table, key string, value []byte) (*clientv3.PutResponse, error) {
	e.writeMu.RLock()
	defer e.writeMu.RUnlock()
	var opts []clientv3.OpOption
	cluster := e.st.cluster[table]
	e.mu.Lock()
	lease := e.lease
	e.mu.Unlock()
	if !cluster {
		if lease == 0 {
			return nil, e.unavailable("writing", table, key, nil)
		}
		opts = append(opts, clientv3.WithLease(lease))
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.ecfg.RequestTimeout)
	var resp *clientv3.PutResponse
	err := retry(ctx, func(ctx context.Context) (err error) {
		resp, err = e.cli.Put(ctx, e.slotPath(table, key, e.st.self), string(value), opts...)
		return err
	})
	cancel()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			e.leaseGone(lease)
		}
		return nil, e.unavailable("writing", table, key, err)
	}
	if !cluster {
		e.mu.Lock()
		e.own[rowKey{table, key}] = append([]byte(nil), value...)
		e.mu.Unlock()
	}
	e.st.count(func(s *Stats) { s.LocalWrites++ })
	return resp, nil
}

// Delete implements Backend. A cluster row's every slot goes at once.
func (e *Etcd) Delete(table, key string) error {
	if e.closed() {
		return ErrClosed
	}
	if e.st.cluster[table] {
		e.waitUp()
	} else {
		// This host's own row goes whether or not etcd is up (del): wait
		// out a session's restart, not an outage.
		e.waitUpFor(claimWait)
	}
	rev, err := e.del(table, key)
	if err != nil {
		return err
	}
	e.waitSeen(rev) // outside writeMu, as in Put
	return nil
}

// del deletes under writeMu and returns the revision to wait for (0:
// nothing was deleted).
func (e *Etcd) del(table, key string) (int64, error) {
	e.writeMu.RLock()
	defer e.writeMu.RUnlock()
	_, visible := e.st.get(table, key)
	path, opts := e.slotPath(table, key, e.st.self), []clientv3.OpOption(nil)
	if e.st.cluster[table] {
		if !visible {
			return 0, fmt.Errorf("delete %s/%s: %w", table, key, ErrNotFound)
		}
		path, opts = e.rowPrefix(table, key), []clientv3.OpOption{clientv3.WithPrefix()}
	} else {
		e.mu.Lock()
		_, mine := e.own[rowKey{table, key}]
		e.mu.Unlock()
		// Or a write of this host's that etcd took after it had timed
		// out here: its slot is in the copy, and this host deletes it.
		mine = mine || e.st.hasSlot(slotKey{table, key, e.st.self})
		switch {
		case !mine && visible:
			return 0, fmt.Errorf("delete %s/%s: %w", table, key, ErrNotOwner)
		case !mine:
			return 0, fmt.Errorf("delete %s/%s: %w", table, key, ErrNotFound)
		}
	}
	var resp *clientv3.DeleteResponse
	var err error
	if !e.st.cluster[table] && !e.upNow() {
		// etcd is down: no wait (a runtime tearing a container down
		// must not hang); the row goes from etcd once it is back.
		err = errors.New("etcd unreachable")
	} else {
		ctx, cancel := context.WithTimeout(e.ctx, e.ecfg.RequestTimeout)
		err = retry(ctx, func(ctx context.Context) (err error) {
			resp, err = e.cli.Delete(ctx, path, opts...)
			return err
		})
		cancel()
	}
	if !e.st.cluster[table] {
		// This host's row goes whether or not etcd took the delete now:
		// it is no longer this host's, so the next full read deletes it
		// (asked for at once below), as a gossip delete never fails.
		e.mu.Lock()
		delete(e.own, rowKey{table, key})
		if err != nil {
			close(e.redo)
			e.redo = make(chan struct{})
		}
		e.mu.Unlock()
		if err != nil {
			e.log.Warn("etcd store: a delete did not take; the row goes when the tables are read again", "table", table, "key", key, "error", err)
			return 0, nil
		}
	}
	if err != nil {
		return 0, e.unavailable("deleting", table, key, err)
	}
	e.st.count(func(s *Stats) { s.LocalWrites++ })
	if resp.Deleted == 0 {
		return 0, nil // no event will come
	}
	return resp.Header.Revision, nil
}

// waitUp waits, at most the request timeout, for the store to be
// reachable: a write made as the agent starts or while etcd fails over
// waits for it rather than failing at once.
func (e *Etcd) waitUp() { e.waitUpFor(e.ecfg.RequestTimeout) }

// upNow reports whether the store is reachable now, without waiting.
func (e *Etcd) upNow() bool {
	e.mu.Lock()
	ch := e.upCh
	e.mu.Unlock()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// claimWait is how long a claim waits for etcd to be reachable: long
// enough for a new session after a member's failover, short enough for
// IPAM's lock.
const claimWait = time.Second

// waitUpFor waits at most d for the store to be reachable, and reports
// whether it is.
func (e *Etcd) waitUpFor(d time.Duration) bool {
	e.mu.Lock()
	ch := e.upCh
	e.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-e.stop:
	}
	return false
}

// Claim writes key as this host's slot of a row of table, with value,
// atomically: if no slot of the row exists (from == ""), or if host
// from's slot is still at version, which it replaces (a takeover). It
// reports whether it won; a lost race is no error. The row has no lease:
// a claim outlives its holder until taken over or given back.
func (e *Etcd) Claim(table, key string, value []byte, from string, version uint64) (bool, uint64, error) {
	if err := checkRow(table, key, value); err != nil {
		return false, 0, err
	}
	if e.closed() {
		return false, 0, ErrClosed
	}
	if !e.waitUpFor(claimWait) {
		// Claims are made under IPAM's lock: a failover is waited for,
		// not an outage.
		return false, 0, e.unavailable("claiming", table, key, nil)
	}
	var cmp clientv3.Cmp
	var ops []clientv3.Op
	if from == "" {
		cmp = clientv3.Compare(clientv3.CreateRevision(e.rowPrefix(table, key)).WithPrefix(), "=", 0)
	} else {
		cmp = clientv3.Compare(clientv3.ModRevision(e.slotPath(table, key, from)), "=", int64(version))
		if from != e.st.self {
			ops = append(ops, clientv3.OpDelete(e.slotPath(table, key, from)))
		}
	}
	ops = append(ops, clientv3.OpPut(e.slotPath(table, key, e.st.self), string(value)))
	// Tried again on a failover: a claim that was taken the first time
	// reads as a lost race, and the next refresh finds it this host's.
	// At most 2 s in all: claims are made under IPAM's lock.
	ctx, cancel := context.WithTimeout(e.ctx, min(e.ecfg.RequestTimeout, 2*time.Second))
	var resp *clientv3.TxnResponse
	err := retry(ctx, func(ctx context.Context) (err error) {
		resp, err = e.cli.Txn(ctx).If(cmp).Then(ops...).Commit()
		return err
	})
	cancel()
	if err != nil {
		return false, 0, e.unavailable("claiming", table, key, err)
	}
	if !resp.Succeeded {
		return false, 0, nil
	}
	e.waitSeen(resp.Header.Revision)
	return true, uint64(resp.Header.Revision), nil
}

// ClaimFor writes owner's slot of a row of table, with value, if no slot
// of the row exists: a claim imported for the host that held it.
func (e *Etcd) ClaimFor(table, key, owner string, value []byte) (bool, error) {
	if err := checkRow(table, key, value); err != nil {
		return false, err
	}
	if owner == "" || len(owner) > MaxNameLen {
		return false, fmt.Errorf("kvs: claim %s/%s: owner %q: want 1-%d bytes", table, key, owner, MaxNameLen)
	}
	if e.closed() {
		return false, ErrClosed
	}
	e.waitUp()
	ctx, cancel := context.WithTimeout(e.ctx, e.ecfg.RequestTimeout)
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(e.rowPrefix(table, key)).WithPrefix(), "=", 0)).
		Then(clientv3.OpPut(e.slotPath(table, key, owner), string(value))).Commit()
	cancel()
	if err != nil {
		return false, e.unavailable("claiming", table, key, err)
	}
	if resp.Succeeded {
		e.waitSeen(resp.Header.Revision)
	}
	return resp.Succeeded, nil
}

// Unclaim deletes this host's slot of a row if it is still at version.
func (e *Etcd) Unclaim(table, key string, version uint64) (bool, error) {
	if e.closed() {
		return false, ErrClosed
	}
	if !e.waitUpFor(claimWait) {
		return false, e.unavailable("giving back", table, key, nil)
	}
	path := e.slotPath(table, key, e.st.self)
	ctx, cancel := context.WithTimeout(e.ctx, e.ecfg.RequestTimeout)
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(path), "=", int64(version))).Then(clientv3.OpDelete(path)).Commit()
	cancel()
	if err != nil {
		return false, e.unavailable("giving back", table, key, err)
	}
	if resp.Succeeded {
		e.waitSeen(resp.Header.Revision)
	}
	return resp.Succeeded, nil
}

// unavailable is the error of a write etcd did not take.
func (e *Etcd) unavailable(what, table, key string, err error) error {
	if err == nil {
		e.mu.Lock()
		err = errors.New(e.health.Error)
		e.mu.Unlock()
	}
	return &storeDownError{endpoints: strings.Join(e.ecfg.Endpoints, ","), what: what + " " + table + "/" + key, cause: err}
}

// Get implements Backend.
func (e *Etcd) Get(table, key string) (Entry, bool) { return e.st.get(table, key) }

// List implements Backend.
func (e *Etcd) List(table string) []Entry { return e.st.list(table) }

// Watch implements Backend.
func (e *Etcd) Watch(table string) ([]Entry, <-chan Event, func()) {
	snap, w := e.st.watch(table)
	return snap, w.q.Out(), func() { e.st.unwatch(w) }
}

// StopAdopting ends Config.AdoptOwnRows.
func (e *Etcd) StopAdopting() {
	e.mu.Lock()
	e.adopt = false
	e.mu.Unlock()
}

// Hidden implements Tables: etcd hides nothing (a host's rows go with its
// lease).
func (e *Etcd) Hidden(string) []Entry { return nil }

// Down implements Tables: none, as a down host's rows go with its lease.
func (e *Etcd) Down() map[string]time.Time { return nil }

// ClusterEntries implements Tables: the cluster tables' rows, to persist
// so that a host restarted while etcd is down still knows them.
func (e *Etcd) ClusterEntries() []Entry { return e.st.clusterEntries() }

// OthersEntries implements Tables: the other hosts' rows as last read.
func (e *Etcd) OthersEntries() []Entry { return e.st.othersEntries() }

// OwnRows implements Tables.
func (e *Etcd) OwnRows() []Row {
	e.mu.Lock()
	defer e.mu.Unlock()
	rows := make([]Row, 0, len(e.own))
	for k, v := range e.own {
		rows = append(rows, Row{Table: k.table, Key: k.key, Value: v})
	}
	return rows
}

// WaitQuiet implements Tables: it waits for the first full read of etcd.
func (e *Etcd) WaitQuiet(ctx context.Context, _, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-e.synced:
	case <-t.C:
	case <-ctx.Done():
	}
}

// IsCluster implements Tables.
func (e *Etcd) IsCluster(table string) bool { return e.st.cluster[table] }

// Stats implements Tables. Clock is the etcd revision seen.
func (e *Etcd) Stats() Stats {
	s := e.st.snapshotStats()
	s.Malformed = e.malformed.Load()
	e.seenMu.Lock()
	s.Clock = uint64(e.seen)
	e.seenMu.Unlock()
	return s
}

// Clock implements Tables.
func (e *Etcd) Clock() uint64 { return e.Stats().Clock }

// Digest is a hash of every visible row.
func (e *Etcd) Digest() uint64 { return e.st.digestAll() }

// Health implements Tables.
func (e *Etcd) Health() Health {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.health
	e.seenMu.Lock()
	h.Revision = e.seen
	e.seenMu.Unlock()
	return h
}

func (e *Etcd) setHealth(up bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := e.health.Up != up
	if changed {
		e.health.Since = time.Now()
		if up {
			close(e.upCh)
		} else {
			e.upCh = make(chan struct{})
		}
	}
	// Health starts down: the first failure is said too, so that an agent
	// that never reaches etcd does not start in silence.
	if changed || !up && !e.healthSaid && e.ctx.Err() == nil {
		e.healthSaid = true
		if up {
			e.log.Info("etcd store reachable", "endpoints", strings.Join(e.ecfg.Endpoints, ","))
		} else {
			e.log.Warn("etcd store unreachable: the data plane keeps its last tables; writes fail until it is back", "endpoints", strings.Join(e.ecfg.Endpoints, ","), "error", msg)
		}
	}
	e.health.Up, e.health.Error = up, msg
}

// Close stops the watch and the gossip node (without a leave message)
// and closes every watcher. The lease is left to expire, as a crash
// would; call Revoke first for a graceful exit.
func (e *Etcd) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.stop)
		e.cancel()
		err = e.node.Shutdown()
		e.wg.Wait()
		e.cli.Close()
		e.st.closeWatchers()
	})
	return err
}

// Revoke gives this host's lease back: its host-scoped rows go from etcd
// at once, as a graceful leave withdraws them in gossip.
func (e *Etcd) Revoke() error {
	// The sync routine stops first: it would take a new lease and write
	// this host's rows again.
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	lease := e.lease
	e.lease = 0
	e.mu.Unlock()
	if lease == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.ecfg.RequestTimeout)
	defer cancel()
	_, err := e.cli.Revoke(ctx, lease)
	return err
}

func (e *Etcd) closed() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// waitSeen waits until the watch has brought every change up to rev
// into this host's copy (readers then see a write that returned), for at
// most the request timeout.
func (e *Etcd) waitSeen(rev int64) {
	t := time.NewTimer(e.ecfg.RequestTimeout)
	defer t.Stop()
	for {
		e.seenMu.Lock()
		seen, ch := e.seen, e.seenCh
		e.seenMu.Unlock()
		if seen >= rev {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-e.stop:
			return
		}
	}
}

func (e *Etcd) markSeen(rev int64) {
	e.seenMu.Lock()
	defer e.seenMu.Unlock()
	if rev > e.seen {
		e.seen = rev
		close(e.seenCh)
		e.seenCh = make(chan struct{})
	}
}

// leaseGone is called by a write that found the lease expired: the sync
// routine takes a new one and writes this host's rows again.
func (e *Etcd) leaseGone(lease clientv3.LeaseID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lease == lease && lease != 0 {
		e.lease = 0
		close(e.leaseBad)
		e.leaseBad = make(chan struct{})
	}
}

// routineSync keeps this host's copy of the tables and its lease: one
// session at a time, each a full read then a watch, started again after
// any failure (etcd unreachable, the watch compacted or cancelled).
func (e *Etcd) routineSync() {
	defer e.wg.Done()
	backoff := 100 * time.Millisecond
	defer e.setHealth(false, errors.New("stopped"))
	for e.ctx.Err() == nil { // cancelled by Close, and by Revoke
		start := time.Now()
		err := e.session()
		if e.ctx.Err() != nil {
			return
		}
		e.setHealth(false, err)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-time.After(backoff):
		case <-e.ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// session is one connected period; it returns why it ended.
func (e *Etcd) session() error {
	ctx, cancel := context.WithCancel(e.ctx) // ends this session's watch and renewals
	defer cancel()
	if err := e.checkMeta(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	bad, redo := e.leaseBad, e.redo
	e.mu.Unlock()
	ka, err := e.keepLease(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.lease != 0 {
		// A regrant in keepLease replaced the channel: watch the new one
		// (a loss reported since is on it).
		bad = e.leaseBad
	}
	e.mu.Unlock()
	rev, err := e.resync(ctx)
	if err != nil {
		return err
	}
	e.setHealth(true, nil)
	select {
	case <-e.synced:
	default:
		close(e.synced)
	}
	if testHookBeforeWatch != nil {
		testHookBeforeWatch(e, rev)
	}
	wch := e.cli.Watch(clientv3.WithRequireLeader(ctx), e.rows, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bad:
			return errors.New("this host's lease expired: taking a new one and writing its rows again")
		case <-redo:
			return errors.New("a delete of this host's etcd did not take: reading the tables again to finish it")
		case _, ok := <-ka:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err() // stopping (Revoke, Close): the lease is theirs to give back
				}
				e.leaseGone(e.currentLease())
				return errors.New("this host's lease could not be renewed: taking a new one and writing its rows again")
			}
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if resp.CompactRevision != 0 {
				return fmt.Errorf("watch fell behind compaction at revision %d: reading everything again", resp.CompactRevision)
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			// Seen up to the last event: a batch of a long catch-up may
			// carry a header revision beyond its events. A response with
			// no events (progress) is seen up to its header.
			seen := resp.Header.Revision
			if n := len(resp.Events); n > 0 {
				seen = resp.Events[n-1].Kv.ModRevision
			}
			for _, ev := range resp.Events {
				e.apply(ev)
			}
			e.markSeen(seen)
		}
	}
}

// testHookBeforeWatch, set by tests before any Etcd starts, runs between
// a session's full read (at revision rev) and its watch.
var testHookBeforeWatch func(e *Etcd, rev int64)

func (e *Etcd) currentLease() clientv3.LeaseID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lease
}

// apply brings one watch event into this host's copy.
func (e *Etcd) apply(ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		if sk, ok := e.parseSlot(ev.Kv.Key); ok {
			e.st.dropSlot(sk)
		} else {
			e.malformed.Add(1)
		}
		return
	}
	if en, ok := e.entryOf(ev.Kv); ok {
		e.st.setSlot(en)
	}
}

// etcdMeta is the value of PREFIX/meta.
type etcdMeta struct {
	Format int `json:"format"`
}

// checkMeta makes sure the prefix holds vxnet's tables in a format this
// version reads, writing the marker on first use.
func (e *Etcd) checkMeta(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.ecfg.RequestTimeout)
	defer cancel()
	key := e.ecfg.Prefix + "/meta"
	b, _ := json.Marshal(etcdMeta{Format: EtcdFormat})
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if resp.Succeeded {
		e.log.Info("etcd store: new prefix", "prefix", e.ecfg.Prefix)
		return nil
	}
	got := resp.Responses[0].GetResponseRange().GetKvs()
	var m etcdMeta
	if len(got) != 1 || json.Unmarshal(got[0].Value, &m) != nil || m.Format < 1 {
		return fmt.Errorf("%s does not hold vxnet's marker: is prefix %s another program's?", key, e.ecfg.Prefix)
	}
	if m.Format > EtcdFormat {
		return fmt.Errorf("%s: the tables are in format %d, this vxnet reads format %d: upgrade this host", key, m.Format, EtcdFormat)
	}
	return nil
}

// keepLease makes sure this host has a lease and returns the channel of
// its renewals (closed when renewing fails for good).
func (e *Etcd) keepLease(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	lease := e.currentLease()
	if lease != 0 {
		// Still alive? KeepAlive would not say: a lease that expired while
		// no session renewed it would fail every write later.
		tctx, cancel := context.WithTimeout(ctx, e.ecfg.RequestTimeout)
		ttl, err := e.cli.TimeToLive(tctx, lease)
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return nil, fmt.Errorf("checking lease %x: %w", lease, err)
		}
		if err == nil && ttl.TTL > 0 {
			if ka, err := e.cli.KeepAlive(ctx, lease); err == nil {
				return ka, nil
			}
		}
		e.leaseGone(lease)
	}
	gctx, cancel := context.WithTimeout(ctx, e.ecfg.RequestTimeout)
	resp, err := e.cli.Grant(gctx, int64((e.ecfg.LeaseTTL+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("taking a lease: %w", err)
	}
	ka, err := e.cli.KeepAlive(ctx, resp.ID)
	if err != nil {
		return nil, fmt.Errorf("renewing lease %x: %w", resp.ID, err)
	}
	e.mu.Lock()
	e.lease = resp.ID
	e.mu.Unlock()
	return ka, nil
}

// resync reads every row, makes etcd hold exactly this host's own rows
// (written again where missing, changed or on an old lease; deleted where
// this host does not hold them, unless it is adopting them), and makes
// this host's copy what etcd holds. It returns the revision read.
func (e *Etcd) resync(ctx context.Context) (int64, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	for round := 0; ; round++ {
		rctx, cancel := context.WithTimeout(ctx, e.ecfg.RequestTimeout)
		resp, err := e.cli.Get(rctx, e.rows, clientv3.WithPrefix())
		cancel()
		if err != nil {
			return 0, fmt.Errorf("reading the tables: %w", err)
		}
		entries := make([]Entry, 0, len(resp.Kvs))
		leases := map[rowKey]clientv3.LeaseID{}
		for _, kv := range resp.Kvs {
			if en, ok := e.entryOf(kv); ok {
				entries = append(entries, en)
				if en.Owner == e.st.self {
					leases[rowKey{en.Table, en.Key}] = clientv3.LeaseID(kv.Lease)
				}
			}
		}
		fixed, err := e.fixOwn(ctx, entries, leases, round)
		if err != nil {
			return 0, err
		}
		if fixed {
			continue // read again, with this host's rows as they now are
		}
		e.st.replaceAll(e.dropHeld(entries, leases))
		e.markSeen(resp.Header.Revision)
		return resp.Header.Revision, nil
	}
}

// dropHeld leaves out the rows under this host's name that it does not
// hold and another live lease does (see fixOwn): they are not this host's
// to act on.
func (e *Etcd) dropHeld(entries []Entry, leases map[rowKey]clientv3.LeaseID) []Entry {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := entries[:0]
	for _, en := range entries {
		k := rowKey{en.Table, en.Key}
		if _, mine := e.own[k]; en.Owner == e.st.self && !mine && !e.st.cluster[en.Table] && leases[k] != 0 && leases[k] != e.lease {
			continue
		}
		out = append(out, en)
	}
	return out
}

// fixOwn writes or deletes this host's rows where etcd differs from what
// this host holds. It reports whether it changed anything.
func (e *Etcd) fixOwn(ctx context.Context, entries []Entry, leases map[rowKey]clientv3.LeaseID, round int) (bool, error) {
	e.mu.Lock()
	lease, adopt := e.lease, e.adopt
	var ops []clientv3.Op
	held := 0
	inEtcd := map[rowKey]bool{}
	for _, en := range entries {
		if en.Owner != e.st.self || e.st.cluster[en.Table] {
			continue
		}
		k := rowKey{en.Table, en.Key}
		inEtcd[k] = true
		v, mine := e.own[k]
		switch {
		case !mine && adopt:
			e.own[k] = append([]byte(nil), en.Value...)
			if leases[k] != lease {
				ops = append(ops, clientv3.OpPut(e.slotPath(en.Table, en.Key, e.st.self), string(en.Value), clientv3.WithLease(lease)))
			}
		case !mine && leases[k] != 0 && leases[k] != lease:
			// Held by another live lease: this host's previous run, which
			// lost its state (the row goes when that lease expires), or
			// another host under this name, whose rows are not this one's
			// to delete.
			held++
		case !mine:
			ops = append(ops, clientv3.OpDelete(e.slotPath(en.Table, en.Key, e.st.self)))
		case string(v) != string(en.Value) || leases[k] != lease:
			ops = append(ops, clientv3.OpPut(e.slotPath(en.Table, en.Key, e.st.self), string(v), clientv3.WithLease(lease)))
		}
	}
	for k, v := range e.own {
		if !inEtcd[k] {
			ops = append(ops, clientv3.OpPut(e.slotPath(k.table, k.key, e.st.self), string(v), clientv3.WithLease(lease)))
		}
	}
	e.mu.Unlock()
	if held > 0 && round == 0 {
		e.log.Warn("rows under this host's name are held by another lease: left for it to expire", "count", held)
	}
	if len(ops) == 0 {
		return false, nil
	}
	if round > 2 {
		return false, errors.New("this host's rows keep changing under it in etcd")
	}
	if lease == 0 {
		return false, errors.New("no lease to write this host's rows with")
	}
	// etcd takes at most 128 operations in one transaction by default.
	for len(ops) > 0 {
		n := min(len(ops), 100)
		tctx, cancel := context.WithTimeout(ctx, e.ecfg.RequestTimeout)
		_, err := e.cli.Txn(tctx).Then(ops[:n]...).Commit()
		cancel()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			e.leaseGone(lease)
		}
		if err != nil {
			return false, fmt.Errorf("writing this host's rows: %w", err)
		}
		ops = ops[n:]
	}
	e.log.Debug("etcd store: this host's rows written again")
	return true, nil
}

// Health is the state of a backend's store, for the API and metrics.
type Health struct {
	Backend   string    `json:"backend"` // "gossip" or "etcd"
	Up        bool      `json:"up"`
	Since     time.Time `json:"since,omitzero"` // when Up last changed
	Error     string    `json:"error,omitempty"`
	Endpoints []string  `json:"endpoints,omitempty"`
	Revision  int64     `json:"revision,omitempty"` // etcd: the revision this host has seen
}

// retry runs a write that is safe to run twice (a put of a value, a
// delete, a claim) until it succeeds, fails for a reason trying again
// cannot change, or ctx ends: a member killed under the request, or an
// election under way, is etcd failing over, which the next try rides
// out. Each try has a third of the time at most, so that one stuck on a
// member that went away leaves time for another.
func retry(ctx context.Context, f func(context.Context) error) error {
	wait := 25 * time.Millisecond
	per := time.Second
	if d, ok := ctx.Deadline(); ok {
		per = max(time.Until(d)/3, 100*time.Millisecond)
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, per)
		err := f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || (!retryable(err) && tctx.Err() == nil) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// retryable reports whether err says etcd could not take the request
// now (no leader, or the connection to a member broke).
func retryable(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}
