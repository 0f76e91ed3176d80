// Package gossip is vxnet's cluster membership and broadcast layer: a
// wrapper over hashicorp/memberlist (SWIM failure detection, encrypted
// UDP/TCP gossip) that adds what a long-lived cluster needs: seeds joined
// with retries and rejoined periodically (so partitions heal), graceful
// leave, membership events, node metadata, a keyring for key rotation, and
// a broadcast queue for the layer above (kvs).
//
// The layer above plugs in as an Application: it receives messages and
// membership events, and takes part in memberlist's periodic push/pull
// state exchange. Nothing here knows what the messages mean.
package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/internal/queue"
)

// Application is what a Node carries messages for. All methods are called
// from memberlist's goroutines and must not block; byte slices passed in are
// only valid during the call.
type Application interface {
	// NotifyMsg handles a message from another node: a broadcast or a
	// direct send.
	NotifyMsg(b []byte)
	// LocalState returns the state summary sent in a push/pull exchange.
	// Keep it small: memberlist refuses push/pull states over 20 MB.
	LocalState(join bool) []byte
	// MergeRemoteState handles the other side's LocalState.
	MergeRemoteState(b []byte, join bool)
	// MemberEvent reports a change of membership.
	MemberEvent(ev MemberEvent)
}

// EventType says what happened to a member. Append-only.
type EventType int

const (
	// EventJoin: a node became alive (joined or came back).
	EventJoin EventType = iota
	// EventLeave: a node left gracefully.
	EventLeave
	// EventFail: a node was declared dead by failure detection.
	EventFail
	// EventUpdate: a node's metadata changed.
	EventUpdate
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventFail:
		return "fail"
	case EventUpdate:
		return "update"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Member is a node of the cluster.
type Member struct {
	Name string
	Addr string // host:port of its gossip endpoint
	Meta Meta
}

// MemberEvent is a membership change.
type MemberEvent struct {
	Type   EventType
	Member Member
}

// Node is this host's membership in the cluster.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	app     Application
	meta    atomic.Pointer[[]byte] // the encoded Meta this node announces
	keyring *memberlist.Keyring    // shared with memberlist; nil without encryption

	// nameTakenBy is the address of another live node that announced
	// this node's name, as memberlist's conflict check last saw it.
	nameTakenBy atomic.Pointer[string]
	nameSaidAt  atomic.Int64 // unix nanoseconds of the last warning about it

	mu       sync.Mutex
	subs     []*queue.Unbounded[MemberEvent]
	members  map[string]*memberlist.Node // our own copies, see snapshot
	leaving  map[string]time.Time        // nodes that announced they are leaving
	failed   map[string]time.Time        // nodes reported failed, in case their leave notice comes late
	stop     chan struct{}
	done     sync.WaitGroup
	shutdown sync.Once
}

// ErrShutdown is returned by operations on a node that was shut down.
var ErrShutdown = errors.New("gossip: node shut down")

// New starts a node. It joins nobody yet: call Join, which contacts
// cfg.Seeds; afterwards seeds that drop out are rejoined every
// RejoinInterval. app may be nil.
func New(cfg Config, app Application) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log.With("component", "gossip", "node", cfg.Name), app: app, stop: make(chan struct{}),
		members: map[string]*memberlist.Node{}, leaving: map[string]time.Time{}, failed: map[string]time.Time{}}
	meta, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("gossip: config Meta: %w", err)
	}
	n.meta.Store(&meta)
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	n.keyring = mc.Keyring
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Conflict = (*conflicts)(n)
	mc.Logger = newMemberlistLogger(n.log)
	if cfg.Tune != nil {
		cfg.Tune(mc)
	}
	n.queue = &memberlist.TransmitLimitedQueue{NumNodes: n.numNodes, RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start %s: %w", cfg.Name, err)
	}
	n.ml = ml
	n.log.Info("gossip started", "underlayAddr", n.LocalAddr(), "profile", cfg.Profile.String(), "encrypted", len(cfg.Keys) > 0)
	if len(cfg.Seeds) > 0 && cfg.RejoinInterval > 0 {
		n.done.Add(1)
		go n.routineRejoin()
	}
	return n, nil
}

func (n *Node) numNodes() int {
	if n.ml == nil {
		return 1
	}
	return n.ml.NumMembers()
}

// Name returns this node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Join contacts the seeds until one answers or timeout passes, and returns
// how many nodes it reached. With no seeds it returns 0 at once.
func (n *Node) Join(timeout time.Duration) (int, error) {
	if len(n.cfg.Seeds) == 0 {
		return 0, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		k, err := n.ml.Join(n.cfg.Seeds)
		if k > 0 {
			return k, nil
		}
		if time.Now().Add(n.cfg.JoinRetry).After(deadline) {
			return 0, fmt.Errorf("gossip: join %v: %w", n.cfg.Seeds, err)
		}
		select {
		case <-time.After(n.cfg.JoinRetry):
		case <-n.stop:
			return 0, ErrShutdown
		}
	}
}

// routineRejoin joins again every seed that is not a member, so that a
// partition heals once the network does even if every node saw the others
// die.
func (n *Node) routineRejoin() {
	defer n.done.Done()
	n.log.Debug("rejoin routine started")
	defer n.log.Debug("rejoin routine stopped")
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		members := map[string]bool{}
		for _, m := range n.snapshot() {
			members[m.Address()] = true
		}
		var lost []string
		for _, s := range n.cfg.Seeds {
			// Seeds may be names; members are known by address.
			if a, err := net.ResolveTCPAddr("tcp", s); err == nil && members[a.String()] {
				continue
			}
			if !members[s] {
				lost = append(lost, s)
			}
		}
		if len(lost) > 0 {
			if k, err := n.ml.Join(lost); k > 0 {
				n.log.Info("rejoined seeds", "peerAddr", fmt.Sprint(lost), "nodes", k)
			} else if err != nil {
				n.log.Debug("rejoin failed", "peerAddr", fmt.Sprint(lost), "error", err)
			}
		}
	}
}

// Members returns the live members, this node included.
func (n *Node) Members() []Member {
	var out []Member
	for _, m := range n.snapshot() {
		out = append(out, toMember(m))
	}
	return out
}

// NumMembers is the number of live members, this node included.
func (n *Node) NumMembers() int { return n.ml.NumMembers() }

func toMember(m *memberlist.Node) Member {
	var meta Meta
	json.Unmarshal(m.Meta, &meta) // bad metadata from a peer reads as empty
	return Member{Name: m.Name, Addr: m.Address(), Meta: meta}
}

// Broadcast queues msg for piggybacked gossip to every member. key names
// what the message is about: a newer message with the same key replaces
// one still queued.
func (n *Node) Broadcast(key string, msg []byte) {
	n.queue.QueueBroadcast(&broadcast{key: key, msg: frame(kindApp, msg)})
}

// RandomMembers returns up to k live members other than this node, in
// random order.
func (n *Node) RandomMembers(k int) []string {
	members := n.snapshot()
	out := make([]string, 0, k)
	for _, i := range rand.Perm(len(members)) {
		if len(out) == k {
			break
		}
		if m := members[i]; m.Name != n.cfg.Name {
			out = append(out, m.Name)
		}
	}
	return out
}

// SendBestEffort sends msg to the named member in one UDP packet (it must
// fit memberlist's UDP buffer, about 1400 bytes with encryption).
func (n *Node) SendBestEffort(name string, msg []byte) error {
	n.mu.Lock()
	m := n.members[name]
	n.mu.Unlock()
	if m == nil {
		return fmt.Errorf("gossip: send to %s: not a live member", name)
	}
	return n.ml.SendBestEffort(m, frame(kindApp, msg))
}

// SendReliable sends msg to the named member over a stream (TCP).
func (n *Node) SendReliable(name string, msg []byte) error {
	n.mu.Lock()
	m := n.members[name]
	n.mu.Unlock()
	if m != nil {
		return n.ml.SendReliable(m, frame(kindApp, msg))
	}
	return fmt.Errorf("gossip: send to %s: not a live member", name)
}

// QueuedBroadcasts is the number of messages waiting in the queue.
func (n *Node) QueuedBroadcasts() int { return n.queue.NumQueued() }

// Leave tells the cluster this node is going and waits up to timeout for
// the message to spread. Call Shutdown afterwards.
//
// memberlist tells the others that a node is gone but not whether it left
// or died, so Leave first announces the departure itself (to every member,
// and through the gossip queue); members that hear it report EventLeave,
// the others EventFail.
func (n *Node) Leave(timeout time.Duration) error {
	notice := frame(kindLeave, []byte(n.cfg.Name))
	for _, m := range n.snapshot() {
		if m.Name != n.cfg.Name {
			n.ml.SendBestEffort(m, notice)
		}
	}
	n.queue.QueueBroadcast(&broadcast{key: "\x00leave", msg: notice})
	return n.ml.Leave(timeout)
}

// Shutdown stops the node without telling anyone (others will detect it as
// failed unless Leave was called first). Idempotent.
func (n *Node) Shutdown() error {
	var err error
	n.shutdown.Do(func() {
		close(n.stop)
		err = n.ml.Shutdown()
		n.done.Wait()
		n.mu.Lock()
		for _, q := range n.subs {
			q.Close()
		}
		n.subs = nil
		n.mu.Unlock()
		n.log.Info("gossip stopped")
	})
	return err
}

// snapshot returns the live members as this node's own copies.
// memberlist's Members returns pointers into its state that it rewrites
// on every alive message, so reading them races; the copies are taken in
// the event callbacks, under memberlist's lock, and never change.
func (n *Node) snapshot() []*memberlist.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*memberlist.Node, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	return out
}

// IsMember reports whether name is a live member (this node included).
func (n *Node) IsMember(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members[name] != nil
}

// LocalAddr is this node's gossip address (host:port), for others' seeds.
func (n *Node) LocalAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.members[n.cfg.Name]; m != nil {
		return m.Address()
	}
	return ""
}

func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%d bytes encoded, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// SetMeta announces new metadata for this node: every member sees it
// (EventUpdate) as the announcement spreads.
func (n *Node) SetMeta(m Meta) error {
	b, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("gossip: meta: %w", err)
	}
	n.meta.Store(&b)
	return n.ml.UpdateNode(10 * time.Second)
}
