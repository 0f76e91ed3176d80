//go:build linux

package udp

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is the VXLAN underlay port. On Linux it reads and writes batches with
// recvmmsg/sendmmsg and does not allocate per call.
type Conn struct {
	batch   int
	family  int // AF_INET or AF_INET6, shared by all sockets
	lis     *net.UDPConn
	lisRC   syscall.RawConn
	local   netip.AddrPort
	senders []*sender
	ports   []uint16
	stats   counters
	zones   zoneCache

	closeOnce sync.Once
	closed    atomic.Bool
	gsoOff    atomic.Bool // UDP GSO failed once: send datagrams one by one
	groOnce   sync.Once
	gro       bool // UDP_GRO is on: received datagrams may be coalesced
	closeErr  error

	readMu sync.Mutex
	rx     mmsgScratch
	rxWant int
	rxGot  int
	rxErr  syscall.Errno
	recvFn func(fd uintptr) bool // c.doRecvLocked, bound once

	writeMu sync.Mutex // guards shared, the Writer behind Conn.WriteBatch
	shared  *Writer

	tooBig tooBigLog
}

// Writer sends datagrams for one goroutine. It owns the sendmmsg scratch
// of every send socket, so writers of different goroutines never wait for
// one another. A Writer must not be used by two goroutines at once.
type Writer struct {
	c       *Conn
	senders []*sender // same sockets as Conn.senders, own scratch
	arena   gatherArena
}

var _ BatchWriter = (*Writer)(nil)

// NewWriter returns a Writer for one goroutine's exclusive use.
func (c *Conn) NewWriter() BatchWriter {
	w := &Writer{c: c}
	for _, s := range c.senders {
		ns := c.newSender(s.conn, s.rc, s.port)
		ns.arena = &w.arena
		w.senders = append(w.senders, ns)
	}
	return w
}

// sender is one send socket with its own sendmmsg scratch.
type sender struct {
	c       *Conn
	conn    *net.UDPConn // nil when this is the listening socket
	rc      syscall.RawConn
	port    uint16
	tx      mmsgScratch
	n       int  // messages queued
	off     int  // messages handled (sent or dropped)
	sent    int  // messages accepted by the kernel in this flush
	retried bool // first message of tx[off:] already failed once
	err     syscall.Errno
	sendFn  func(fd uintptr) bool // s.doSend, bound once
	gso     gsoScratch
	arena   *gatherArena // its Writer's; nil: an iovec per datagram (BenchmarkGSOTrain compares)
	// one and oneIov send a GSO message's short last datagram alone
	// (sendShortLast): kept here, so that the error path allocates nothing.
	one    unix.Msghdr
	oneIov unix.Iovec
}

func listen(cfg Config, anyPort bool) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Conn{batch: cfg.BatchSize, tooBig: newTooBigLog()}
	c.zones.init()
	port := cfg.Port
	if anyPort {
		port = 0
	}
	dual := cfg.dualStack()
	control := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = setSockopts(int(fd), cfg.SocketBuffer, dual)
			if serr == nil && cfg.ReusePort {
				serr = os.NewSyscallError("setsockopt SO_REUSEPORT", unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	c.lis, err = openSocket(cfg, port, control)
	if err != nil {
		return nil, err
	}
	if c.lisRC, err = c.lis.SyscallConn(); err != nil {
		c.lis.Close()
		return nil, err
	}
	var ferr error
	if err := c.lisRC.Control(func(fd uintptr) {
		c.family, ferr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || ferr != nil {
		c.lis.Close()
		return nil, errors.Join(err, ferr)
	}
	c.local = udpAddrPort(c.lis.LocalAddr())
	c.rx = newMmsgScratch(c.batch)
	c.recvFn = c.doRecvLocked

	if cfg.SourcePorts == 0 {
		c.senders = []*sender{c.newSender(nil, c.lisRC, c.local.Port())}
	}
	// Send sockets take ports in the RFC's range, from a random start
	// (hosts differ) past any in use; never shared (no SO_REUSEPORT).
	sendControl := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setSockopts(int(fd), cfg.SocketBuffer, dual) }); err != nil {
			return err
		}
		return serr
	}
	next := SourcePortMin + rand.IntN(SourcePortMax-SourcePortMin+1)
	for i := 0; i < cfg.SourcePorts; i++ {
		uc, err := openSendSocket(cfg, &next, sendControl)
		if err != nil {
			c.Close()
			return nil, err
		}
		rc, err := uc.SyscallConn()
		if err != nil {
			uc.Close()
			c.Close()
			return nil, err
		}
		c.senders = append(c.senders, c.newSender(uc, rc, udpAddrPort(uc.LocalAddr()).Port()))
	}
	for _, s := range c.senders {
		c.ports = append(c.ports, s.port)
	}
	c.shared = &Writer{c: c, senders: c.senders}
	for _, s := range c.senders {
		s.arena = &c.shared.arena
	}
	return c, nil
}

func (c *Conn) newSender(uc *net.UDPConn, rc syscall.RawConn, port uint16) *sender {
	s := &sender{c: c, conn: uc, rc: rc, port: port, tx: newMmsgScratch(c.batch), gso: newGSOScratch(c.batch)}
	s.sendFn = s.doSend
	return s
}

// openSendSocket binds a send socket to the first free port from *next
// on, wrapping within SourcePortMin-SourcePortMax, and moves *next past
// it. When the range has no port free after sendPortTries, the kernel
// picks one.
func openSendSocket(cfg Config, next *int, control func(network, address string, c syscall.RawConn) error) (*net.UDPConn, error) {
	const span = SourcePortMax - SourcePortMin + 1
	for try := 0; try < sendPortTries; try++ {
		port := SourcePortMin + (*next-SourcePortMin)%span
		*next = port + 1
		uc, err := openSocket(cfg, uint16(port), control)
		if err == nil {
			return uc, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, err
		}
	}
	return openSocket(cfg, 0, control)
}

// sendPortTries bounds the ports openSendSocket tries before it lets the
// kernel choose.
const sendPortTries = 512

// setSockopts sizes the socket buffers (forcing past rmem_max/wmem_max when
// privileged), makes a wildcard IPv6 socket dual-stack, and sets DF on
// every datagram: the kernel must never fragment VXLAN (RFC 7348 §4.3),
// and a datagram too big for its path fails with EMSGSIZE instead.
func setSockopts(fd, size int, dual bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size); err != nil {
			return os.NewSyscallError("setsockopt SO_SNDBUF", err)
		}
	}
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_DOMAIN", err)
	}
	if dual && dom == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if dom == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO); err != nil {
			return os.NewSyscallError("setsockopt IPV6_MTU_DISCOVER", err)
		}
	}
	// On an IPv6 socket too: it governs the IPv4 datagrams a dual-stack
	// socket sends.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil && dom == unix.AF_INET {
		return os.NewSyscallError("setsockopt IP_MTU_DISCOVER", err)
	}
	return nil
}

// BatchSize is the maximum number of datagrams per ReadBatch call and per
// internal sendmmsg call.
func (c *Conn) BatchSize() int { return c.batch }

// LocalAddr is the address of the listening socket.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// SourcePorts returns the local ports of the send sockets, indexed by
// hash % len; it is the listening port alone when there are no send sockets.
func (c *Conn) SourcePorts() []uint16 { return append([]uint16(nil), c.ports...) }

// Stats returns a copy of the counters.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// Close closes all sockets and unblocks pending ReadBatch/WriteBatch calls,
// which then return net.ErrClosed. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err := c.lis.Close()
		for _, s := range c.senders {
			if s.conn != nil {
				if e := s.conn.Close(); e != nil && err == nil {
					err = e
				}
			}
		}
		c.closeErr = err
	})
	return c.closeErr
}

// ioErr maps errors from RawConn.Read/Write to net.ErrClosed after Close.
func (c *Conn) ioErr(err error) error {
	if c.closed.Load() || errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// ReadBatch reads up to len(bufs) datagrams (at most BatchSize). Datagram i
// is copied to the start of bufs[i], its length stored in sizes[i] and its
// sender in from[i]. It blocks until at least one datagram is available.
// Datagrams larger than their buffer are dropped and counted in
// Stats.RxTruncated. After Close it returns net.ErrClosed.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	return c.readBatch(bufs, sizes, nil, from)
}

// ReadBatchGRO is ReadBatch with UDP generic receive offload (UDP_GRO,
// Linux 5.0+), turned on at the first call: a datagram may come back
// coalesced with the ones after it from the same sender, all segs[i] bytes
// long but the last, and sizes[i] is their total; segs[i] is 0 for a
// single datagram. Buffers should hold 64 KB. If the kernel refuses
// UDP_GRO it works as ReadBatch.
func (c *Conn) ReadBatchGRO(bufs [][]byte, sizes, segs []int, from []netip.AddrPort) (int, error) {
	if len(segs) < min(len(bufs), c.batch) {
		return 0, errShortSizes
	}
	c.groOnce.Do(func() {
		c.lisRC.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) == nil {
				c.gro = true
			}
		})
	})
	return c.readBatch(bufs, sizes, segs, from)
}

func (c *Conn) readBatch(bufs [][]byte, sizes, segs []int, from []netip.AddrPort) (int, error) {
	n := min(len(bufs), c.batch)
	if n == 0 {
		return 0, nil
	}
	if len(sizes) < n || len(from) < n {
		return 0, errShortSizes
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for i := 0; i < n; i++ {
		c.rx.setBuf(i, bufs[i])
	}
	defer c.rx.release(n)
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		c.rxWant, c.rxGot, c.rxErr = n, 0, 0
		if err := c.lisRC.Read(c.recvFn); err != nil {
			return 0, c.ioErr(err)
		}
		if c.rxErr != 0 {
			return 0, c.ioErr(os.NewSyscallError("recvmmsg", c.rxErr))
		}
		k, pkts := 0, 0
		for i := 0; i < c.rxGot; i++ {
			m := &c.rx.msgs[i]
			if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
				c.stats.rxTruncated.Add(1)
				continue
			}
			size := int(m.Len)
			if k != i {
				copy(bufs[k], bufs[i][:size])
			}
			sizes[k] = size
			from[k] = getSockaddr(&c.rx.names[i], &c.zones)
			if segs != nil {
				segs[k] = 0
				if c.gro {
					segs[k] = c.rx.groSize(i)
					if segs[k] > 0 {
						pkts += (size + segs[k] - 1) / segs[k]
						k++
						continue
					}
				}
			}
			pkts++
			k++
		}
		if k > 0 {
			c.stats.rxPackets.Add(uint64(pkts))
			return k, nil
		}
	}
}

// doRecvLocked is the RawConn read callback: one non-blocking recvmmsg
// into the receive scratch, which readMu guards.
func (c *Conn) doRecvLocked(fd uintptr) bool {
	for i := 0; i < c.rxWant; i++ {
		c.rx.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		c.rx.msgs[i].Hdr.Flags = 0
		c.rx.msgs[i].Len = 0
		if c.gro {
			c.rx.msgs[i].Hdr.Control = &c.rx.ctrl[i*groCmsgSpace]
			c.rx.msgs[i].Hdr.SetControllen(groCmsgSpace)
		}
	}
	for {
		// Raw: the socket never blocks, and the scheduler's system-call
		// bookkeeping would wake its monitor thread every few tens of
		// microseconds on a busy data plane.
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rx.msgs[0])), uintptr(c.rxWant), 0, 0, 0)
		switch e {
		case 0:
			c.rxGot = int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // park in the netpoller until readable
		default:
			c.rxErr = e
			return true
		}
	}
}

// WriteBatch sends bufs[i] to to[i] from the send socket selected by
// (hashes[i] &^ TrainStart) % len(SourcePorts()); with TrainStart set,
// bufs[i] starts a GSO train of its own. Packets are grouped per socket
// and each group goes out with as few sendmmsg calls as possible;
// len(bufs) may exceed BatchSize. Packets that fail individually (ECONNREFUSED, EHOSTUNREACH,
// ENETUNREACH, EMSGSIZE, invalid or wrong-family destination, ...) are
// dropped and counted in Stats.TxErrors, not returned. It returns the number
// of packets accepted by the kernel — with a nil error that is len(bufs)
// minus the dropped ones — and the first error that stopped it (net.ErrClosed
// after Close). Packets to different send sockets may leave out of order.
func (c *Conn) WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.shared.WriteBatch(bufs, to, hashes)
}

// WriteBatch is Conn.WriteBatch for the goroutine that owns w.
func (w *Writer) WriteBatch(bufs [][]byte, to []netip.AddrPort, hashes []uint32) (int, error) {
	if len(to) < len(bufs) || len(hashes) < len(bufs) {
		return 0, errShortTo
	}
	c := w.c
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	nsend := uint32(len(w.senders))
	sent := 0
	w.arena.used = 0
	gso := !c.gsoOff.Load()
	for i, b := range bufs {
		s := w.senders[(hashes[i]&^TrainStart)%nsend]
		if hashes[i]&TrainStart != 0 {
			s.gso.closed = true // nothing more joins the open message
		}
		if s.full(to[i], b, gso) {
			k, err := s.flush()
			sent += k
			if err != nil {
				w.drop()
				return sent, c.ioErr(err)
			}
			gso = !c.gsoOff.Load()
		}
		if !s.queue(to[i], b, gso) {
			c.stats.txErrors.Add(1)
		}
	}
	for _, s := range w.senders {
		if s.n == 0 {
			continue
		}
		k, err := s.flush()
		sent += k
		if err != nil {
			w.drop()
			return sent, c.ioErr(err)
		}
	}
	return sent, nil
}

// drop forgets what every sender has queued.
func (w *Writer) drop() {
	for _, s := range w.senders {
		s.releaseGSO()
		s.n = 0
	}
}

// flush sends the queued messages, returning how many the kernel accepted.
func (s *sender) flush() (int, error) {
	s.off, s.sent, s.retried, s.err = 0, 0, false, 0
	var err error
	for s.off < s.n {
		err = s.rc.Write(s.sendFn)
		if err != nil {
			break
		}
		if s.err != 0 {
			err = os.NewSyscallError("sendmmsg", s.err)
			break
		}
	}
	s.releaseGSO()
	s.n = 0
	return s.sent, err
}

// doSend is the RawConn write callback: sendmmsg until everything queued is
// handled, EAGAIN (return false to wait for writability) or a fatal error.
func (s *sender) doSend(fd uintptr) bool {
	for s.off < s.n {
		// Raw, as in doRecvLocked: the socket never blocks.
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.tx.msgs[s.off])), uintptr(s.n-s.off), 0, 0, 0)
		switch {
		case e == 0:
			pkts := 0
			for _, c := range s.gso.cnt[s.off : s.off+int(r)] {
				pkts += c
			}
			s.off += int(r)
			s.sent += pkts
			s.retried = false
			s.c.stats.txPackets.Add(uint64(pkts))
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			return false
		case e == unix.EIO && s.gso.cnt[s.off] > 1:
			// The device cannot segment (no checksum offload): send
			// single datagrams from now on. This message is lost; the
			// inner TCP resends it.
			s.c.gsoOff.Store(true)
			s.c.stats.txErrors.Add(uint64(s.gso.cnt[s.off]))
			s.off++
		case e == unix.EINVAL && s.gso.cnt[s.off] > 1 && s.segmentsFit(s.off):
			// EINVAL for segments that fit the path: the kernel cannot
			// segment after all. Single datagrams from now on; this
			// message is lost (the inner TCP resends it).
			s.c.gsoOff.Store(true)
			s.c.stats.txErrors.Add(uint64(s.gso.cnt[s.off]))
			s.off++
		case e == unix.EMSGSIZE || e == unix.EINVAL && s.gso.cnt[s.off] > 1:
			// Too big for the path (a GSO message's segments too: the
			// kernel answers EINVAL for those). Not retried: the error is
			// the datagram's own, never an earlier one's. A shorter last
			// datagram of the message, which may fit, goes alone.
			s.retried = false
			lost := s.gso.cnt[s.off]
			if lost > 1 && s.sendShortLast(fd, s.off) {
				lost--
				s.sent++
				s.c.stats.txPackets.Add(1)
			}
			s.c.stats.txErrors.Add(uint64(lost))
			s.c.stats.txTooBig.Add(uint64(lost))
			s.c.noteTooBig(&s.tx.names[s.off])
			s.off++
		case perPacketErr(e):
			// When sendmmsg stops early on an error after sending some
			// messages, the kernel reports that error on the next call
			// (sk_err) before trying the next message. So the first
			// failure of a message may belong to its predecessor: retry
			// once, drop it on the second failure.
			if !s.retried {
				s.retried = true
				continue
			}
			s.retried = false
			s.c.stats.txErrors.Add(uint64(s.gso.cnt[s.off]))
			s.off++
		default:
			s.err = e
			return true
		}
	}
	return true
}

// sendShortLast sends the last datagram of GSO message i alone, if it is
// shorter than the others (the message's segment size), and reports
// whether the kernel took it.
func (s *sender) sendShortLast(fd uintptr, i int) bool {
	h := &s.tx.msgs[i].Hdr
	if int(s.gso.last[i].Len) >= s.gso.segOf[i] {
		return false
	}
	s.oneIov = s.gso.last[i]
	s.one = unix.Msghdr{Name: h.Name, Namelen: h.Namelen, Iov: &s.oneIov}
	s.one.SetIovlen(1)
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.one)), 0)
	return e == 0
}

// segmentsFit reports whether the segments of GSO message i fit the path
// to its destination, as the kernel knows it (asked on this error path
// only). An unknown path counts as not fitting.
func (s *sender) segmentsFit(i int) bool {
	dst := getSockaddr(&s.tx.names[i], &s.c.zones).Addr()
	mtu, err := PathMTU(s.c.local.Addr(), dst)
	if err != nil {
		return false
	}
	seg := s.gso.segOf[i]
	hdr := 20 + 8
	if dst.Is6() {
		hdr = 40 + 8
	}
	return seg+hdr <= mtu
}

// noteTooBig keeps the destination of a datagram too big for its path.
func (c *Conn) noteTooBig(sa *sockaddrStorage) {
	c.tooBig.note(getSockaddr(sa, &c.zones).Addr())
}

// perPacketErr reports whether a send error concerns only the datagram (its
// destination or size) so the rest of the batch should go on.
func perPacketErr(e syscall.Errno) bool {
	switch e {
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN,
		unix.ENETDOWN, unix.EMSGSIZE, unix.EACCES, unix.EPERM, unix.EADDRNOTAVAIL,
		unix.EAFNOSUPPORT, unix.EINVAL, unix.ENOBUFS, unix.ENOMEM, unix.ENOPROTOOPT,
		unix.ENONET, unix.ECONNRESET:
		return true
	}
	return false
}

// zoneCache maps IPv6 zone names to interface indexes and back, so the hot
// path allocates only the first time a zone is seen.
type zoneCache struct {
	mu      sync.Mutex
	byName  map[string]uint32
	byIndex map[uint32]string
}

func (z *zoneCache) init() {
	z.byName = make(map[string]uint32)
	z.byIndex = make(map[uint32]string)
}

func (z *zoneCache) index(name string) uint32 {
	z.mu.Lock()
	defer z.mu.Unlock()
	if i, ok := z.byName[name]; ok {
		return i
	}
	var idx uint32
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		idx = uint32(n)
	} else if ifi, err := net.InterfaceByName(name); err == nil {
		idx = uint32(ifi.Index)
	}
	z.byName[name] = idx
	return idx
}

func (z *zoneCache) name(idx uint32) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	if n, ok := z.byIndex[idx]; ok {
		return n
	}
	n := strconv.FormatUint(uint64(idx), 10)
	if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
		n = ifi.Name
	}
	z.byIndex[idx] = n
	return n
}
