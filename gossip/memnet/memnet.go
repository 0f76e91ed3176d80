// Package memnet is an in-memory network for github.com/hashicorp/memberlist:
// it runs many gossip nodes in one process, from a few to about a thousand,
// for benchmarks (`vxnet bench control`) and tests. The product links it only
// for the benchmarks; agents always gossip over UDP and TCP.
//
// Unlike memberlist's own MockNetwork, delivery is buffered and a sender never
// blocks: packets that cannot be queued at the destination are dropped and
// counted, like UDP datagrams on a congested host. Streams are net.Pipe pairs
// and behave like reliable TCP connections.
//
// The network itself models what the benchmarks measure: packet loss and
// nodes that die. Anything more (partitions, packet delay) plugs in as a
// Shaper; package gossiptest has those, for tests.
package memnet

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vxnet/vxnet/gossip"
)

const (
	// packetBuffer is the capacity of each transport's packet channel.
	packetBuffer = 4096
	// streamBuffer is the capacity of each transport's stream channel.
	streamBuffer = 256
)

// Stats are network-wide counters.
type Stats struct {
	// Packets is the number of packets handed to WriteTo/WriteToAddress.
	Packets uint64
	// Dropped is the number of those packets that were not delivered
	// (loss, partition, killed or unknown node, full destination queue).
	Dropped uint64
	// Bytes is the number of bytes sent: packet payloads (delivered or not)
	// plus bytes written to streams.
	Bytes uint64
	// StreamsOpened is the number of successful dials.
	StreamsOpened uint64
}

// A Shaper stands between the nodes of a Network and adds the faults the
// network does not model itself. Its methods are called concurrently, on
// the sender's goroutine.
type Shaper interface {
	// Apart reports whether the nodes named from and to cannot reach each
	// other: packets between them are dropped and dials fail.
	Apart(from, to string) bool
	// Send hands over a packet for dst that survived loss. The Shaper
	// calls deliver, at once or later; a packet delivered once dst is
	// killed or shut down is dropped and counted.
	Send(dst *Transport, deliver func())
	// Forget tells that dst shut down: the Shaper should deliver (and so
	// drop) the packets it still holds for dst now, not later.
	Forget(dst *Transport)
}

// Network connects Transports by address. The zero value is not usable; use
// NewNetwork.
//
// The packet path takes no locks: addresses are looked up in a sync.Map and
// kill and shutdown state are atomic flags on the transports.
type Network struct {
	byAddr sync.Map // address -> *Transport (live ones only)
	shaper Shaper   // nil: nothing between the nodes; never changes

	mu      sync.Mutex // guards the fields below; held only by setup and fault calls
	byName  map[string]*Transport
	sentBy  map[string]*atomic.Uint64 // survives Shutdown and name reuse
	killed  map[string]bool
	counter uint32

	lossBits atomic.Uint64 // math.Float64bits of the loss probability

	rngMu sync.Mutex
	rng   *rand.Rand

	packets       atomic.Uint64
	dropped       atomic.Uint64
	bytes         atomic.Uint64
	streamsOpened atomic.Uint64
}

// NewNetwork returns an empty network. seed drives the loss randomness: one
// seeded generator is consumed in the order packets are sent, so a given
// sequence of sends sees the same drops for the same seed (concurrent
// senders make the order, and so the outcome, vary).
func NewNetwork(seed int64) *Network { return NewShapedNetwork(seed, nil) }

// NewShapedNetwork returns an empty network whose traffic also passes
// through s. It is fixed at creation so the packet path needs no lock to
// read it.
func NewShapedNetwork(seed int64, s Shaper) *Network {
	return &Network{
		shaper: s,
		byName: make(map[string]*Transport),
		sentBy: make(map[string]*atomic.Uint64),
		killed: make(map[string]bool),
		rng:    rand.New(rand.NewSource(seed)),
	}
}

// NewTransport returns a transport for a node with the given name, with a
// fresh unique address of the form "10.x.y.z:7946" (the gossip port, as a
// real cluster's). Names identify nodes for faults and statistics; if a live
// transport with the same name exists, the new one replaces it as the target
// of Kill and Revive.
func (n *Network) NewTransport(name string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.counter++
	k := n.counter
	ip := net.IPv4(10, byte(k>>16), byte(k>>8), byte(k))
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(gossip.DefaultPort))
	sent := n.sentBy[name]
	if sent == nil {
		sent = new(atomic.Uint64)
		n.sentBy[name] = sent
	}
	t := &Transport{
		net:        n,
		name:       name,
		ip:         ip,
		addr:       &Addr{addr: addr, name: name},
		packetCh:   make(chan *memberlist.Packet, packetBuffer),
		streamCh:   make(chan net.Conn, streamBuffer),
		shutdownCh: make(chan struct{}),
		sent:       sent,
		conns:      make(map[*conn]struct{}),
	}
	t.killed.Store(n.killed[name])
	n.byName[name] = t
	n.byAddr.Store(addr, t)
	return t
}

// SetLoss makes the network drop fraction p (clamped to [0,1]) of packets.
// Streams are not affected.
func (n *Network) SetLoss(p float64) {
	if math.IsNaN(p) || p < 0 {
		p = 0
	}
	if p > 1 {
		p = 1
	}
	n.lossBits.Store(math.Float64bits(p))
}

// Kill makes the named node's transport silently drop everything in and out,
// as if its host lost power. Dials to or from it fail immediately and its
// open streams are closed. The memberlist instance using it keeps running.
func (n *Network) Kill(name string) {
	n.mu.Lock()
	n.killed[name] = true
	t := n.byName[name]
	if t != nil {
		t.killed.Store(true)
	}
	n.mu.Unlock()
	if t != nil {
		t.closeConns()
	}
}

// Revive undoes Kill.
func (n *Network) Revive(name string) {
	n.mu.Lock()
	delete(n.killed, name)
	if t := n.byName[name]; t != nil {
		t.killed.Store(false)
	}
	n.mu.Unlock()
}

// CutStreams closes the open streams between nodes the Shaper now keeps
// apart, as a partition cuts TCP connections. A Shaper calls it after a
// change to what Apart reports.
func (n *Network) CutStreams() {
	if n.shaper == nil {
		return
	}
	n.mu.Lock()
	var cut []*conn
	for _, t := range n.byName {
		t.mu.Lock()
		for c := range t.conns {
			if n.shaper.Apart(c.owner.name, c.peer.name) {
				cut = append(cut, c)
			}
		}
		t.mu.Unlock()
	}
	n.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// Stats returns a snapshot of the network counters.
func (n *Network) Stats() Stats {
	return Stats{
		Packets:       n.packets.Load(),
		Dropped:       n.dropped.Load(),
		Bytes:         n.bytes.Load(),
		StreamsOpened: n.streamsOpened.Load(),
	}
}

// BytesSentBy returns the number of bytes of packets and stream writes sent by
// the named node (over all transports that had that name).
func (n *Network) BytesSentBy(name string) uint64 {
	n.mu.Lock()
	c := n.sentBy[name]
	n.mu.Unlock()
	if c == nil {
		return 0
	}
	return c.Load()
}

// route resolves a destination address and reports whether src may talk to
// it.
func (n *Network) route(src *Transport, addr string) (*Transport, error) {
	if src.closed.Load() {
		return nil, errShutdown
	}
	if src.killed.Load() {
		return nil, fmt.Errorf("memnet: %s: network is down (node killed)", src.name)
	}
	v, ok := n.byAddr.Load(addr)
	if !ok {
		return nil, fmt.Errorf("memnet: no route to %s", addr)
	}
	dst := v.(*Transport)
	if dst.killed.Load() || dst.closed.Load() {
		return nil, fmt.Errorf("memnet: %s (%s) is unreachable", addr, dst.name)
	}
	if n.shaper != nil && n.shaper.Apart(src.name, dst.name) {
		return nil, fmt.Errorf("memnet: %s (%s) is unreachable: partitioned", addr, dst.name)
	}
	return dst, nil
}

func (n *Network) countSent(t *Transport, b int) {
	t.sent.Add(uint64(b))
	n.bytes.Add(uint64(b))
}

// lose decides whether to drop a packet.
func (n *Network) lose() bool {
	loss := math.Float64frombits(n.lossBits.Load())
	if loss <= 0 {
		return false
	}
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Float64() < loss
}

// deliver puts a packet on dst's queue without blocking.
func (n *Network) deliver(dst *Transport, buf []byte, from *Addr) {
	if dst.closed.Load() || dst.killed.Load() {
		n.dropped.Add(1)
		return
	}
	p := &memberlist.Packet{Buf: buf, From: from, Timestamp: time.Now()}
	select {
	case dst.packetCh <- p:
	default:
		n.dropped.Add(1)
	}
}

var errShutdown = errors.New("memnet: transport is shut down")

// Addr is the net.Addr of a Transport: String returns "ip:port".
type Addr struct {
	addr string
	name string
}

// Network implements net.Addr.
func (a *Addr) Network() string { return "memnet" }

// String implements net.Addr; it returns "ip:port".
func (a *Addr) String() string { return a.addr }

// Name returns the name of the node owning the address.
func (a *Addr) Name() string { return a.name }

// Transport is one node's attachment to a Network. It implements
// memberlist.NodeAwareTransport.
type Transport struct {
	net        *Network
	name       string
	ip         net.IP
	addr       *Addr
	packetCh   chan *memberlist.Packet
	streamCh   chan net.Conn
	shutdownCh chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
	killed     atomic.Bool
	sent       *atomic.Uint64

	mu    sync.Mutex
	conns map[*conn]struct{}
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Addr returns the transport's address as "ip:port".
func (t *Transport) Addr() string { return t.addr.addr }

// Name returns the name of the transport's node.
func (t *Transport) Name() string { return t.name }

// FinalAdvertiseAddr implements memberlist.Transport; it ignores its
// arguments and returns the transport's own address.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, gossip.DefaultPort, nil
}

// WriteTo implements memberlist.Transport.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. Like UDP, it does
// not report undeliverable packets; it only fails after Shutdown.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	n := t.net
	now := time.Now()
	if t.closed.Load() {
		return now, errShutdown
	}
	n.packets.Add(1)
	n.countSent(t, len(b))
	dst, err := n.route(t, a.Addr)
	if err != nil || n.lose() {
		n.dropped.Add(1)
		return now, nil
	}
	buf := make([]byte, len(b))
	copy(buf, b)
	if n.shaper == nil {
		n.deliver(dst, buf, t.addr)
	} else {
		n.shaper.Send(dst, func() { n.deliver(dst, buf, t.addr) })
	}
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport. It fails if
// the destination is unknown, shut down, killed or partitioned away, or if
// its stream queue stays full for timeout (timeout <= 0 waits indefinitely).
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	n := t.net
	dst, err := n.route(t, a.Addr)
	if err != nil {
		return nil, err
	}
	local, remote := net.Pipe()
	lc := &conn{Conn: local, owner: t, peer: dst}
	rc := &conn{Conn: remote, owner: dst, peer: t}
	if !t.track(lc) {
		local.Close()
		remote.Close()
		return nil, errShutdown
	}
	if !dst.track(rc) {
		lc.Close()
		remote.Close()
		return nil, fmt.Errorf("memnet: no route to %s", a.Addr)
	}
	var timer <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case dst.streamCh <- rc:
		n.streamsOpened.Add(1)
		return lc, nil
	case <-timer:
		err = fmt.Errorf("memnet: dial %s: i/o timeout", a.Addr)
	case <-dst.shutdownCh:
		err = fmt.Errorf("memnet: dial %s: connection refused", a.Addr)
	case <-t.shutdownCh:
		err = errShutdown
	}
	lc.Close()
	rc.Close()
	return nil, err
}

// StreamCh implements memberlist.Transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements memberlist.Transport. It is idempotent. Afterwards the
// node is removed from the network, its open streams are closed, packets to
// it are dropped and dials to it fail.
func (t *Transport) Shutdown() error {
	t.closeOnce.Do(func() {
		n := t.net
		t.closed.Store(true)
		n.byAddr.Delete(t.addr.addr)
		n.mu.Lock()
		if n.byName[t.name] == t {
			delete(n.byName, t.name)
		}
		n.mu.Unlock()
		close(t.shutdownCh)
		t.closeConns()
		if n.shaper != nil {
			n.shaper.Forget(t)
		}
	})
	return nil
}

// track registers c as an open stream of t; it fails if t is shut down.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

func (t *Transport) closeConns() {
	t.mu.Lock()
	cs := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		// Closing one end of a pipe makes the other end fail too, like a
		// reset connection.
		c.Close()
	}
}

// conn is one end of a stream.
type conn struct {
	net.Conn
	owner *Transport
	peer  *Transport
	once  sync.Once
}

func (c *conn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	if k > 0 {
		c.owner.net.countSent(c.owner, k)
	}
	return k, err
}

func (c *conn) Close() error {
	c.once.Do(func() { c.owner.untrack(c) })
	return c.Conn.Close()
}

func (c *conn) LocalAddr() net.Addr  { return c.owner.addr }
func (c *conn) RemoteAddr() net.Addr { return c.peer.addr }
