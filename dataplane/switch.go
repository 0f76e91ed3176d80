package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vxnet/vxnet/dataplane/tun"
	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Underlay is the switch's side towards other hosts: a UDP socket (see
// package udp) read and written in batches.
type Underlay interface {
	// ReadBatch reads datagrams into the start of bufs[i], setting sizes[i]
	// and from[i]. It blocks until at least one arrives and returns
	// net.ErrClosed after Close.
	ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error)
	// NewWriter returns a writer for one packet loop's exclusive use:
	// WriteBatch(bufs, to, hashes) sends bufs[i] to to[i], hashes[i]
	// picking the UDP source port of the flow. Loops never share a writer,
	// so sends need no lock.
	NewWriter() udp.BatchWriter
	// BatchSize is the most datagrams one ReadBatch returns.
	BatchSize() int
	Close() error
}

// Config configures a Switch.
type Config struct {
	// VXLANPort is the UDP port remote VTEPs listen on. Default 4789.
	VXLANPort uint16
	// MTU is the largest inner IP packet a port sends, in bytes. Default
	// 1450 (a 1500-byte underlay minus the 50 bytes VXLAN over IPv4 adds).
	MTU int
	// Logger receives lifecycle messages (never per-packet ones). Nil
	// discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults described in Config.
func DefaultConfig() Config {
	return Config{VXLANPort: vxlan.DefaultPort, MTU: tun.DefaultMTU}
}

// Switch is the VXLAN switch of one host.
type Switch struct {
	cfg      Config
	log      *slog.Logger
	underlay Underlay
	table    atomic.Pointer[Table]
	keys     atomic.Pointer[Keyring]    // encrypted networks' keys (keys.go); nil: none
	pmtu     atomic.Pointer[pathMTUs]   // narrow underlay paths (toobig.go); nil: none
	learned  atomic.Pointer[learnedMap] // addresses no table lists, learnt (learned.go)
	learnCh  chan learnOffer            // answers the loops saw, for routineLearn
	held     *heldQueue                 // packets waiting for their address (held.go)
	stats    counters
	batches  *batchPool    // the ports' inside-path batches (see pool.go)
	removals atomic.Uint64 // ports removed so far: batches then forget their writers

	mu         sync.Mutex // guards ports and nextIndex; never taken per packet
	ports      map[*Port]struct{}
	nextIndex  int
	uplinks    map[*Uplink]struct{}
	nextUplink int
	queues     []Underlay // more receive queues on the underlay's port (see AddReceiveQueue)
	closed     bool
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// Port is a local port attached to the switch.
type Port struct {
	sw   *Switch
	dev  tun.Device
	raw  rawReader // the device's descriptor, when it has one (Linux)
	vnet bool      // raw reads carry a virtio-net header
	uso  bool      // the device takes UDP super-packets (see coalesce)
	// newSuperOut returns a writer, for one loop's own use, of packets
	// and TCP or UDP super-packets behind a virtio-net header (see
	// coalesce and portTx.flush); nil when the device cannot take them.
	newSuperOut func() superWriter
	name        string
	index       int
	done        chan struct{}
	once        sync.Once
	closed      atomic.Bool // set when the device is closed
	// rev: the way back of the flows this port sent to services' VIPs
	// (flows.go), written by its inside loop alone; nil until its first.
	rev atomic.Pointer[revTable]
}

// Name returns the name given to AddPort.
func (p *Port) Name() string { return p.name }

// New returns a switch that sends and receives through underlay. It starts
// with an empty table; call SetTable, AddPort and Run.
func New(cfg Config, underlay Underlay) (*Switch, error) {
	if cfg.VXLANPort == 0 {
		cfg.VXLANPort = vxlan.DefaultPort
	}
	if cfg.MTU == 0 {
		cfg.MTU = tun.DefaultMTU
	}
	if cfg.MTU < 576 || cfg.MTU > MaxSegmentSize-Headroom {
		return nil, fmt.Errorf("dataplane: config MTU %d out of range 576-%d", cfg.MTU, MaxSegmentSize-Headroom)
	}
	if underlay == nil {
		return nil, errors.New("dataplane: underlay is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sw := &Switch{cfg: cfg, log: log.With("component", "dataplane"), underlay: underlay, ports: make(map[*Port]struct{}), uplinks: make(map[*Uplink]struct{}),
		learnCh: make(chan learnOffer, learnQueue), held: newHeldQueue(cfg.MTU)}
	sw.batches = newBatchPool(sw, maxBatches())
	empty, _ := NewTable(nil)
	sw.table.Store(empty)
	return sw, nil
}

// SetTable publishes a new forwarding table. Packet loops pick it up at
// their next batch. t must not be modified afterwards.
func (sw *Switch) SetTable(t *Table) { sw.table.Store(t) }

// Table returns the current table.
func (sw *Switch) Table() *Table { return sw.table.Load() }

// Stats returns a copy of the counters. When the underlay keeps its own
// (as udp.Conn does), its truncated datagrams and failed sends are added
// under "underlay_truncated", "underlay_too_big" (too big for their path)
// and "underlay_send_error" (the other failures).
func (sw *Switch) Stats() Stats {
	s := sw.stats.snapshot()
	if u, ok := sw.underlay.(interface{ Stats() udp.Stats }); ok {
		us := u.Stats()
		s.Drops["underlay_truncated"] = us.RxTruncated
		s.Drops["underlay_send_error"] = us.TxErrors - min(us.TxTooBig, us.TxErrors)
		s.Drops["underlay_too_big"] = us.TxTooBig
	}
	return s
}

// rawReader reads a device's queued packets directly (tun.Raw).
type rawReader interface {
	ReadBatch(bufs [][]byte, offset int, sizes []int, wait bool) (n int, drained bool, err error)
	ReadBatchLent(l tun.Lender, offset int) (n int, drained bool, err error)
}

// AddPort attaches a device and starts reading from it. The port forwards
// nothing until a table lists it. The switch owns dev from now on and
// closes it in RemovePort or Close.
func (sw *Switch) AddPort(name string, dev tun.Device) (*Port, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return nil, errors.New("dataplane: switch closed")
	}
	p := &Port{sw: sw, dev: dev, name: name, index: sw.nextIndex, done: make(chan struct{})}
	if raw, err := tun.NewRaw(dev); err == nil {
		p.raw, p.vnet, p.uso = raw, raw.VnetHdr(), raw.USO()
		if p.vnet {
			p.newSuperOut = func() superWriter { return raw.NewWriter() }
		}
	}
	sw.nextIndex++
	sw.ports[p] = struct{}{}
	sw.wg.Add(1)
	go func() {
		defer sw.wg.Done()
		defer close(p.done)
		sw.routineReadFromPort(p)
	}()
	return p, nil
}

// RemovePort closes the port's device and waits for its loop to stop.
// Remove it from the table first, so that no other loop writes to it.
func (sw *Switch) RemovePort(p *Port) {
	sw.mu.Lock()
	delete(sw.ports, p)
	sw.mu.Unlock()
	p.close()
	sw.removals.Add(1)
	<-p.done
}

func (p *Port) close() {
	p.once.Do(func() {
		p.closed.Store(true)
		p.dev.Close()
	})
}

// Run reads the underlay until ctx ends or the switch is closed. It returns
// nil after Close or cancellation, and the read error otherwise.
func (sw *Switch) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { sw.Close() })
	defer stop()
	sw.mu.Lock()
	queues := append([]Underlay(nil), sw.queues...)
	sw.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sw.routineLearn(rctx)
	if src, ok := sw.underlay.(tooBigSource); ok {
		go sw.routinePathMTU(rctx, src)
	}
	for _, q := range queues {
		go func() {
			if err := sw.routineReadFromUnderlay(q); err != nil {
				// Closed, so that the kernel gives its flows to the
				// queues still read.
				q.Close()
				sw.log.Error("receive queue stopped", "error", err)
			}
		}()
	}
	return sw.routineReadFromUnderlay(sw.underlay)
}

// AddReceiveQueue adds a socket that receives on the underlay's port too
// (udp.Config.ReusePort): the kernel spreads flows over the queues, and
// each queue has a loop of its own, so several cores decapsulate while
// every flow stays in order. Call it before Run; the switch closes q.
func (sw *Switch) AddReceiveQueue(q Underlay) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return errors.New("dataplane: switch closed")
	}
	sw.queues = append(sw.queues, q)
	return nil
}

// Close stops every loop and closes the underlay and all ports. It is
// idempotent.
func (sw *Switch) Close() error {
	sw.closeOnce.Do(func() {
		sw.mu.Lock()
		sw.closed = true
		ports := make([]*Port, 0, len(sw.ports))
		for p := range sw.ports {
			ports = append(ports, p)
		}
		uplinks := make([]*Uplink, 0, len(sw.uplinks))
		for u := range sw.uplinks {
			uplinks = append(uplinks, u)
		}
		sw.mu.Unlock()
		for _, u := range uplinks {
			u.close()
		}
		sw.underlay.Close()
		for _, q := range sw.queues {
			q.Close()
		}
		for _, p := range ports {
			p.close()
		}
		sw.wg.Wait()
	})
	return nil
}

// vtepAddr is the UDP destination of a VTEP.
func (sw *Switch) vtepAddr(a netip.Addr) netip.AddrPort {
	return netip.AddrPortFrom(a, sw.cfg.VXLANPort)
}
