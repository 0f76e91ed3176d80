package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// outsideLoop is the scratch of the outside path (underlay → TUN),
// allocated once in Run.
type outsideLoop struct {
	sw    *Switch
	bufs  [][]byte // owned for the loop's life; each has MaxSegmentSize room
	views [][]byte // bufs[i][UnderlayOffset:], where datagrams land
	sizes []int
	segs  []int // UDP GRO segment size per datagram, 0 for one datagram
	from  []netip.AddrPort
	gro   groReader // the underlay, when it can coalesce on receive

	// Datagrams the kernel coalesced (UDP GRO) are cut back into their
	// segments, each copied into a buffer of its own: a TUN write may
	// coalesce into a buffer up to its capacity, so segments must not share
	// one. Used in turn; the batches are flushed before they come round.
	segBufs [][]byte
	segUsed int
	udp     underlayTx // neighbour replies
	local   portTx
	tally   tally

	// The last sender found allowed in the last network, so a batch
	// from one VTEP checks the allow-list once. Reset every batch, as the
	// table may change between batches.
	allowedNet *network
	allowedSrc netip.AddrPort

	// The last lookups of this batch: a burst is mostly one flow.
	last lookupCache

	removals uint64 // sw.removals when local's writers were last pruned

	keys    *Keyring     // encrypted networks' keys, loaded once per batch
	sealing seal.Scratch // this loop's own
	// opened: the datagrams handled now were sealed and are open (a
	// train openTrain opened); a plain datagram is taken only then on
	// an encrypted network.
	opened bool

	now int64 // the time, read once per batch when first needed (clock)
}

func (sw *Switch) newOutsideLoop(u Underlay) *outsideLoop {
	batch := u.BatchSize()
	l := &outsideLoop{
		sw:    sw,
		bufs:  newBuffers(batch, Headroom+MaxSegmentSize),
		views: make([][]byte, batch),
		sizes: make([]int, batch),
		from:  make([]netip.AddrPort, batch),
		udp:   newUnderlayTx(sw.underlay.NewWriter(), batch),
	}
	if g, ok := u.(groReader); ok {
		l.gro = g
		l.segs = make([]int, batch)
		l.segBufs = newBuffers(maxGROSegments, Headroom+MaxSegmentSize)
	}
	for i, b := range l.bufs {
		// A datagram may be far larger than the MTU: a Linux peer on a
		// veth underlay hands over whole TSO segments (up to 64 KB) in
		// one VXLAN datagram. The inner packet then reaches the TUN
		// device whole, as GRO would have built it.
		l.views[i] = b[UnderlayOffset:]
	}
	return l
}

// groReader is an underlay that can hand over datagrams the kernel
// coalesced (udp.Conn with UDP_GRO).
type groReader interface {
	ReadBatchGRO(bufs [][]byte, sizes, segs []int, from []netip.AddrPort) (int, error)
}

// maxGROSegments is the most datagrams the kernel coalesces into one.
const maxGROSegments = 64

// routineReadFromUnderlay reads VXLAN datagrams until the underlay closes.
func (sw *Switch) routineReadFromUnderlay(u Underlay) error {
	sw.mu.Lock()
	if sw.closed {
		sw.mu.Unlock()
		return nil
	}
	sw.wg.Add(1) // under mu, so never after Close's Wait began
	sw.mu.Unlock()
	defer sw.wg.Done()
	sw.log.Info("underlay routine started")
	defer sw.log.Info("underlay routine stopped")
	l := sw.newOutsideLoop(u)
	for {
		var n int
		var err error
		if l.gro != nil {
			n, err = l.gro.ReadBatchGRO(l.views, l.sizes, l.segs, l.from)
		} else {
			n, err = u.ReadBatch(l.views, l.sizes, l.from)
		}
		if n > 0 {
			l.process(n)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// process handles the n datagrams read into l.views.
func (l *outsideLoop) process(n int) {
	sw := l.sw
	tbl := sw.table.Load()
	l.allowedNet = nil
	l.last = lookupCache{}
	l.segUsed = 0
	l.now = 0
	l.keys = sw.keys.Load()
	if r := sw.removals.Load(); r != l.removals {
		l.local.forgetClosed() // keep no removed port alive
		l.removals = r
	}
	for i := 0; i < n; i++ {
		l.tally.udpRxBytes += uint64(l.sizes[i])
		if l.segs != nil && l.segs[i] > 0 && l.sizes[i] > l.segs[i] {
			l.handleCoalesced(tbl, i)
			continue
		}
		l.tally.udpRx++
		l.handle(tbl, l.bufs[i], l.sizes[i], l.from[i])
	}
	l.udp.flush(&l.tally)
	l.local.flush(&l.tally)
	sw.stats.flush(&l.tally)
}

// handleCoalesced cuts datagram i, which the kernel coalesced, back into
// its datagrams and handles each.
func (l *outsideLoop) handleCoalesced(tbl *Table, i int) {
	seg, size := l.segs[i], l.sizes[i]
	src := l.bufs[i][UnderlayOffset : UnderlayOffset+size]
	if len(src) > seal.MarkerIndex && src[seal.MarkerIndex] == seal.Marker {
		// Sealed: opened in place and packed as plain datagrams, then
		// merged and handled as those are.
		seg, size = l.openTrain(tbl, src, seg, l.from[i])
		src = src[:size]
		l.opened = true
	}
	if (size+seg-1)/seg > len(l.segBufs)-l.segUsed {
		// borrowed: the batches hold segment buffers; send them first.
		l.udp.flush(&l.tally)
		l.local.flush(&l.tally)
		l.segUsed = 0
	}
	for off := 0; off < size; off += seg {
		// The last datagram starts no run.
		if off+seg < size {
			if n := l.coalesce(tbl, src, off, seg, l.from[i]); n > 0 {
				off += (n - 1) * seg
				continue
			}
		}
		k := min(seg, size-off)
		buf := l.segBufs[l.segUsed]
		l.segUsed++
		copy(buf[UnderlayOffset:], src[off:off+k])
		l.tally.udpRx++
		l.handle(tbl, buf, k, l.from[i])
	}
	l.opened = false
}

// allowed reports whether from is a VTEP of nw.
func (l *outsideLoop) allowed(nw *network, from netip.AddrPort) bool {
	if nw == l.allowedNet && from == l.allowedSrc {
		return true
	}
	if nw.policyVTEP.IsValid() && from.Addr().Unmap() != nw.policyVTEP {
		return false // l2tunnel: only through the policy host
	}
	if !nw.vtepSet.get(keyOf(from.Addr().Unmap())) {
		return false
	}
	l.allowedNet, l.allowedSrc = nw, from
	return true
}

// handle decides the fate of one datagram, which lies in buf at
// UnderlayOffset.
func (l *outsideLoop) handle(tbl *Table, buf []byte, size int, from netip.AddrPort) {
	// borrowed: dgram and everything sliced from it point into buf, owned
	// by this loop; the batches below hold them until flushed.
	dgram := buf[UnderlayOffset : UnderlayOffset+size]
	// The codec's Decap, read field by field: the switch needs the VNI,
	// the EtherType and whether the destination MAC is a group address.
	if len(dgram) < vxlan.EncapLen {
		l.tally.drop(DropMalformed)
		return
	}
	vni, err := vxlan.ParseHeader(dgram)
	if err != nil {
		l.tally.drop(DropMalformed)
		return
	}
	nw := l.last.network(tbl, vni)
	if nw == nil {
		l.tally.drop(DropUnknownVNI)
		return
	}
	if !l.allowed(nw, from) {
		l.tally.drop(DropUnknownVTEP)
		return
	}
	src := from.Addr().Unmap()
	switch {
	case nw.sealed && !l.opened:
		if dgram[seal.MarkerIndex] != seal.Marker {
			l.tally.drop(DropSealMismatch)
			return
		}
		if !l.open(dgram, src) {
			return
		}
		// Open: the VXLAN header moves up over the seal header, and the
		// plain datagram lies where handle wants it in buf[shift:].
		const shift = seal.IDLen + seal.CounterLen
		copy(dgram[shift:shift+vxlan.HeaderLen], dgram[:vxlan.HeaderLen])
		buf = buf[shift:]
		size -= seal.Overhead
		dgram = buf[UnderlayOffset : UnderlayOffset+size]
		if len(dgram) < vxlan.EncapLen {
			l.tally.drop(DropMalformed)
			return
		}
	case !nw.sealed && (l.opened || dgram[seal.MarkerIndex] == seal.Marker):
		l.tally.drop(DropSealMismatch)
		return
	}
	eth := dgram[vxlan.HeaderLen:vxlan.EncapLen]
	etherType := binary.BigEndian.Uint16(eth[vxlan.EthernetTypeOffset:])
	groupDst := eth[0]&1 != 0
	payload := dgram[vxlan.EncapLen:]
	if nw.sealed && etherType != vxlan.EtherTypeIPv4 && etherType != vxlan.EtherTypeIPv6 {
		// vxnet peers ask nothing over the underlay; replies would go
		// unsealed.
		l.tally.drop(DropUnsupported)
		return
	}
	switch etherType {
	case vxlan.EtherTypeARP:
		l.answerARP(nw, src, buf, len(payload))
		return
	case vxlan.EtherTypeIPv4, vxlan.EtherTypeIPv6:
	default:
		l.tally.drop(DropUnsupported)
		return
	}
	info, ok := parseIP(payload)
	if !ok || info.etherType != etherType {
		l.tally.drop(DropMalformed)
		return
	}
	if nw.sealed && info.etherType == vxlan.EtherTypeIPv6 && (isNeighborSolicitation(payload, &info) || isNeighborAdvertisement(payload, &info)) {
		l.tally.drop(DropUnsupported) // as ARP above
		return
	}
	if info.etherType == vxlan.EtherTypeIPv6 && isNeighborSolicitation(payload, &info) {
		l.answerNS(nw, src, buf, &info)
		return
	}
	if info.etherType == vxlan.EtherTypeIPv6 && isNeighborAdvertisement(payload, &info) {
		// An answer to the switch's solicitation (learned.go): learnt,
		// not delivered (the containers' devices do no neighbour
		// discovery).
		l.learnFromND(nw, src, payload, &info, vxlan.MAC(buf[EthernetOffset+6:]))
		l.tally.neighborIn++
		return
	}
	pkt := buf[:Headroom+info.length] // drops Ethernet padding
	if groupDst || nw.isFlood(info.dst, info.v6) {
		completeChecksum(pkt[Headroom:], &info)
		// Shared by several writes: capacity capped so that no TUN write
		// can coalesce into it and change it for the next port.
		shared := pkt[:len(pkt):len(pkt)]
		for _, lp := range nw.locals {
			l.local.add(lp, shared)
		}
		return
	}
	h := l.last.host(nw, info.dst)
	if h == nil && nw.policy != nil && nw.gateway != nil && nw.isOutside(info.dst, info.v6) {
		// The policy host of an l2tunnel network: another host's
		// container bound for outside the network, out through the
		// gateway if the policy lets it.
		if !nw.policy.allows(payload, &info) {
			l.tally.drop(DropPolicy)
			return
		}
		completeChecksum(pkt[Headroom:], &info)
		l.local.add(nw.gateway, pkt)
		return
	}
	if h == nil {
		l.tally.drop(DropNoEndpoint)
		return
	}
	if nw.policy != nil {
		// The policy host of an l2tunnel network: decide, then deliver
		// or send the frame on, as it came, to the destination's VTEP.
		if !nw.policy.allows(payload, &info) {
			l.tally.drop(DropPolicy)
			return
		}
		if h.port == nil {
			hash := flowHash(payload, &info)
			if !nw.sealed {
				l.udp.add(dgram[:vxlan.EncapLen+info.length], l.sw.vtepAddr(h.vtep), hash)
			} else if d := sealFrame(l.keys, &l.sealing, &l.tally, buf, Headroom+info.length, h.vtep); d != nil {
				l.udp.add(d, l.sw.vtepAddr(h.vtep), hash) // sealed again, for the next hop
			}
			return
		}
	}
	if h.port == nil {
		l.tally.drop(DropNoEndpoint)
		return
	}
	completeChecksum(pkt[Headroom:], &info)
	if nw.clampMSS != 0 && info.proto == protoTCP {
		clampMSS(pkt[Headroom:], &info, nw.clampMSS)
	}
	if h.port.rev.Load() != nil {
		fromVIP(h.port, pkt[Headroom:], &info, l.clock())
	}
	l.local.add(h.port, pkt)
}

// clock reads the time once per batch, when first needed.
func (l *outsideLoop) clock() int64 {
	if l.now == 0 {
		l.now = time.Now().UnixNano()
	}
	return l.now
}

// open opens the sealed datagram d (from the VXLAN header on) from vtep in
// place, and reports whether it did; a datagram that does not open is
// dropped and counted by reason.
func (l *outsideLoop) open(d []byte, vtep netip.Addr) bool {
	h, err := seal.ParseHeader(d)
	if err != nil {
		l.tally.drop(DropMalformed)
		return false
	}
	k, why := l.keys.RecvKey(vtep, h.ID)
	if k == nil {
		l.tally.drop(why)
		return false
	}
	if _, err := k.Open(&l.sealing, d, h); err != nil {
		if errors.Is(err, seal.ErrReplay) {
			l.tally.drop(DropSealReplay)
		} else {
			l.tally.drop(DropSealBadTag)
		}
		return false
	}
	return true
}

// openTrain opens the sealed datagrams of a train the kernel coalesced
// (seg bytes apart, the last maybe shorter) in place and packs them as
// the plain datagrams they carry, seg-seal.Overhead bytes apart: it
// returns that stride and the packed train's length. A datagram that
// does not open is dropped and counted; one that is not sealed, or not
// of an encrypted network, is handled on its own, as it is.
func (l *outsideLoop) openTrain(tbl *Table, train []byte, seg int, from netip.AddrPort) (int, int) {
	const shift = seal.IDLen + seal.CounterLen
	vtep := from.Addr().Unmap()
	end := 0
	for off := 0; off < len(train); off += seg {
		d := train[off:min(off+seg, len(train))]
		if len(d) < seal.HeaderLen+seal.TagLen+vxlan.EthernetLen || d[seal.MarkerIndex] != seal.Marker {
			l.alone(tbl, d, from)
			continue
		}
		vni, err := vxlan.ParseHeader(d)
		nw := l.last.network(tbl, vni)
		if err != nil || nw == nil || !nw.sealed || !l.allowed(nw, from) {
			l.alone(tbl, d, from)
			continue
		}
		if !l.open(d, vtep) {
			l.tally.udpRx++
			continue
		}
		end += copy(train[end:], d[:vxlan.HeaderLen])
		end += copy(train[end:], d[seal.HeaderLen:len(d)-seal.TagLen])
	}
	if end == 0 {
		return seg, 0 // nothing left (and seg may be too small to shrink)
	}
	return seg - seal.Overhead, end
}

// alone handles one datagram of a train on its own, in a buffer of its
// own.
func (l *outsideLoop) alone(tbl *Table, d []byte, from netip.AddrPort) {
	if l.segUsed == len(l.segBufs) {
		l.udp.flush(&l.tally)
		l.local.flush(&l.tally)
		l.segUsed = 0
	}
	buf := l.segBufs[l.segUsed]
	l.segUsed++
	copy(buf[UnderlayOffset:], d)
	l.tally.udpRx++
	opened := l.opened
	l.opened = false
	l.handle(tbl, buf, len(d), from)
	l.opened = opened
}
