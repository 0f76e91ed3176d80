package dataplane

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// Uplinks: transparent and l2bridge networks put their endpoints on a
// physical segment through a host NIC, read and written as Ethernet frames
// (an AF_PACKET socket on Linux, package afpacket). The containers' side
// stays layer 3 (TUN), so the switch speaks ARP for them:
//
//   - egress: a packet to an address on the segment (or, off it, to the
//     network's router) gets the next hop's MAC from the uplink's neighbour
//     cache, or, when it has none yet, is dropped (counted as
//     neighbor_miss) while an ARP request goes out; TCP's retransmission
//     or the next ping finds the answer;
//   - ingress: IPv4 frames for a local endpoint's address go to its port,
//     and ARP requests for it are answered;
//   - the neighbour cache learns from every ARP message and from the
//     source of every frame delivered.
//
// Between two networks on one uplink, the host routes: a packet for a
// local endpoint of the other network goes straight to its port.
//
// transparent: each endpoint sends with its own MAC and frames to that MAC
// are its (the NIC is put in promiscuous mode). l2bridge: endpoints send
// with the host's MAC; frames to the host's MAC are sorted by destination
// IP, and ARP for endpoint addresses is answered with the host's MAC, so
// the segment only ever learns the host's MAC.
//
// IPv6 works the same way with neighbour discovery in place of ARP:
// solicitations for endpoint addresses are answered, the cache learns
// from solicitations and advertisements, a packet to an unresolved
// neighbour sends a solicitation; off the segment, packets go to
// --gateway, or to the router the segment's router advertisements name.

// UplinkDevice is a host NIC read and written as Ethernet frames.
type UplinkDevice interface {
	// ReadBatch reads frames into bufs[i][offset:], waiting for the first.
	ReadBatch(bufs [][]byte, sizes []int, offset int) (int, error)
	// NewWriter returns a frame writer for one goroutine's own use.
	NewWriter() FrameWriter
	// HardwareAddr is the NIC's MAC.
	HardwareAddr() [6]byte
	Close() error
}

// FrameWriter sends Ethernet frames out of an uplink.
type FrameWriter interface {
	Write(frame []byte) error
}

// Uplink is a NIC attached to the switch.
type Uplink struct {
	dev   UplinkDevice
	name  string
	index int
	mac   vxlan.MAC
	neigh atomic.Pointer[neighbors] // replaced, never changed
	learn sync.Mutex                // one writer of neigh at a time
	// router6 is the MAC of the IPv6 router the segment's router
	// advertisements name (nil: none yet, or it retired itself).
	router6 atomic.Pointer[vxlan.MAC]
	done    chan struct{}
	once    sync.Once
	dhcp    atomic.Pointer[func(bootp []byte)]
	held    *uplinkHeld // packets waiting for a neighbour's MAC (uplinkheld.go)
	ctlMu   sync.Mutex  // WriteFrame's writer: the control plane's, shared
	ctl     FrameWriter // made on first WriteFrame
}

// SetDHCPHandler has h called, on the uplink's reader, with the UDP
// payload of every IPv4 datagram to port 68 (a DHCP client's) that
// arrives: replies to the DHCP clients of endpoints that have no address
// yet. h must copy what it keeps. nil removes it.
func (u *Uplink) SetDHCPHandler(h func(bootp []byte)) {
	if h == nil {
		u.dhcp.Store(nil)
		return
	}
	u.dhcp.Store(&h)
}

// WriteFrame sends one Ethernet frame out of the uplink.
func (u *Uplink) WriteFrame(f []byte) error {
	u.ctlMu.Lock()
	defer u.ctlMu.Unlock()
	if u.ctl == nil {
		u.ctl = u.dev.NewWriter()
	}
	return u.ctl.Write(f)
}

type neighbors map[addrKey]vxlan.MAC

// AddUplink attaches a NIC and starts reading it. The switch owns dev from
// now on and closes it in RemoveUplink or Close.
func (sw *Switch) AddUplink(name string, dev UplinkDevice) (*Uplink, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return nil, errors.New("dataplane: switch closed")
	}
	u := &Uplink{dev: dev, name: name, index: sw.nextUplink, mac: vxlan.MAC(dev.HardwareAddr()), done: make(chan struct{}), held: newUplinkHeld(sw.cfg.MTU)}
	u.neigh.Store(&neighbors{})
	sw.nextUplink++
	sw.uplinks[u] = struct{}{}
	sw.wg.Add(1)
	go func() {
		defer sw.wg.Done()
		defer close(u.done)
		sw.routineReadFromUplink(u)
	}()
	return u, nil
}

// RemoveUplink closes the NIC's socket and waits for its loop to stop.
// Remove it from the table first.
func (sw *Switch) RemoveUplink(u *Uplink) {
	sw.mu.Lock()
	delete(sw.uplinks, u)
	sw.mu.Unlock()
	u.close()
	<-u.done
}

func (u *Uplink) close() { u.once.Do(func() { u.dev.Close() }) }

// neighbor returns the MAC of an address on the segment.
func (u *Uplink) neighbor(a addrKey) (vxlan.MAC, bool) {
	m, ok := (*u.neigh.Load())[a]
	return m, ok
}

// learnNeighbor records a's MAC; a new map is published only on a change.
func (u *Uplink) learnNeighbor(a addrKey, mac vxlan.MAC) {
	if m, ok := u.neighbor(a); ok && m == mac {
		return
	}
	if mac.IsMulticast() || mac.IsZero() {
		return
	}
	u.learn.Lock()
	defer u.learn.Unlock()
	old := *u.neigh.Load()
	if len(old) >= maxNeighbors {
		// A segment this large, or one that floods ARP: start over rather
		// than grow without bound; what is still in use is learned again.
		old = neighbors{}
	}
	next := make(neighbors, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[a] = mac
	u.neigh.Store(&next)
}

// maxNeighbors bounds an uplink's neighbour cache.
const maxNeighbors = 4096

// onAnyLink reports whether a is on the segment of one of nets, or is one
// of their routers: the only neighbours worth learning.
func onAnyLink(nets []*network, a netip.Addr) bool {
	for _, nw := range nets {
		if nw.onLink(a) || nw.router == a {
			return true
		}
	}
	return false
}

// srcMAC is the source MAC of frames an endpoint sends on the segment.
func (nw *network) srcMAC(endpoint vxlan.MAC) vxlan.MAC {
	if nw.l2bridge {
		return nw.uplink.mac
	}
	return endpoint
}

// onLink reports whether dst is on the network's segment.
func (nw *network) onLink(dst netip.Addr) bool {
	for _, p := range nw.subnets {
		if p.Contains(dst) {
			return true
		}
	}
	return false
}

// arpThrottle remembers the last ARP requests a loop sent, so a burst of
// packets to an unresolved address sends one request per interval.
type arpThrottle struct {
	addr [8]addrKey
	at   [8]time.Time
	next int
}

const arpInterval = 500 * time.Millisecond

func (t *arpThrottle) allow(a addrKey, now time.Time) bool {
	for i := range t.addr {
		if t.addr[i] == a {
			if now.Sub(t.at[i]) < arpInterval {
				return false
			}
			t.at[i] = now
			return true
		}
	}
	t.addr[t.next], t.at[t.next] = a, now
	t.next = (t.next + 1) % len(t.addr)
	return true
}

// toUplink sends a packet read from a port of an uplink network out of
// the NIC. buf holds the packet at Headroom; the Ethernet header goes in
// front of it.
func (l *insideLoop) toUplink(tbl *Table, nw *network, pi *portInfo, buf []byte, info *ipInfo) {
	pkt := buf[Headroom : Headroom+info.length]
	var dst netip.Addr
	if info.v6 {
		dst = netip.AddrFrom16([16]byte(pkt[ipv6DstOffset:]))
	} else {
		dst = netip.AddrFrom4([4]byte(pkt[ipv4DstOffset:]))
	}
	hop, hopKey := dst, keyOf(dst)
	if !nw.onLink(dst) && !(info.v6 && dst.IsLinkLocalUnicast()) {
		// Routed by the host: a local endpoint of another network on the
		// same uplink gets it directly, whatever the segment's routers know.
		for _, other := range tbl.uplinkNets(nw.uplink) {
			if other == nw {
				continue
			}
			if h := other.hosts.get(info.dst); h != nil && h.port != nil {
				if h.port == l.port {
					l.tally.drop(DropLoop)
					return
				}
				l.b.local.add(h.port, buf[:Headroom+info.length])
				return
			}
		}
		if !nw.router.IsValid() || nw.router.Unmap().Is6() != info.v6 {
			if !info.v6 {
				l.tally.drop(DropNoEndpoint)
				return
			}
			hop = netip.Addr{} // IPv6 with no gateway: the advertised router
		} else {
			hop, hopKey = nw.router, keyOf(nw.router)
		}
	}
	u := nw.uplink
	mac, ok := vxlan.MAC{}, false
	if hop.IsValid() {
		mac, ok = u.neighbor(hopKey)
	}
	if !ok && info.v6 && (!hop.IsValid() || !nw.onLink(dst)) {
		// Off the segment: the router the segment advertises serves when
		// --gateway does not answer (IPAM gives every network a gateway
		// address, the subnet's first, which may be nobody's).
		if r := u.router6.Load(); r != nil {
			mac, ok = *r, true
		}
	}
	if !ok {
		now := time.Now()
		if !hop.IsValid() || !u.held.hold(hopKey, nw.srcMAC(pi.mac), info.etherType, pkt, now.UnixNano(), &l.tally) {
			l.tally.drop(DropNeighborMiss)
		} else if m, ok := u.neighbor(hopKey); ok {
			// Learnt meanwhile, perhaps before the packet was held: the
			// reader may have released what waited already.
			u.held.release(hopKey, m, now.UnixNano(), l.uplinkOut(u), &l.tally)
		}
		if hop.IsValid() && l.arp.allow(hopKey, now) {
			if info.v6 {
				l.sendNS(u, nw.srcMAC(pi.mac), [16]byte(pkt[ipv6SrcOffset:ipv6SrcOffset+16]), hop.As16())
			} else {
				l.sendARPRequest(u, nw.srcMAC(pi.mac), netip.AddrFrom4([4]byte(pkt[ipv4SrcOffset:])), hop)
			}
		}
		if info.v6 && !nw.onLink(dst) && l.arp.allow(routerSolicitKey, now) {
			l.sendRS(u, nw.srcMAC(pi.mac))
		}
		return
	}
	frame := buf[EthernetOffset : Headroom+info.length]
	copy(frame[0:6], mac[:])
	s := nw.srcMAC(pi.mac)
	copy(frame[6:12], s[:])
	binary.BigEndian.PutUint16(frame[12:], info.etherType)
	if err := l.uplinkOut(u).Write(frame); err != nil {
		l.tally.drop(DropWrite)
		return
	}
	l.tally.uplinkTx++
}

// uplinkOut returns the borrowed batch's writer to u, made on first use
// (writers keep per-call state, so two loops never share one; a batch is
// one loop's at a time).
func (l *insideLoop) uplinkOut(u *Uplink) FrameWriter {
	b := l.b
	w, ok := b.uplinkWriters[u]
	if !ok {
		if b.uplinkWriters == nil || len(b.uplinkWriters) >= 64 {
			b.uplinkWriters = make(map[*Uplink]FrameWriter)
		}
		w = u.dev.NewWriter()
		b.uplinkWriters[u] = w
	}
	return w
}

// sendARPRequest asks the segment who has target, from (mac, src).
func (l *insideLoop) sendARPRequest(u *Uplink, mac vxlan.MAC, src, target netip.Addr) {
	f := l.arpBuf[:vxlan.EthernetLen+arpLen]
	writeARP(f, vxlan.Broadcast, mac, arpOpRequest, mac, src, vxlan.MAC{}, target)
	if err := l.uplinkOut(u).Write(f); err != nil {
		l.tally.drop(DropWrite)
		return
	}
	l.tally.neighbor++
}

// sendNS asks the segment for target's MAC with a neighbour solicitation
// from (mac, src).
func (l *insideLoop) sendNS(u *Uplink, mac vxlan.MAC, src, target [16]byte) {
	f := l.ndBuf[:]
	dst := solicitedNodeMAC(target)
	copy(f[0:6], dst[:])
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeIPv6)
	n := writeNS(f[vxlan.EthernetLen:], mac, src, target)
	if err := l.uplinkOut(u).Write(f[:vxlan.EthernetLen+n]); err != nil {
		l.tally.drop(DropWrite)
		return
	}
	l.tally.neighbor++
}

// allNodesMAC is the Ethernet group address of ff02::1.
var allNodesMAC = vxlan.MAC{0x33, 0x33, 0, 0, 0, 1}

// routerSolicitKey throttles router solicitations (no address has it).
var routerSolicitKey = addrKey{^uint64(0), ^uint64(0)}

// rsLen is a router solicitation with a source link-layer address option,
// IPv6 header included.
const rsLen = ipv6HeaderLen + 8 + ndOptLinkAddrLen

// sendRS asks the segment's routers to advertise themselves (RFC 4861
// §6.3.7), from the unspecified address, as a host without an address of
// its own on the link may.
func (l *insideLoop) sendRS(u *Uplink, mac vxlan.MAC) {
	f := l.ndBuf[:vxlan.EthernetLen+rsLen]
	copy(f[0:6], allRoutersMAC[:])
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeIPv6)
	p := f[vxlan.EthernetLen:]
	clear(p)
	binary.BigEndian.PutUint32(p, 6<<28)
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], 8+ndOptLinkAddrLen)
	p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = protoICMPv6, 255
	dst := allRouters.As16()
	copy(p[ipv6DstOffset:], dst[:])
	icmp := p[ipv6HeaderLen:]
	icmp[0] = icmpv6TypeRS
	// No source link-layer option from the unspecified address (RFC 4861
	// §4.1): the option bytes stay zero and are not counted.
	binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], 8)
	info := ipInfo{v6: true, proto: protoICMPv6}
	binary.BigEndian.PutUint16(icmp[2:], ^fold(sum(pseudoHeaderSum(p, &info, 8), icmp[:8])))
	if err := l.uplinkOut(u).Write(f[:vxlan.EthernetLen+ipv6HeaderLen+8]); err != nil {
		l.tally.drop(DropWrite)
		return
	}
	l.tally.neighbor++
}

var (
	allRouters    = netip.MustParseAddr("ff02::2")
	allRoutersMAC = vxlan.MAC{0x33, 0x33, 0, 0, 0, 2}
)

// writeARP builds an Ethernet frame carrying an ARP message in f.
func writeARP(f []byte, dst, src vxlan.MAC, op uint16, sha vxlan.MAC, spa netip.Addr, tha vxlan.MAC, tpa netip.Addr) {
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeARP)
	a := f[vxlan.EthernetLen:]
	copy(a, arpFixedHeader)
	binary.BigEndian.PutUint16(a[arpOpOffset:], op)
	copy(a[arpSHAOffset:], sha[:])
	s4, t4 := spa.As4(), tpa.As4()
	copy(a[arpSPAOffset:], s4[:])
	copy(a[arpTHAOffset:], tha[:])
	copy(a[arpTPAOffset:], t4[:])
}

// uplinkLoop is the scratch of one uplink's reader.
type uplinkLoop struct {
	sw    *Switch
	u     *Uplink
	bufs  [][]byte
	sizes []int
	local portTx
	tally tally
	reply [vxlan.EthernetLen + ipv6HeaderLen + naLen]byte // ARP replies and neighbour advertisements
	w     FrameWriter                                     // this loop's own
}

const uplinkBatch = 32

// dhcpClientPort is where DHCP servers answer (RFC 2131).
const dhcpClientPort = 68

func (sw *Switch) routineReadFromUplink(u *Uplink) {
	sw.log.Debug("uplink routine started", "uplink", u.name)
	defer sw.log.Debug("uplink routine stopped", "uplink", u.name)
	l := &uplinkLoop{sw: sw, u: u, bufs: newBuffers(uplinkBatch, Headroom+MaxSegmentSize+1), sizes: make([]int, uplinkBatch),
		w: u.dev.NewWriter()}
	var errs readErrors
	for {
		n, err := u.dev.ReadBatch(l.bufs, l.sizes, EthernetOffset)
		if n > 0 {
			l.process(n)
		}
		if err == nil {
			errs.streak = 0
			continue
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		errs.note(sw, "uplink", u.name, err)
	}
}

func (l *uplinkLoop) process(n int) {
	tbl := l.sw.table.Load()
	nets := tbl.uplinkNets(l.u)
	for i := 0; i < n; i++ {
		l.tally.uplinkRx++
		l.handle(nets, l.bufs[i], l.sizes[i])
	}
	l.local.flush(&l.tally)
	l.sw.stats.flush(&l.tally)
}

func (l *uplinkLoop) handle(nets []*network, buf []byte, size int) {
	if size < vxlan.EthernetLen {
		l.tally.drop(DropMalformed)
		return
	}
	eth := buf[EthernetOffset : EthernetOffset+vxlan.EthernetLen]
	dstMAC, srcMAC := vxlan.MAC(eth[0:6]), vxlan.MAC(eth[6:12])
	payload := buf[Headroom : EthernetOffset+size]
	switch binary.BigEndian.Uint16(eth[12:]) {
	case vxlan.EtherTypeARP:
		l.handleARP(nets, payload)
	case vxlan.EtherTypeIPv6:
		info, ok := parseIP(payload)
		if !ok || !info.v6 {
			return
		}
		if info.proto == protoICMPv6 && info.l4 == ipv6HeaderLen && info.length >= ipv6HeaderLen+ndMsgLen-16 &&
			payload[ipv6HopLimitOffset] == 255 && l.handleND(nets, payload[:info.length], &info, srcMAC) {
			return
		}
		l.deliver(nets, buf, &info, dstMAC, srcMAC, netip.AddrFrom16([16]byte(payload[ipv6SrcOffset:])))
	case vxlan.EtherTypeIPv4:
		info, ok := parseIP(payload)
		if !ok || info.v6 {
			return
		}
		if info.proto == protoUDP && info.l4 != 0 && info.l4+udpHeaderLen <= info.length &&
			binary.BigEndian.Uint16(payload[info.l4+2:]) == dhcpClientPort {
			if h := l.u.dhcp.Load(); h != nil {
				(*h)(payload[info.l4+udpHeaderLen : info.length])
				return
			}
		}
		l.deliver(nets, buf, &info, dstMAC, srcMAC, netip.AddrFrom4([4]byte(payload[ipv4SrcOffset:])))
	}
}

// deliver writes an IP packet from the segment (at buf[Headroom:]) to the
// local endpoint it is for, if any, and learns its sender's MAC.
func (l *uplinkLoop) deliver(nets []*network, buf []byte, info *ipInfo, dstMAC, srcMAC vxlan.MAC, src netip.Addr) {
	for _, nw := range nets {
		h := nw.hosts.get(info.dst)
		if h == nil || h.port == nil {
			continue
		}
		if dstMAC != nw.srcMAC(h.mac) && dstMAC != vxlan.Broadcast {
			return // not for this endpoint
		}
		if nw.onLink(src) {
			l.learn(keyOf(src), srcMAC)
		}
		pkt := buf[:Headroom+info.length]
		completeChecksum(pkt[Headroom:], info)
		l.local.add(h.port, pkt)
		return
	}
}

// ICMPv6 router solicitation and advertisement (RFC 4861 §4.1, §4.2).
const (
	icmpv6TypeRS     = 133
	icmpv6TypeRA     = 134
	raLifetimeOffset = 6 // router lifetime, in the ICMPv6 message
	raLen            = 16
)

// handleND handles IPv6 neighbour discovery from the segment: a
// solicitation for a local endpoint's address is answered (with the
// host's MAC on l2bridge), and solicitations, advertisements and router
// advertisements teach the neighbour cache. It reports whether the packet
// was neighbour discovery (consumed).
func (l *uplinkLoop) handleND(nets []*network, pkt []byte, info *ipInfo, srcMAC vxlan.MAC) bool {
	icmp := pkt[ipv6HeaderLen:]
	if icmp[1] != 0 {
		return false
	}
	src := netip.AddrFrom16([16]byte(pkt[ipv6SrcOffset:]))
	switch icmp[0] {
	case icmpv6TypeRA:
		if len(icmp) < raLen || !src.IsLinkLocalUnicast() || !anyV6(nets) {
			return true
		}
		if binary.BigEndian.Uint16(icmp[raLifetimeOffset:]) == 0 {
			// A router retiring itself (lifetime 0): forget it if it is
			// the one in use.
			if r := l.u.router6.Load(); r != nil && *r == ndLinkAddr(icmp[raLen:], ndOptSourceLinkAddr, srcMAC) {
				l.u.router6.Store(nil)
			}
			return true
		}
		if mac := ndLinkAddr(icmp[raLen:], ndOptSourceLinkAddr, srcMAC); !mac.IsMulticast() && !mac.IsZero() {
			if r := l.u.router6.Load(); r == nil || *r != mac {
				l.u.router6.Store(&mac)
			}
		}
		return true
	case icmpv6TypeNA:
		if len(icmp) < ndMsgLen {
			return true
		}
		target := netip.AddrFrom16([16]byte(icmp[ndTargetOffset:]))
		// An advertisement updates what the cache holds, or answers a
		// solicitation (S set); an unsolicited one never adds an entry
		// (RFC 4861 §7.2.5), so a stranger cannot fill the cache.
		_, known := l.u.neighbor(keyOf(target))
		if (known || icmp[4]&naFlagSolicited != 0) && l.onV6Link(nets, target) {
			l.learn(keyOf(target), ndLinkAddr(icmp[ndMsgLen:], ndOptTargetLinkAddr, srcMAC))
		}
		return true
	case icmpv6TypeNS:
	default:
		return false
	}
	if len(icmp) < ndMsgLen {
		return true
	}
	target := netip.AddrFrom16([16]byte(icmp[ndTargetOffset:]))
	for _, nw := range nets {
		h := nw.hosts.get(keyOf(target))
		if h == nil || h.port == nil {
			continue // another host answers for its own endpoints
		}
		mac := nw.srcMAC(h.mac)
		f := l.reply[:]
		copy(f[0:6], srcMAC[:])
		copy(f[6:12], mac[:])
		binary.BigEndian.PutUint16(f[12:], vxlan.EtherTypeIPv6)
		writeNA(f[vxlan.EthernetLen:], target, src, mac)
		if src.IsUnspecified() { // duplicate address detection: to all nodes
			copy(f[0:6], allNodesMAC[:])
		}
		if err := l.w.Write(f[:vxlan.EthernetLen+ipv6HeaderLen+naLen]); err != nil {
			l.tally.drop(DropWrite)
			return true
		}
		// A solicitation for one of ours teaches its sender (it is about
		// to talk to the endpoint).
		if !src.IsUnspecified() && l.onV6Link(nets, src) {
			l.learn(keyOf(src), ndLinkAddr(icmp[ndMsgLen:], ndOptSourceLinkAddr, srcMAC))
		}
		l.tally.neighbor++
		return true
	}
	return true
}

// anyV6 reports whether one of nets has an IPv6 subnet.
func anyV6(nets []*network) bool {
	for _, nw := range nets {
		if nw.hasV6 {
			return true
		}
	}
	return false
}

// onV6Link reports whether a is worth keeping in the cache: on the segment
// of one of nets, or link-local when one of them is IPv6.
func (l *uplinkLoop) onV6Link(nets []*network, a netip.Addr) bool {
	return onAnyLink(nets, a) || a.IsLinkLocalUnicast() && anyV6(nets)
}

// ndLinkAddr is the link-layer address option of type want among the
// neighbour discovery options opts, else def.
func ndLinkAddr(opts []byte, want byte, def vxlan.MAC) vxlan.MAC {
	for len(opts) >= 8 && opts[1] > 0 && int(opts[1])*8 <= len(opts) {
		if opts[0] == want && opts[1] == 1 {
			return vxlan.MAC(opts[2:8])
		}
		opts = opts[int(opts[1])*8:]
	}
	return def
}

func (l *uplinkLoop) handleARP(nets []*network, arp []byte) {
	if len(arp) < arpLen || string(arp[:arpFixedHdrLen]) != arpFixedHeader {
		l.tally.drop(DropMalformed)
		return
	}
	sha := vxlan.MAC(arp[arpSHAOffset:])
	spa := netip.AddrFrom4([4]byte(arp[arpSPAOffset:]))
	tpa := netip.AddrFrom4([4]byte(arp[arpTPAOffset:]))
	if !spa.IsUnspecified() && onAnyLink(nets, spa) {
		l.learn(keyOf(spa), sha)
	}
	if binary.BigEndian.Uint16(arp[arpOpOffset:]) != arpOpRequest || spa == tpa {
		return
	}
	for _, nw := range nets {
		h := nw.hosts.get(keyOf(tpa))
		if h == nil || h.port == nil {
			continue // another host answers for its own endpoints
		}
		mac := nw.srcMAC(h.mac)
		f := l.reply[:vxlan.EthernetLen+arpLen]
		writeARP(f, sha, mac, arpOpReply, mac, tpa, sha, spa)
		if err := l.w.Write(f); err != nil {
			l.tally.drop(DropWrite)
			return
		}
		l.tally.neighbor++
		return
	}
}
