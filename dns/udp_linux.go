package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// udpBatch is how many datagrams one recvmmsg reads and one sendmmsg
	// writes: under load it divides the syscalls per query by up to this.
	udpBatch = 16
	// udpRecvLen is the largest UDP query read; longer ones are dropped.
	udpRecvLen = 1500
)

// udpBatchIO is the per-listener memory of the batched UDP loop, set up
// once. Owned by routineServeUDP.
type udpBatchIO struct {
	in, out  [udpBatch][]byte
	names    [udpBatch]unix.RawSockaddrInet6 // big enough for IPv4 too
	rhdr     [udpBatch]unix.Mmsghdr
	riov     [udpBatch]unix.Iovec
	shdr     [udpBatch]unix.Mmsghdr
	siov     [udpBatch]unix.Iovec
	n, sent  int           // datagrams read; sent of queued responses
	nsend    int           // responses queued in shdr
	rerr     syscall.Errno // error of the last recvmmsg
	readFn   func(fd uintptr) bool
	writeFn  func(fd uintptr) bool
	outLimit int
}

func newUDPBatchIO(outCap int) *udpBatchIO {
	b := &udpBatchIO{outLimit: outCap}
	for i := range udpBatch {
		b.in[i] = make([]byte, udpRecvLen)
		b.out[i] = make([]byte, 0, outCap)
		b.riov[i].Base = &b.in[i][0]
		b.rhdr[i].Hdr.Iov = &b.riov[i]
		b.rhdr[i].Hdr.SetIovlen(1)
		b.rhdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	b.readFn = b.recv
	b.writeFn = b.send
	return b
}

// recv is the RawConn.Read callback: one recvmmsg, non-blocking.
func (b *udpBatchIO) recv(fd uintptr) bool {
	for i := range udpBatch {
		b.riov[i].SetLen(udpRecvLen)
		b.rhdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.rhdr[i].Hdr.Flags = 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdr[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait for the socket to become readable
	}
	b.n, b.rerr = int(r), e
	if e != 0 {
		b.n = 0
	}
	return true
}

// send is the RawConn.Write callback: sendmmsg until all queued responses
// are out, skipping any the kernel refuses.
func (b *udpBatchIO) send(fd uintptr) bool {
	for b.sent < b.nsend {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdr[b.sent])), uintptr(b.nsend-b.sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
		case e != 0:
			b.sent++ // this one failed (e.g. an unreachable client): drop it
		default:
			b.sent += int(r)
		}
	}
	return true
}

// queue adds resp, to the sender of datagram i, to the next sendmmsg.
func (b *udpBatchIO) queue(i int, resp []byte) {
	k := b.nsend
	b.siov[k].Base = &resp[0]
	b.siov[k].SetLen(len(resp))
	b.shdr[k].Hdr.Iov = &b.siov[k]
	b.shdr[k].Hdr.SetIovlen(1)
	b.shdr[k].Hdr.Name = b.rhdr[i].Hdr.Name
	b.shdr[k].Hdr.Namelen = b.rhdr[i].Hdr.Namelen
	b.nsend++
}

// from decodes the sender of datagram i.
func (b *udpBatchIO) from(i int) netip.AddrPort {
	sa := &b.names[i]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}

// routineServeUDP reads datagrams in batches, answers each in place and
// sends the answers in one batch. Forwarded queries leave the batch.
func (l *Listener) routineServeUDP() {
	defer l.wg.Done()
	log := l.srv.log.With("addr", l.conns.UDP.LocalAddr().String())
	log.Debug("udp serving")
	defer log.Debug("udp stopped")
	rc, err := l.conns.UDP.SyscallConn()
	if err != nil {
		log.Warn("udp stopped", "error", err)
		return
	}
	sc := newScratch()
	b := newUDPBatchIO(int(l.srv.cfg.UDPSize))
	for {
		if err := rc.Read(b.readFn); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("udp stopped", "error", err)
			}
			return
		}
		b.nsend, b.sent = 0, 0
		for i := 0; i < b.n; i++ {
			q := b.in[i][:b.rhdr[i].Len]
			if b.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				l.count.malformed.Add(1)
				continue
			}
			resp, act := l.answer(q, b.out[i], true, sc)
			b.out[i] = resp[:0] // borrowed by shdr until the send below
			switch act {
			case actReply:
				b.queue(i, resp)
			case actForward:
				l.forwardUDP(q, b.from(i))
			}
		}
		if b.nsend > 0 {
			if err := rc.Write(b.writeFn); err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}
