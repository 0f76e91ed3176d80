package dataplane

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// insideLoop is one port's inside path (TUN → underlay). It holds no
// packet buffers of its own on Linux: it borrows a batch from the switch's
// pool for each batch it reads and processes (see pool.go).
type insideLoop struct {
	sw   *Switch
	port *Port
	room int // the device's BatchSize: buffers a read must have left

	// borrowed: from sw.batches while one batch is read and processed,
	// until routineReadFromPort puts it back after process flushed every
	// packet; nil in between.
	b *insideBatch

	// The port's own read buffers, only for a device read with
	// Device.Read, which waits holding them (nil on raw reads).
	readBufs  [][]byte
	readSizes []int

	tally tally

	arp    arpThrottle // ARP requests and solicitations, per address (uplinks, learned.go)
	arpBuf [vxlan.EthernetLen + arpLen]byte
	icmp   icmpLimit                       // ICMP "too big" answers (toobig.go)
	refuse icmpLimit                       // ICMP "port unreachable" answers from VIPs with no task
	askBuf [Headroom + nsLen]byte          // ARP requests and solicitations sent while a packet still goes out (learned.go)
	ndBuf  [vxlan.EthernetLen + nsLen]byte // uplinks' neighbour solicitations

	frags     [][]byte             // IPv4 fragments (fragment.go); made on first use
	fragOpts  [ipv4MaxOptions]byte // the options later fragments carry (fragment.go)
	fragsUsed int                  // of frags, queued in this batch

	keys       *Keyring     // encrypted networks' keys, loaded once per batch
	sealing    seal.Scratch // this loop's own
	copies     [][]byte     // sealed floods' copies, one per VTEP; made on first use
	copiesUsed int          // of copies, queued in this batch

	flows *flowTable // flows to services' VIPs (flows.go); made on first use
	// vip: the packet being forwarded was sent to this VIP (vipped), its
	// destination now a task's: an ICMP error about it quotes the VIP.
	vip    addrKey
	vipped bool
}

// refillExtra is how many packets past one Read's batch the inside loop
// gathers while more are queued: small packets come one per read(2), and
// gathered they leave in one send (UDP GSO on the underlay).
const refillExtra = 64

func (sw *Switch) newInsideLoop(p *Port) *insideLoop {
	l := &insideLoop{sw: sw, port: p, room: p.dev.BatchSize()}
	if p.raw == nil {
		// Every buffer must hold a whole segment of any size the kernel
		// may choose (the TUN device splits TSO packets into them and
		// panics on a segment that does not fit), and room to coalesce
		// local deliveries. Pages never written are never made resident.
		l.readBufs = newBuffers(l.room, Headroom+MaxSegmentSize)
		l.readSizes = make([]int, l.room)
	} else {
		sw.batches.need(l.room)
	}
	return l
}

// routineReadFromPort reads batches from one port until its device closes.
func (sw *Switch) routineReadFromPort(p *Port) {
	sw.log.Debug("port routine started", "port", p.name)
	defer sw.log.Debug("port routine stopped", "port", p.name)
	l := sw.newInsideLoop(p)
	var errs readErrors
	for {
		var n int
		var err error
		if p.raw != nil {
			n, err = l.read() // borrows l.b
			if n > 0 {
				partial, cut := l.b.partial, l.b.cut
				if !p.vnet {
					partial, cut = nil, nil
				}
				l.process(l.b.bufs, l.b.sizes, partial, cut, n)
			}
		} else {
			n, err = p.dev.Read(l.readBufs, l.readSizes, Headroom)
			if err != nil && !errors.Is(err, os.ErrClosed) {
				dropRead(&l.tally, err)
			}
			if n > 0 {
				l.b = sw.batches.get()
				l.process(l.readBufs, l.readSizes, nil, nil, n)
			}
		}
		if l.b != nil {
			sw.batches.put(l.b) // every packet in it was flushed
			l.b = nil
		}
		if err == nil {
			errs.streak = 0
			continue
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		// Whatever a container sends must not stop its port: read counted
		// the drop; go on.
		sw.stats.flush(&l.tally)
		errs.note(sw, "port", p.name, err)
	}
}

// Lend borrows a batch for a read of the raw device (tun.Lender): all its
// buffers but the last room-1, so that a super-packet read into the last
// one lent still has room for its segments.
func (l *insideLoop) Lend() ([][]byte, []int) {
	l.b = l.sw.batches.get()
	return l.b.bufs[:len(l.b.bufs)-l.room+1], l.b.sizes
}

// Unlend returns the batch of the last Lend, unread, before the read
// waits (tun.Lender).
func (l *insideLoop) Unlend() {
	l.sw.batches.put(l.b)
	l.b = nil
}

// dropRead counts a read or split that failed as the drop it is.
func dropRead(t *tally, err error) {
	if errors.Is(err, wgtun.ErrTooManySegments) || errors.Is(err, errTooManySegments) {
		t.drop(DropTooBig)
	} else {
		t.drop(DropMalformed)
	}
}

// read waits for the port's packets and reads what is queued, at Headroom,
// into the buffers of a batch it borrows for l.b (none while it waits; see
// Lend). It reads the TUN device's descriptor itself (tun.Raw): a batch of
// small packets costs one read(2) each and no more, and TSO super-packets
// are split in the batch's own buffers, which is why reading stops while
// fewer than a whole batch (BatchSize) of buffers is left. A packet whose
// virtio-net header is malformed is skipped. Every failure but a closed
// device is counted in l.tally as a drop and returned (the last one). It
// returns with l.b set whenever it read anything, and may return with it
// set when it read nothing.
func (l *insideLoop) read() (int, error) {
	p, t := l.port, &l.tally
	off := Headroom
	if p.vnet {
		off -= virtioHdrLen
	}
	n := 0
	var bad error
	super := false // the last packet read was a super-packet's segment
	for wait := true; ; wait = false {
		var k int
		var drained bool
		var err error
		if wait {
			k, drained, err = p.raw.ReadBatchLent(l, off)
			if l.b == nil {
				return 0, err // closed while waiting
			}
		} else {
			if len(l.b.bufs)-n < l.room {
				break
			}
			// A super-packet read into bufs[n+k] may need room buffers
			// from there on, so a batch reads into no more than the
			// first len-room+1 of those left.
			k, drained, err = p.raw.ReadBatch(l.b.bufs[n:len(l.b.bufs)-l.room+1], off, l.b.sizes[n:], false)
		}
		bufs, sizes := l.b.bufs, l.b.sizes
		if !p.vnet {
			n += k
		} else {
			for i, end := n, n+k; i < end; i++ {
				// Packet i moves down to n, over any that failed: only
				// the last of a batch may be a super-packet, so segments
				// never reach an unsplit packet.
				if i != n {
					bufs[n], bufs[i] = bufs[i], bufs[n]
					sizes[n] = sizes[i]
				}
				m, serr := splitVirtio(bufs[n:], sizes[n:], Headroom, sizes[n], l.b.partial[n:])
				if serr != nil {
					dropRead(t, serr)
					bad = serr
					continue
				}
				clear(l.b.cut[n : n+m])
				l.b.cut[n] = m > 1 || super
				super = m > 1
				n += m
			}
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				dropRead(t, err)
			}
			return n, err
		}
		if drained || k == 0 {
			break
		}
	}
	return n, bad
}

// readErrors rate-limits what failing reads cost: one log line per
// readErrorLogEvery, and a pause once errors come back to back, so a
// device in a persistent error state cannot spin a core.
type readErrors struct {
	streak  int
	lastLog time.Time
}

const (
	readErrorLogEvery = 10 * time.Second
	readErrorStreak   = 100
	readErrorPause    = 10 * time.Millisecond
)

func (e *readErrors) note(sw *Switch, what, name string, err error) {
	e.streak++
	if now := time.Now(); now.Sub(e.lastLog) >= readErrorLogEvery {
		e.lastLog = now
		sw.log.Warn(what+" read failed; packets dropped", what, name, "error", err)
	}
	if e.streak >= readErrorStreak {
		time.Sleep(readErrorPause)
	}
}

// process forwards the n packets read into bufs (at Headroom, sizes[i]
// long; partial[i]: its TCP checksum is left at the pseudo-header sum, see
// lazyChecksum; cut[i]: packet i starts a train of its own on the
// underlay, see insideBatch.cut; either may be nil), with the scratch of
// the borrowed batch l.b. They are all flushed when it returns.
func (l *insideLoop) process(bufs [][]byte, sizes []int, partial, cut []bool, n int) {
	sw := l.sw
	b := l.b
	tbl := sw.table.Load()
	pi := tbl.port(l.port)
	l.tally.portRx += uint64(n)
	if pi == nil {
		l.tally.drops[DropPortDetached] += uint64(n)
		sw.stats.flush(&l.tally)
		return
	}
	nw := pi.net
	pm := sw.pmtu.Load() // narrow underlay paths, usually none
	mtu := sw.cfg.MTU - nw.overhead
	l.keys = sw.keys.Load()
	l.copiesUsed = 0
	var now int64 // read once per batch, when first needed
	b.last = lookupCache{}
	l.fragsUsed = 0
	for i := 0; i < n; i++ {
		// borrowed: pkt and frame point into bufs[i], which stays ours
		// for the batch; the underlay and port batches below hold them
		// until flushed at the end.
		buf := bufs[i]
		pkt := buf[Headroom : Headroom+sizes[i]]
		l.vipped = false
		if cut != nil && cut[i] {
			b.udp.startTrain()
		}
		info, ok := parseIP(pkt)
		if !ok {
			l.tally.drop(DropMalformed)
			continue
		}
		if info.length > mtu && (info.v6 || !mayFragment(pkt)) {
			// Only a container that raised its own MTU sends these; the
			// underlay has no room for them. (IPv4 that may be fragmented
			// is, on its way to a VTEP: overPath.)
			if partial != nil && partial[i] {
				completeChecksum(pkt, &info) // the answer quotes it
			}
			l.tooBig(buf, &info, mtu, nw)
			continue
		}
		pkt = pkt[:info.length]
		lazy := partial != nil && partial[i] // its TCP checksum is partial
		if nw.clampMSS != 0 && info.proto == protoTCP {
			if lazy { // clampMSS mends a finished checksum
				completeChecksum(pkt, &info)
				lazy = false
			}
			clampMSS(pkt, &info, nw.clampMSS)
		}
		if nw.hasVIPs {
			if svc := nw.vips.get(info.dst); svc != nil {
				if now == 0 {
					now = time.Now().UnixNano()
				}
				l.vip, l.vipped = info.dst, true
				if ok, noTask := l.toTask(nw, svc, pkt, &info, lazy, now); !ok {
					if noTask {
						// Counted as a no_task drop, answered as a host
						// where nothing listens would, quoting the
						// packet whole (its checksum finished).
						if lazy {
							completeChecksum(pkt, &info)
						}
						if size := l.refuse.unreachable(buf, info.length, &info, nw); size > 0 {
							l.b.local.add(l.port, buf[:Headroom+size])
						}
					}
					continue
				}
			}
		}
		frame := buf[UnderlayOffset : Headroom+info.length]
		hash := flowHash(pkt, &info)

		h := b.last.host(nw, info.dst)
		if lazy && (!h.takesPartial(nw) || pm != nil || info.length > mtu) {
			// Finished unless a vxnet peer takes it as it is; and before a
			// narrow path may cut it into fragments.
			completeChecksum(pkt, &info)
		}
		out := h == nil && nw.isOutside(info.dst, info.v6) // bound for outside the network
		// The policy host of an l2tunnel network decides what its own
		// containers send, to an endpoint or out through its gateway; what
		// comes back in through the gateway is a reply.
		if nw.policy != nil && (h != nil || out) && l.port != nw.gateway && !nw.policy.allows(pkt, &info) {
			l.tally.drop(DropPolicy)
			continue
		}
		switch {
		case nw.uplink != nil && (h == nil || h.port == nil) && !nw.isFlood(info.dst, info.v6):
			l.toUplink(tbl, nw, pi, buf, &info)
		case h != nil && nw.policyVTEP.IsValid():
			// l2tunnel: hair-pinned through the policy host, same host
			// included.
			if h.port == l.port {
				l.tally.drop(DropLoop)
				continue
			}
			if (pm != nil || info.length > mtu) && l.overPath(pm, nw.policyVTEP, buf, &info, nw, h.mac, pi.mac, hash) {
				continue
			}
			vxlan.Encap(frame, nw.vni, h.mac, pi.mac, info.etherType)
			l.send(nw, buf, Headroom+info.length, nw.policyVTEP, hash)
		case h != nil && h.port != nil:
			if h.port == l.port {
				l.tally.drop(DropLoop)
				continue
			}
			if h.port.rev.Load() != nil {
				// A task's reply to a client of its VIP, on this host.
				if now == 0 {
					now = time.Now().UnixNano()
				}
				fromVIP(h.port, pkt, &info, now)
			}
			b.local.add(h.port, buf[:Headroom+info.length])
		case h != nil:
			if (pm != nil || info.length > mtu) && l.overPath(pm, h.vtep, buf, &info, nw, h.mac, pi.mac, hash) {
				continue
			}
			vxlan.Encap(frame, nw.vni, h.mac, pi.mac, info.etherType)
			l.send(nw, buf, Headroom+info.length, h.vtep, hash)
		case nw.gateway != nil && !nw.isFlood(info.dst, info.v6) && (nw.gateway == l.port || len(nw.vteps) == 0 && !out):
			// To an address no endpoint has, from the host (missing, or
			// routed back to the network), or inside a network of this
			// host alone: nowhere to go.
			l.tally.drop(DropNoEndpoint)
			continue
		case nw.gateway != nil && out && info.v6 && nw.gatewayV4Only:
			// IPv6 of a dual-stack network whose gateway carries IPv4
			// alone: no way out.
			l.tally.drop(DropNoEndpoint)
			continue
		case nw.gateway != nil && out:
			// To an address outside the network: out through the gateway.
			// The network's own subnets stay on the network.
			b.local.add(nw.gateway, buf[:Headroom+info.length])
		case nw.policyVTEP.IsValid() && out:
			// l2tunnel: out through the policy host, which decides and
			// sends it out of its gateway.
			if (pm != nil || info.length > mtu) && l.overPath(pm, nw.policyVTEP, buf, &info, nw, vxlan.GatewayMAC(nw.vni), pi.mac, hash) {
				continue
			}
			vxlan.Encap(frame, nw.vni, vxlan.GatewayMAC(nw.vni), pi.mac, info.etherType)
			l.send(nw, buf, Headroom+info.length, nw.policyVTEP, hash)
		case !nw.isFlood(info.dst, info.v6) && !isLinkLocal(info.dst, info.v6) && nw.onNetwork(info.dst, info.v6) &&
			nw.policy == nil && !nw.policyVTEP.IsValid() && !nw.sealed:
			// To an address of the network no endpoint has: to what was
			// learnt of it, or ask (learned.go). Never on an l2tunnel
			// network, whose policy host decides.
			if now == 0 {
				now = time.Now().UnixNano()
			}
			l.resolve(nw, pi, buf, &info, hash, now, pm)
		case !nw.isFlood(info.dst, info.v6) && !isLinkLocal(info.dst, info.v6):
			// Unicast nowhere: off the network's subnets with no way out,
			// an l2tunnel address no endpoint has, or an encrypted
			// network's (whose VTEPs all run vxnet and list every
			// endpoint: nobody to ask).
			l.tally.drop(DropNoEndpoint)
			continue
		default:
			// Broadcast, multicast and link-local unicast (which no table
			// lists, and no one is asked for): replicate to every VTEP and
			// every other local port of the network.
			dstMAC := floodMAC(info.dst, info.v6)
			vxlan.Encap(frame, nw.vni, dstMAC, pi.mac, info.etherType)
			if nw.sealed {
				l.floodSealed(nw, buf, Headroom+info.length, hash)
			} else {
				for _, v := range nw.vteps {
					if !l.floodOverPath(pm, v, buf, &info, nw, dstMAC, pi.mac, hash) {
						b.udp.add(frame, sw.vtepAddr(v), hash)
					}
				}
			}
			// Shared by several writes: capacity capped so that no TUN
			// write can coalesce into it and change it for the next.
			shared := buf[: Headroom+info.length : Headroom+info.length]
			for _, lp := range nw.locals {
				if lp != l.port {
					b.local.add(lp, shared)
				}
			}
			l.tally.flooded++
		}
	}
	// The underlay goes first: a TUN write puts its virtio-net header over
	// the bytes where a flooded packet's VXLAN header sits.
	b.udp.flush(&l.tally)
	b.local.flush(&l.tally)
	sw.stats.flush(&l.tally)
}

// tooBig drops the packet at buf[Headroom:] as larger than mtu and
// answers it with ICMP "too big" where it gets an answer (toobig.go).
func (l *insideLoop) tooBig(buf []byte, info *ipInfo, mtu int, nw *network) {
	l.tally.drop(DropTooBig)
	if l.vipped {
		// Sent to a VIP: the sender knows the packet by it (the
		// checksums are complete here: overPath finished them).
		rewriteAddr(buf[Headroom:Headroom+info.length], info, true, l.vip, false)
		info.dst = l.vip
	}
	if n := l.icmp.tooBig(buf, info.length, info, mtu, nw, l.port == nw.gateway); n > 0 {
		l.b.local.add(l.port, buf[:Headroom+n])
		l.tally.icmpTooBig++
	}
}

// overPath reports whether the packet, bound for vtep (as a frame to dst
// from src, with hash), is larger than the switch's MTU or than the
// underlay path there carries (pm, may be nil); if so it has been sent in
// fragments (IPv4 without DF: fragment.go) or dropped and answered
// (tooBig).
func (l *insideLoop) overPath(pm *pathMTUs, vtep netip.Addr, buf []byte, info *ipInfo, nw *network, dst, src vxlan.MAC, hash uint32) bool {
	m := l.pathLimit(pm, vtep, nw)
	if info.length <= m {
		return false
	}
	if !info.v6 && mayFragment(buf[Headroom:]) && l.fragmentV4(buf, info, m, nw, dst, src, vtep, hash) {
		return true
	}
	l.tooBig(buf, info, m, nw)
	return true
}

// pathLimit is the largest inner packet of nw that goes to vtep whole:
// the switch's MTU less the network's overhead, or what a narrower
// underlay path there carries (pm, may be nil).
func (l *insideLoop) pathLimit(pm *pathMTUs, vtep netip.Addr, nw *network) int {
	m := l.sw.cfg.MTU - nw.overhead
	if pm != nil {
		if p := pm.innerMTU(vtep) - nw.overhead; p > 0 && p < m {
			m = p
		}
	}
	return m
}

// floodOverPath is overPath for one VTEP of a flood: a packet larger than
// the switch's MTU or the path to vtep carries goes there in fragments
// (IPv4 without DF) or not at all, counted as too big. No ICMP answers a
// broadcast or multicast packet (RFC 1122 3.2.2), and the other VTEPs and
// local ports get it whole.
func (l *insideLoop) floodOverPath(pm *pathMTUs, vtep netip.Addr, buf []byte, info *ipInfo, nw *network, dst, src vxlan.MAC, hash uint32) bool {
	m := l.pathLimit(pm, vtep, nw)
	if info.length <= m {
		return false
	}
	if info.v6 || !mayFragment(buf[Headroom:]) || !l.fragmentV4(buf, info, m, nw, dst, src, vtep, hash) {
		l.tally.drop(DropTooBig)
	}
	return true
}

// Lazy checksums. A TCP segment the inside path cut from a TSO
// super-packet (or read with its checksum left to the device) carries
// the pseudo-header sum alone, as Linux hands it over, and summing its
// payload is the largest part of what the switch does to it. Another
// vxnet switch never needs that sum: it takes a segment whose checksum is
// partial as it takes one from a Linux peer (checksumAcceptable,
// completeChecksum), and merges a train of them into one super-packet
// whose checksum the receiving container's kernel takes as done, as it
// does any GRO packet; the outer UDP checksum still covers every byte on
// the wire. So the switch finishes the checksum only where it leaves for
// something else: a local port, a gateway or uplink, a kernel VTEP, an
// l2tunnel hop, a flood, an ICMP answer quoting it.

// takesPartial reports whether a packet to h on nw may leave with its TCP
// checksum partial: h is another host's endpoint, behind a vxnet VTEP
// (EndpointSpec.Peer), on a plain overlay.
func (h *host) takesPartial(nw *network) bool {
	return h != nil && h.port == nil && h.peer && nw.policy == nil && !nw.policyVTEP.IsValid() && nw.uplink == nil
}

// send queues the frame Encap wrote at buf[UnderlayOffset:end] for vtep:
// as it is, or sealed on an encrypted network.
func (l *insideLoop) send(nw *network, buf []byte, end int, vtep netip.Addr, hash uint32) {
	if !nw.sealed {
		l.b.udp.add(buf[UnderlayOffset:end], l.sw.vtepAddr(vtep), hash)
		return
	}
	if d := sealFrame(l.keys, &l.sealing, &l.tally, buf, end, vtep); d != nil {
		l.b.udp.add(d, l.sw.vtepAddr(vtep), hash)
	}
}

// sealFrame seals the frame at buf[UnderlayOffset:end] (VXLAN header,
// inner Ethernet header, packet) for vtep in place and returns the
// datagram, buf[SealedOffset:end+seal.TagLen]; nil when there is no key to
// seal it with (counted in t). buf has room for the tag past end: every
// buffer a frame is built or received in does.
func sealFrame(keys *Keyring, s *seal.Scratch, t *tally, buf []byte, end int, vtep netip.Addr) []byte {
	k := keys.sendKey(vtep)
	if k == nil {
		t.drop(DropSealNoKey)
		return nil
	}
	ctr, ok := k.Reserve(1)
	if !ok {
		t.drop(DropSealNoKey) // the key is used up until the next rotation
		return nil
	}
	// The VXLAN header moves down in front of the seal header.
	copy(buf[SealedOffset:SealedOffset+vxlan.HeaderLen], buf[UnderlayOffset:UnderlayOffset+vxlan.HeaderLen])
	d, err := k.Seal(s, buf[SealedOffset:end], ctr)
	if err != nil {
		t.drop(DropSealNoKey)
		return nil
	}
	return d
}

// maxSealedCopies bounds the copies of sealed floods one batch queues
// before it sends them.
const maxSealedCopies = 64

// floodSealed sends the frame Encap wrote at buf[UnderlayOffset:end] to
// every VTEP of nw, each copy sealed with its own key.
func (l *insideLoop) floodSealed(nw *network, buf []byte, end int, hash uint32) {
	if l.copies == nil {
		l.copies = newBuffers(maxSealedCopies, Headroom+l.sw.cfg.MTU+seal.TagLen)
	}
	if end-Headroom > l.sw.cfg.MTU {
		return // larger than a copy holds; a flood that large is not sent whole anyway
	}
	for _, v := range nw.vteps {
		if l.copiesUsed == len(l.copies) {
			// The queued copies borrow the buffers: send them first.
			l.b.udp.flush(&l.tally)
			l.copiesUsed = 0
		}
		c := l.copies[l.copiesUsed]
		l.copiesUsed++
		copy(c[UnderlayOffset:end], buf[UnderlayOffset:end])
		if d := sealFrame(l.keys, &l.sealing, &l.tally, c, end, v); d != nil {
			l.b.udp.add(d, l.sw.vtepAddr(v), hash)
		}
	}
}
