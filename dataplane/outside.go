package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// outsideLoop is the scratch of the outside path (underlay → TUN),
// allocated once in Run.
type outsideLoop struct {
	sw    *Switch
	bufs  [][]byte // owned for the loop's life; each has MaxSegmentSize room
	views [][]byte // bufs[i][UnderlayOffset:], where datagrams land
	sizes []int
	from  []netip.AddrPort
	udp   underlayTx // neighbour replies
	local portTx
	tally tally

	// The last sender found allowed in the last network, so a batch
	// from one VTEP checks the allow-list once. Reset every batch, as the
	// table may change between batches.
	allowedNet *network
	allowedSrc netip.AddrPort

	// The last lookups of this batch: a burst is mostly one flow.
	last lookupCache
}

func (sw *Switch) newOutsideLoop() *outsideLoop {
	batch := sw.underlay.BatchSize()
	l := &outsideLoop{
		sw:    sw,
		bufs:  newBuffers(batch, Headroom+MaxSegmentSize),
		views: make([][]byte, batch),
		sizes: make([]int, batch),
		from:  make([]netip.AddrPort, batch),
		udp:   newUnderlayTx(sw.underlay.NewWriter(), batch),
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

// routineReadFromUnderlay reads VXLAN datagrams until the underlay closes.
func (sw *Switch) routineReadFromUnderlay() error {
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
	l := sw.newOutsideLoop()
	for {
		n, err := sw.underlay.ReadBatch(l.views, l.sizes, l.from)
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
	l.tally.udpRx += uint64(n)
	for i := 0; i < n; i++ {
		l.tally.udpRxBytes += uint64(l.sizes[i])
		l.handle(tbl, i)
	}
	l.udp.flush(&l.tally)
	l.local.flush(&l.tally)
	sw.stats.flush(&l.tally)
}

// handle decides the fate of datagram i.
func (l *outsideLoop) handle(tbl *Table, i int) {
	// borrowed: dgram and everything sliced from it point into l.bufs[i],
	// owned by this loop; the batches below hold them until flushed.
	buf := l.bufs[i]
	dgram := buf[UnderlayOffset : UnderlayOffset+l.sizes[i]]
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
	eth := dgram[vxlan.HeaderLen:vxlan.EncapLen]
	etherType := binary.BigEndian.Uint16(eth[vxlan.EthernetTypeOffset:])
	groupDst := eth[0]&1 != 0
	nw := l.last.network(tbl, vni)
	if nw == nil {
		l.tally.drop(DropUnknownVNI)
		return
	}
	src := l.from[i].Addr().Unmap()
	if nw != l.allowedNet || l.from[i] != l.allowedSrc {
		if !nw.vtepSet.get(keyOf(src)) {
			l.tally.drop(DropUnknownVTEP)
			return
		}
		l.allowedNet, l.allowedSrc = nw, l.from[i]
	}
	payload := dgram[vxlan.EncapLen:]
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
	if info.etherType == vxlan.EtherTypeIPv6 && isNeighborSolicitation(payload, &info) {
		l.answerNS(nw, src, buf, &info)
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
	if h == nil || h.port == nil {
		l.tally.drop(DropNoEndpoint)
		return
	}
	completeChecksum(pkt[Headroom:], &info)
	l.local.add(h.port, pkt)
}
