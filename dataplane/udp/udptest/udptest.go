// Package udptest is an in-memory stand-in for the udp underlay port, for
// tests of code built on top of it.
//
// A Network connects Conns by IP address. Every Conn listens on port 4789
// (vxlan.DefaultPort) and mirrors the batch API of *udp.Conn, captured by the
// BatchConn interface:
//
//	ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error)
//	WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error)
//	BatchSize() int
//	LocalAddr() netip.AddrPort
//	Close() error
//
// Datagrams are copied on write and queued in the destination Conn's
// buffered channel. A datagram is dropped and counted when the destination
// address has no open Conn, the destination port is not 4789, or the
// destination queue is full. Source ports are always 4789 (the flow hash is
// ignored). All methods are safe for concurrent use.
package udptest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// BatchConn is the subset of *udp.Conn that *Conn implements.
type BatchConn interface {
	ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error)
	WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error)
	BatchSize() int
	LocalAddr() netip.AddrPort
	Close() error
}

var (
	_ BatchConn = (*udp.Conn)(nil)
	_ BatchConn = (*Conn)(nil)
)

const (
	// QueueLen is the number of datagrams a Conn buffers before dropping.
	QueueLen = 1024
	// BatchSize is what Conn.BatchSize reports.
	BatchSize = udp.DefaultBatchSize
)

type datagram struct {
	data []byte
	from netip.AddrPort
}

// Network is an in-memory IP network. The zero value is ready to use.
type Network struct {
	mu      sync.Mutex
	conns   map[netip.Addr]*Conn
	dropped atomic.Uint64
}

// Conn returns a new Conn bound to addr:4789. IPv4-mapped addresses are
// unmapped. It panics if addr is invalid or already has an open Conn.
func (n *Network) Conn(addr netip.Addr) *Conn {
	if !addr.IsValid() {
		panic("udptest: invalid address")
	}
	addr = addr.Unmap()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = make(map[netip.Addr]*Conn)
	}
	if _, ok := n.conns[addr]; ok {
		panic(fmt.Sprintf("udptest: address %v already in use", addr))
	}
	c := &Conn{
		net:   n,
		local: netip.AddrPortFrom(addr, vxlan.DefaultPort),
		queue: make(chan datagram, QueueLen),
		done:  make(chan struct{}),
	}
	n.conns[addr] = c
	return c
}

// Dropped is the number of datagrams dropped network-wide (no destination or
// queue full).
func (n *Network) Dropped() uint64 { return n.dropped.Load() }

func (n *Network) lookup(a netip.Addr) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[a]
}

// Conn is one endpoint on a Network.
type Conn struct {
	net   *Network
	local netip.AddrPort
	queue chan datagram
	done  chan struct{}
	once  sync.Once

	rxPackets, rxTruncated, txPackets, txErrors atomic.Uint64
}

// BatchSize returns the maximum number of datagrams per ReadBatch call.
func (c *Conn) BatchSize() int { return BatchSize }

// LocalAddr returns addr:4789.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Stats returns the counters; TxErrors counts datagrams this Conn sent that
// were dropped.
func (c *Conn) Stats() udp.Stats {
	return udp.Stats{
		RxPackets:   c.rxPackets.Load(),
		RxTruncated: c.rxTruncated.Load(),
		TxPackets:   c.txPackets.Load(),
		TxErrors:    c.txErrors.Load(),
	}
}

// Close detaches the Conn from the network and unblocks readers. Idempotent.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.net.mu.Lock()
		if c.net.conns[c.local.Addr()] == c {
			delete(c.net.conns, c.local.Addr())
		}
		c.net.mu.Unlock()
		close(c.done)
	})
	return nil
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// ReadBatch blocks until at least one datagram is queued, then returns up to
// len(bufs) (at most BatchSize) of them like udp.Conn.ReadBatch. After Close
// it returns net.ErrClosed.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	n := min(len(bufs), BatchSize)
	if n == 0 {
		return 0, nil
	}
	if len(sizes) < n || len(from) < n {
		return 0, fmt.Errorf("udptest: ReadBatch: sizes or from shorter than bufs")
	}
	k := 0
	for k == 0 {
		if c.isClosed() {
			return 0, net.ErrClosed
		}
		var d datagram
		select {
		case d = <-c.queue:
		case <-c.done:
			return 0, net.ErrClosed
		}
		for {
			if len(d.data) > len(bufs[k]) {
				c.rxTruncated.Add(1)
			} else {
				sizes[k] = copy(bufs[k], d.data)
				from[k] = d.from
				k++
			}
			if k == n {
				break
			}
			var ok bool
			select {
			case d = <-c.queue:
				ok = true
			default:
			}
			if !ok {
				break
			}
		}
	}
	c.rxPackets.Add(uint64(k))
	return k, nil
}

// WriteBatch copies bufs[i] into the queue of the Conn owning to[i]'s
// address. Undeliverable datagrams are dropped and counted, not returned as
// errors. After Close it returns net.ErrClosed.
func (c *Conn) WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error) {
	if len(to) < len(bufs) || len(hashes) < len(bufs) {
		return 0, fmt.Errorf("udptest: WriteBatch: to or hashes shorter than bufs")
	}
	sent := 0
	for i, b := range bufs {
		if c.isClosed() {
			return sent, net.ErrClosed
		}
		dst := to[i]
		var peer *Conn
		if dst.Port() == vxlan.DefaultPort {
			peer = c.net.lookup(dst.Addr().Unmap())
		}
		if peer == nil || !peer.deliver(datagram{data: append([]byte(nil), b...), from: c.local}) {
			c.txErrors.Add(1)
			c.net.dropped.Add(1)
			continue
		}
		sent++
		c.txPackets.Add(1)
	}
	return sent, nil
}

func (c *Conn) deliver(d datagram) bool {
	if c.isClosed() {
		return false
	}
	select {
	case c.queue <- d:
		return true
	default:
		return false
	}
}

// NewWriter implements the udp.Conn method: the fake's WriteBatch is safe
// for concurrent use, so every writer is the Conn itself.
func (c *Conn) NewWriter() udp.BatchWriter { return c }
