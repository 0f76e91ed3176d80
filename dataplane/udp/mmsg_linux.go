//go:build linux

package udp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgHdr is struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; }
// as provided by x/sys for every Linux architecture (padded on 64-bit).
type mmsgHdr = unix.Mmsghdr

// sockaddrStorage holds either a sockaddr_in or a sockaddr_in6; the larger
// sockaddr_in6 layout is used as storage and the family field (first, at the
// same offset in both) tells which one it is.
type sockaddrStorage = unix.RawSockaddrInet6

// mmsgScratch is the preallocated per-socket state for one recvmmsg or
// sendmmsg call of up to len(msgs) datagrams.
type mmsgScratch struct {
	msgs  []mmsgHdr
	iovs  []unix.Iovec
	names []sockaddrStorage
	ctrl  []byte // groCmsgSpace per message, for UDP_GRO
}

var groCmsgSpace = unix.CmsgSpace(4)

func newMmsgScratch(n int) mmsgScratch {
	s := mmsgScratch{
		msgs:  make([]mmsgHdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]sockaddrStorage, n),
		ctrl:  make([]byte, n*groCmsgSpace),
	}
	for i := range s.msgs {
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.SetIovlen(1)
		s.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	return s
}

// setBuf points message i at b.
func (s *mmsgScratch) setBuf(i int, b []byte) {
	if len(b) == 0 {
		s.iovs[i].Base = nil
	} else {
		s.iovs[i].Base = &b[0]
	}
	s.iovs[i].SetLen(len(b))
}

// release drops references to caller buffers so they are not kept alive.
func (s *mmsgScratch) release(n int) {
	for i := 0; i < n; i++ {
		s.iovs[i].Base = nil
	}
}

func portBytes(p *uint16) *[2]byte { return (*[2]byte)(unsafe.Pointer(p)) }

// putSockaddr encodes ap into sa for a socket of the given family and returns
// the sockaddr length, or 0 if ap cannot be sent from such a socket.
func putSockaddr(sa *sockaddrStorage, family int, ap netip.AddrPort, zones *zoneCache) uint32 {
	a := ap.Addr()
	if !a.IsValid() {
		return 0
	}
	port := ap.Port()
	if family == unix.AF_INET {
		a = a.Unmap()
		if !a.Is4() {
			return 0
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		pb := portBytes(&sa4.Port)
		pb[0], pb[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet4
	}
	*sa = sockaddrStorage{Family: unix.AF_INET6, Addr: a.As16()} // IPv4 becomes ::ffff:a.b.c.d
	pb := portBytes(&sa.Port)
	pb[0], pb[1] = byte(port>>8), byte(port)
	if z := a.Zone(); z != "" && a.Is6() {
		sa.Scope_id = zones.index(z)
	}
	return unix.SizeofSockaddrInet6
}

// getSockaddr decodes a sockaddr filled in by the kernel. IPv4-mapped IPv6
// addresses are returned as plain IPv4.
func getSockaddr(sa *sockaddrStorage, zones *zoneCache) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		pb := portBytes(&sa4.Port)
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(pb[0])<<8|uint16(pb[1]))
	case unix.AF_INET6:
		pb := portBytes(&sa.Port)
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			a = a.Unmap()
		} else if sa.Scope_id != 0 {
			a = a.WithZone(zones.name(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, uint16(pb[0])<<8|uint16(pb[1]))
	}
	return netip.AddrPort{}
}

// groSize returns the segment size the kernel reported for message i with
// UDP_GRO, or 0 if the datagram was not coalesced.
func (s *mmsgScratch) groSize(i int) int {
	h := &s.msgs[i].Hdr
	n := int(h.Controllen)
	if n < unix.CmsgLen(4) || h.Control == nil {
		return 0
	}
	c := s.ctrl[i*groCmsgSpace : i*groCmsgSpace+min(n, groCmsgSpace)]
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	if cm.Level != unix.SOL_UDP || cm.Type != unix.UDP_GRO || int(cm.Len) < unix.CmsgLen(4) {
		return 0
	}
	return int(*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])))
}
