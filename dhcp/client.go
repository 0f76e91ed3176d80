package dhcp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// A DHCP client (RFC 2131) for endpoints of transparent networks with
// -o dhcp=true: the endpoint's address comes from the segment's DHCP
// server, asked in the endpoint's own MAC through the uplink, before the
// endpoint has an address or a device.

// FrameLink is what the DHCP client needs of an uplink.
type FrameLink interface {
	WriteFrame(f []byte) error
	SetDHCPHandler(h func(bootp []byte))
}

// Lease is an address a DHCP server leased.
type Lease struct {
	Addr   netip.Prefix  `json:"addr"`
	Router netip.Addr    `json:"router,omitzero"`
	Server netip.Addr    `json:"server"`
	Time   time.Duration `json:"time"`
	Got    time.Time     `json:"got"`
}

// DHCP message types (option 53).
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
	dhcpNak      = 6
	dhcpRelease  = 7
)

const (
	bootpLen    = 236
	dhcpMagic   = 0x63825363
	optPad      = 0
	optMask     = 1
	optRouter   = 3
	optHostname = 12
	optReqAddr  = 50
	optLease    = 51
	optMsgType  = 53
	optServerID = 54
	optParams   = 55
	optEnd      = 255
)

// ErrNAK is a DHCP server refusing a request (DHCPNAK).
var ErrNAK = errors.New("the server answered NAK")

// Clients shares one uplink's DHCP replies among the clients waiting
// on it, by transaction ID.
type Clients struct {
	link FrameLink
	mu   sync.Mutex
	wait map[uint32]chan []byte
}

// NewClients installs a reply handler on link.
func NewClients(link FrameLink) *Clients {
	c := &Clients{link: link, wait: map[uint32]chan []byte{}}
	link.SetDHCPHandler(c.deliver)
	return c
}

func (c *Clients) deliver(b []byte) {
	if len(b) < bootpLen+4 || b[0] != 2 {
		return
	}
	xid := binary.BigEndian.Uint32(b[4:])
	c.mu.Lock()
	ch := c.wait[xid]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- append([]byte(nil), b...):
		default:
		}
	}
}

// Acquire asks for an address for mac: DISCOVER, OFFER, REQUEST, ACK, each
// step retried, until ctx ends.
func (c *Clients) Acquire(ctx context.Context, mac [6]byte, hostname string) (Lease, error) {
	xid, ch := c.register()
	defer c.unregister(xid)
	offer, err := c.exchange(ctx, ch, dhcpMessage(mac, xid, dhcpDiscover, hostname, netip.Addr{}, netip.Addr{}, netip.Addr{}), dhcpOffer, mac, xid)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp: no offer for %v: %w", vxlan.MAC(mac), err)
	}
	ack, err := c.exchange(ctx, ch, dhcpMessage(mac, xid, dhcpRequest, hostname, offer.Addr.Addr(), offer.Server, netip.Addr{}), dhcpAck, mac, xid)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp: request for %v (offered %v by %v): %w", vxlan.MAC(mac), offer.Addr, offer.Server, err)
	}
	return ack, nil
}

// Renew asks the server again for the address of lease.
func (c *Clients) Renew(ctx context.Context, mac [6]byte, hostname string, lease Lease) (Lease, error) {
	xid, ch := c.register()
	defer c.unregister(xid)
	ack, err := c.exchange(ctx, ch, dhcpMessage(mac, xid, dhcpRequest, hostname, lease.Addr.Addr(), lease.Server, lease.Addr.Addr()), dhcpAck, mac, xid)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp: renewing %v for %v: %w", lease.Addr, vxlan.MAC(mac), err)
	}
	return ack, nil
}

// Keep's failures once a lease is lost: the endpoint keeps an address
// the server may give away.
var (
	// ErrLost: refused or expired, and no new lease came.
	ErrLost = errors.New("the lease is lost and no new one came")
	// ErrMoved: the server leases another address than the one kept; the
	// endpoint must be created again to take it.
	ErrMoved = errors.New("the lease is lost and the server offers another address")
)

// Keep keeps lease: it renews it, and when the server refuses (NAK) or the
// lease has expired, asks again from the start in the same MAC. It fails
// while the lease is still current when the server does not answer (try
// again later); with ErrLost, or ErrMoved (the other address given back),
// when the lease is lost.
func (c *Clients) Keep(ctx context.Context, mac [6]byte, hostname string, lease Lease) (Lease, error) {
	got, err := c.Renew(ctx, mac, hostname, lease)
	if err != nil && !errors.Is(err, ErrNAK) && time.Since(lease.Got) < lease.Time {
		return lease, err // still current: retried later
	}
	if err != nil {
		if got, err = c.Acquire(ctx, mac, hostname); err != nil {
			return lease, fmt.Errorf("%w: %w", ErrLost, err)
		}
	}
	if got.Addr.Addr() != lease.Addr.Addr() {
		c.Release(mac, got)
		return lease, fmt.Errorf("%w (%v)", ErrMoved, got.Addr)
	}
	return got, nil
}

// Release gives the address back.
func (c *Clients) Release(mac [6]byte, lease Lease) error {
	xid, _ := c.register()
	defer c.unregister(xid)
	return c.link.WriteFrame(dhcpMessage(mac, xid, dhcpRelease, "", netip.Addr{}, lease.Server, lease.Addr.Addr()))
}

func (c *Clients) register() (uint32, chan []byte) {
	var b [4]byte
	rand.Read(b[:])
	xid := binary.BigEndian.Uint32(b[:])
	ch := make(chan []byte, 4)
	c.mu.Lock()
	c.wait[xid] = ch
	c.mu.Unlock()
	return xid, ch
}

func (c *Clients) unregister(xid uint32) {
	c.mu.Lock()
	delete(c.wait, xid)
	c.mu.Unlock()
}

// exchange sends msg until a reply of type want comes back (1, 2, 4 s
// apart) or ctx ends. A NAK ends it at once.
func (c *Clients) exchange(ctx context.Context, ch chan []byte, msg []byte, want byte, mac [6]byte, xid uint32) (Lease, error) {
	wait := time.Second
	for {
		if err := c.link.WriteFrame(msg); err != nil {
			return Lease{}, err
		}
		timer := time.NewTimer(wait)
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return Lease{}, ctx.Err()
			case b := <-ch:
				typ, lease, err := parseDHCPReply(b, mac, xid)
				if err != nil {
					continue // not ours, or malformed: ignored
				}
				if typ == dhcpNak {
					timer.Stop()
					return Lease{}, ErrNAK
				}
				if typ == want {
					timer.Stop()
					return lease, nil
				}
				continue
			case <-timer.C:
			}
			break
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// dhcpMessage builds a client message in an Ethernet frame, broadcast from
// 0.0.0.0 (or from ciaddr for a renewal or release).
func dhcpMessage(mac [6]byte, xid uint32, typ byte, hostname string, reqAddr, server, ciaddr netip.Addr) []byte {
	var opts []byte
	opts = append(opts, optMsgType, 1, typ)
	if reqAddr.IsValid() && !ciaddr.IsValid() {
		a := reqAddr.As4()
		opts = append(opts, optReqAddr, 4, a[0], a[1], a[2], a[3])
	}
	if server.IsValid() {
		a := server.As4()
		opts = append(opts, optServerID, 4, a[0], a[1], a[2], a[3])
	}
	if hostname != "" && len(hostname) < 64 {
		opts = append(opts, optHostname, byte(len(hostname)))
		opts = append(opts, hostname...)
	}
	opts = append(opts, optParams, 3, optMask, optRouter, optLease, optEnd)
	bootp := make([]byte, bootpLen+4+len(opts))
	bootp[0], bootp[1], bootp[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte addresses
	binary.BigEndian.PutUint32(bootp[4:], xid)
	if !ciaddr.IsValid() {
		binary.BigEndian.PutUint16(bootp[10:], 0x8000) // answer by broadcast
	} else {
		a := ciaddr.As4()
		copy(bootp[12:], a[:])
	}
	copy(bootp[28:], mac[:])
	binary.BigEndian.PutUint32(bootp[bootpLen:], dhcpMagic)
	copy(bootp[bootpLen+4:], opts)
	if len(bootp) < 300 {
		bootp = append(bootp, make([]byte, 300-len(bootp))...) // BOOTP's minimum
	}

	src := netip.IPv4Unspecified()
	if ciaddr.IsValid() {
		src = ciaddr
	}
	f := make([]byte, 14+20+8+len(bootp))
	for i := 0; i < 6; i++ {
		f[i] = 0xff
	}
	copy(f[6:], mac[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(bootp)))
	s4 := src.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], 68)
	binary.BigEndian.PutUint16(udp[2:], 67)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(bootp))) // checksum 0: none (IPv4)
	copy(udp[8:], bootp)
	return f
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// parseDHCPReply reads a server's BOOTREPLY for (mac, xid): its message
// type and the lease it describes.
func parseDHCPReply(b []byte, mac [6]byte, xid uint32) (byte, Lease, error) {
	var l Lease
	if len(b) < bootpLen+4 || b[0] != 2 || binary.BigEndian.Uint32(b[4:]) != xid || [6]byte(b[28:34]) != mac {
		return 0, l, errors.New("dhcp: not a reply to this transaction")
	}
	if binary.BigEndian.Uint32(b[bootpLen:]) != dhcpMagic {
		return 0, l, errors.New("dhcp: no magic cookie")
	}
	yiaddr := netip.AddrFrom4([4]byte(b[16:20]))
	var typ byte
	bits := -1
	for o := b[bootpLen+4:]; len(o) > 0; {
		code := o[0]
		if code == optEnd {
			break
		}
		if code == optPad {
			o = o[1:]
			continue
		}
		if len(o) < 2 || len(o) < 2+int(o[1]) {
			return 0, l, errors.New("dhcp: option runs past the message")
		}
		v := o[2 : 2+int(o[1])]
		switch {
		case code == optMsgType && len(v) == 1:
			typ = v[0]
		case code == optMask && len(v) == 4:
			m := binary.BigEndian.Uint32(v)
			ones := 0
			for m&0x80000000 != 0 {
				ones++
				m <<= 1
			}
			if m == 0 {
				bits = ones
			}
		case code == optRouter && len(v) >= 4:
			l.Router = netip.AddrFrom4([4]byte(v[:4]))
		case code == optLease && len(v) == 4:
			l.Time = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
		case code == optServerID && len(v) == 4:
			l.Server = netip.AddrFrom4([4]byte(v))
		}
		o = o[2+len(v):]
	}
	if typ == 0 {
		return 0, l, errors.New("dhcp: no message type")
	}
	if typ == dhcpNak {
		return typ, l, nil
	}
	if bits < 0 {
		bits = 24
	}
	if yiaddr.IsUnspecified() || !l.Server.IsValid() {
		return 0, l, errors.New("dhcp: reply without an address or a server identifier")
	}
	l.Addr = netip.PrefixFrom(yiaddr, bits)
	l.Got = time.Now()
	return typ, l, nil
}
