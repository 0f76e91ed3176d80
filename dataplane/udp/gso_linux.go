//go:build linux

package udp

import (
	"net/netip"
	"unsafe"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (GSO, UDP_SEGMENT, Linux 4.18+): datagrams
// to the same destination from the same socket, of the same size (the last
// may be shorter), go to the kernel as one message whose iovecs the kernel
// cuts back into datagrams of that size, as late as possible: on a veth
// underlay the whole train crosses into the peer namespace as one buffer,
// and a receiver with UDP_GRO takes it in one piece. One message replaces a
// trip through the UDP and IP stack per datagram; the datagrams on the wire
// are the same.
const (
	// maxGSOSegments is UDP_MAX_SEGMENTS of older kernels (newer allow 128).
	maxGSOSegments = 64
	// maxGSOBytes bounds a message's payload: one IP packet's worth.
	maxGSOBytes = vxlan.TrainBytes
)

var gsoCmsgSpace = unix.CmsgSpace(2)

// gsoScratch is a sender's state for coalescing: iovecs for a batch's
// datagrams and one whole train more, a control buffer per message, and the
// message being built (closed: it takes no more datagrams).
type gsoScratch struct {
	iovs   []unix.Iovec
	ctrl   []byte
	cnt    []int        // packets per message
	iovn   []int        // iovecs per message
	segOf  []int        // each message's segment size
	last   []unix.Iovec // each message's last datagram
	niov   int
	seg    int // the open message's segment size
	bytes  int // the open message's payload
	closed bool
	lastTo netip.AddrPort
}

// newGSOScratch is the scratch for n messages: iovecs for n datagrams plus
// one whole train (maxGSOSegments).
func newGSOScratch(n int) gsoScratch {
	return gsoScratch{iovs: make([]unix.Iovec, n+maxGSOSegments), ctrl: make([]byte, n*gsoCmsgSpace),
		cnt: make([]int, n), iovn: make([]int, n), segOf: make([]int, n), last: make([]unix.Iovec, n)}
}

// appends reports whether b for to would join the open message.
func (s *sender) appends(to netip.AddrPort, b []byte, gso bool) bool {
	g := &s.gso
	return gso && s.n > 0 && !g.closed && to == g.lastTo && len(b) <= g.seg && len(b) > 0 &&
		g.cnt[s.n-1] < maxGSOSegments && g.bytes+len(b) <= maxGSOBytes
}

// full reports whether b for to needs a flush first: it would open a
// message, and the messages are used up or the iovecs left could not hold
// a whole train (so a train is never cut by the batch's end).
func (s *sender) full(to netip.AddrPort, b []byte, gso bool) bool {
	if s.appends(to, b, gso) {
		return false
	}
	return s.n == len(s.tx.msgs) || len(s.gso.iovs)-s.gso.niov < maxGSOSegments
}

// queue adds b for to: appended to the open message when GSO allows, else
// as a new message. The caller makes room first (see full). It reports
// false when to cannot be sent from this socket (counted by the caller).
func (s *sender) queue(to netip.AddrPort, b []byte, gso bool) bool {
	g := &s.gso
	if s.appends(to, b, gso) {
		k := s.n - 1
		if !s.gather(b) {
			setIov(&g.iovs[g.niov], b)
			g.niov++
			g.iovn[k]++
		}
		setIov(&g.last[k], b)
		g.cnt[k]++
		g.bytes += len(b)
		if len(b) < g.seg {
			g.closed = true // only the last segment may be short
		}
		h := &s.tx.msgs[k].Hdr
		h.SetIovlen(g.iovn[k])
		if g.cnt[k] == 2 {
			c := g.ctrl[k*gsoCmsgSpace : (k+1)*gsoCmsgSpace]
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			cm.Level, cm.Type = unix.SOL_UDP, unix.UDP_SEGMENT
			cm.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(g.seg)
			h.Control = &c[0]
			h.SetControllen(gsoCmsgSpace)
		}
		return true
	}
	j := s.n
	nl := putSockaddr(&s.tx.names[j], s.c.family, to, &s.c.zones)
	if nl == 0 {
		return false
	}
	h := &s.tx.msgs[j].Hdr
	h.Namelen = nl
	setIov(&g.iovs[g.niov], b)
	h.Iov = &g.iovs[g.niov]
	h.SetIovlen(1)
	h.Control = nil
	h.SetControllen(0)
	g.niov++
	g.cnt[j], g.iovn[j], g.segOf[j] = 1, 1, len(b)
	setIov(&g.last[j], b)
	g.seg, g.bytes, g.closed, g.lastTo = len(b), len(b), false, to
	s.n++
	return true
}

// gatherArena holds the datagrams of a Writer's GSO messages side by side,
// so that a message reaches the kernel as one iovec. The kernel pays for
// each iovec it copies from (a user-memory access each), which made a
// train of 44 datagrams cost about twice what one buffer of the same bytes
// does; a copy in user space is much cheaper. It is emptied when a
// WriteBatch starts: every message of the one before was sent or dropped.
type gatherArena struct {
	buf  []byte
	used int
}

// gatherBytes is an arena's size: two whole trains. Messages past it keep
// one iovec per datagram.
const gatherBytes = 2 * maxGSOBytes

// gather appends b to the open message's bytes in the arena, and reports
// whether it did (false: no room left, b needs an iovec of its own). When
// the message's bytes are not at the arena's end (b is its second datagram,
// or another sender of the Writer gathered since), its one iovec is copied
// there first.
func (s *sender) gather(b []byte) bool {
	a, g := s.arena, &s.gso
	if a == nil {
		return false
	}
	if a.buf == nil {
		a.buf = make([]byte, gatherBytes)
	}
	last := &g.iovs[g.niov-1] // the open message's iovecs are the last ones
	room := len(a.buf) - a.used
	if a.used > 0 && room >= len(b) && uintptr(unsafe.Pointer(last.Base))+uintptr(last.Len) == uintptr(unsafe.Pointer(&a.buf[a.used])) {
		copy(a.buf[a.used:], b)
		a.used += len(b)
		last.SetLen(int(last.Len) + len(b))
		return true
	}
	if g.iovn[s.n-1] != 1 || room < int(last.Len)+len(b) {
		// Past the arena's room, or iovecs of their own already: the
		// rest of the message keeps one iovec per datagram.
		return false
	}
	first := unsafe.Slice(last.Base, last.Len)
	at := a.used
	copy(a.buf[at:], first)
	copy(a.buf[at+len(first):], b)
	last.Base = &a.buf[at]
	last.SetLen(len(first) + len(b))
	a.used += len(first) + len(b)
	return true
}

func setIov(v *unix.Iovec, b []byte) {
	if len(b) == 0 {
		v.Base = nil
	} else {
		v.Base = &b[0]
	}
	v.SetLen(len(b))
}

// releaseGSO drops the references to the caller's buffers.
func (s *sender) releaseGSO() {
	g := &s.gso
	clear(g.iovs[:g.niov])
	clear(g.last[:s.n])
	g.niov = 0
	g.lastTo = netip.AddrPort{}
}
