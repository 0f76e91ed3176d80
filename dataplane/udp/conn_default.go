//go:build !linux

package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// Conn is the VXLAN underlay port. This portable fallback moves one datagram
// per system call with net.UDPConn; see the Linux implementation for the
// batched one.
type Conn struct {
	batch   int
	lis     *net.UDPConn
	local   netip.AddrPort
	senders []*net.UDPConn // senders[0] may be lis
	own     bool           // senders are separate sockets
	ports   []uint16
	stats   counters

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error

	readMu  sync.Mutex
	writeMu sync.Mutex

	tooBig tooBigLog
}

func listen(cfg Config, anyPort bool) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	port := cfg.Port
	if anyPort {
		port = 0
	}
	c := &Conn{batch: cfg.BatchSize, tooBig: newTooBigLog()}
	c.lis, err = openSocket(cfg, port, nil)
	if err != nil {
		return nil, err
	}
	setBuffers(c.lis, cfg.SocketBuffer)
	c.local = udpAddrPort(c.lis.LocalAddr())
	if cfg.SourcePorts == 0 {
		c.senders = []*net.UDPConn{c.lis}
	} else {
		c.own = true
	}
	for i := 0; i < cfg.SourcePorts; i++ {
		uc, err := openSocket(cfg, 0, nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		setBuffers(uc, cfg.SocketBuffer)
		c.senders = append(c.senders, uc)
	}
	for _, s := range c.senders {
		c.ports = append(c.ports, udpAddrPort(s.LocalAddr()).Port())
	}
	return c, nil
}

func setBuffers(uc *net.UDPConn, size int) {
	// Best effort: the OS may clamp the size.
	_ = uc.SetReadBuffer(size)
	_ = uc.SetWriteBuffer(size)
}

// BatchSize is the maximum number of datagrams per ReadBatch call.
func (c *Conn) BatchSize() int { return c.batch }

// LocalAddr is the address of the listening socket.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// SourcePorts returns the local ports of the send sockets, indexed by
// hash % len; it is the listening port alone when there are no send sockets.
func (c *Conn) SourcePorts() []uint16 { return append([]uint16(nil), c.ports...) }

// Stats returns a copy of the counters.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// Close closes all sockets and unblocks pending calls. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err := c.lis.Close()
		if c.own {
			for _, s := range c.senders {
				if e := s.Close(); e != nil && err == nil {
					err = e
				}
			}
		}
		c.closeErr = err
	})
	return c.closeErr
}

func (c *Conn) ioErr(err error) error {
	if c.closed.Load() || errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// ReadBatch blocks until a datagram arrives and returns it in bufs[0]; this
// fallback returns one datagram per call. After Close it returns
// net.ErrClosed.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(sizes) < 1 || len(from) < 1 {
		return 0, errShortSizes
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		n, _, _, ap, err := c.lis.ReadMsgUDPAddrPort(bufs[0], nil)
		if err != nil {
			if isTruncated(err) {
				c.stats.rxTruncated.Add(1)
				continue
			}
			if isTransient(err) {
				continue
			}
			return 0, c.ioErr(err)
		}
		sizes[0] = n
		from[0] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		c.stats.rxPackets.Add(1)
		return 1, nil
	}
}

// WriteBatch sends bufs[i] to to[i] from the socket selected by hashes[i].
// Failed packets are dropped and counted; it returns the number sent and
// net.ErrClosed after Close.
func (c *Conn) WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error) {
	if len(to) < len(bufs) || len(hashes) < len(bufs) {
		return 0, errShortTo
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	sent := 0
	for i, b := range bufs {
		if c.closed.Load() {
			return sent, net.ErrClosed
		}
		s := c.senders[(hashes[i]&^TrainStart)%uint32(len(c.senders))]
		if _, err := s.WriteToUDPAddrPort(b, to[i]); err != nil {
			if c.closed.Load() || errors.Is(err, net.ErrClosed) {
				return sent, net.ErrClosed
			}
			c.stats.txErrors.Add(1)
			if isTruncated(err) { // WSAEMSGSIZE: too big for the path
				c.stats.txTooBig.Add(1)
				c.tooBig.note(to[i].Addr().Unmap())
			}
			continue
		}
		sent++
		c.stats.txPackets.Add(1)
	}
	return sent, nil
}

// isTruncated reports a datagram that did not fit (Windows reports it as
// WSAEMSGSIZE, 10040).
func isTruncated(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && errno == 10040
}

// isTransient reports errors after which reading can simply go on, such as
// Windows' WSAECONNRESET (10054) caused by an earlier ICMP port unreachable.
func isTransient(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && errno == 10054
}

// NewWriter returns a writer for one goroutine. On this platform writers
// share the sockets one packet at a time, behind Conn's lock.
func (c *Conn) NewWriter() BatchWriter { return c }
