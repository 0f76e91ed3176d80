package dataplane

import (
	"errors"
	"os"
	"time"

	"github.com/vxnet/vxnet/dataplane/vxlan"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// insideLoop is the scratch of one port's inside path (TUN → underlay),
// allocated once when the port is added.
type insideLoop struct {
	sw    *Switch
	port  *Port
	bufs  [][]byte // owned by this loop for its whole life
	sizes []int
	udp   underlayTx
	local portTx
	tally tally
	last  lookupCache // reset every batch

	arp           arpThrottle // uplink networks' ARP requests
	arpBuf        [vxlan.EthernetLen + arpLen]byte
	uplinkWriters map[*Uplink]FrameWriter // see uplinkOut
}

// refillExtra is how many packets past one Read's batch the inside loop
// gathers while more are queued: small packets come one per read(2), and
// gathered they leave in one send (UDP GSO on the underlay).
const refillExtra = 64

func (sw *Switch) newInsideLoop(p *Port) *insideLoop {
	batch := p.dev.BatchSize() + refillExtra
	return &insideLoop{
		sw:   sw,
		port: p,
		// Every buffer must hold a whole segment of any size the kernel
		// may choose (the TUN device splits TSO packets into them and
		// panics on a segment that does not fit), and room to coalesce
		// local deliveries. Pages never written are never made resident.
		bufs:  newBuffers(batch, Headroom+MaxSegmentSize),
		sizes: make([]int, batch),
		udp:   newUnderlayTx(sw.underlay.NewWriter(), batch),
	}
}

// routineReadFromPort reads batches from one port until its device closes.
func (sw *Switch) routineReadFromPort(p *Port) {
	sw.log.Debug("port routine started", "port", p.name)
	defer sw.log.Debug("port routine stopped", "port", p.name)
	l := sw.newInsideLoop(p)
	var errs readErrors
	for {
		n, err := p.read(l.bufs, l.sizes, &l.tally)
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
		// Whatever a container sends must not stop its port: read counted
		// the drop; go on.
		sw.stats.flush(&l.tally)
		errs.note(sw, "port", p.name, err)
	}
}

// dropRead counts a read or split that failed as the drop it is.
func dropRead(t *tally, err error) {
	if errors.Is(err, wgtun.ErrTooManySegments) || errors.Is(err, errTooManySegments) {
		t.drop(DropTooBig)
	} else {
		t.drop(DropMalformed)
	}
}

// read waits for the port's packets and reads what is queued into bufs and
// sizes, at Headroom. On Linux it reads the TUN device's descriptor itself
// (tun.Raw): a batch of small packets costs one read(2) each and no more,
// and TSO super-packets are split in the loop's own buffers, which is why
// reading stops while fewer than a whole batch (BatchSize) of buffers is
// left. A packet whose virtio-net header is malformed is skipped. Every
// failure but a closed device is counted in t as a drop and returned (the
// last one). Other devices (Wintun, the fakes of the tests) are read through
// Device.Read, one batch per wait.
func (p *Port) read(bufs [][]byte, sizes []int, t *tally) (int, error) {
	if p.raw == nil {
		n, err := p.dev.Read(bufs, sizes, Headroom)
		if err != nil && !errors.Is(err, os.ErrClosed) {
			dropRead(t, err)
		}
		return n, err
	}
	room := p.dev.BatchSize()
	off := Headroom
	if p.vnet {
		off -= virtioHdrLen
	}
	n := 0
	var bad error
	for wait := true; len(bufs)-n >= room; wait = false {
		// A super-packet read into bufs[n+k] may need room buffers from
		// there on, so a batch reads into no more than the first
		// len-room+1 of those left.
		k, drained, err := p.raw.ReadBatch(bufs[n:len(bufs)-room+1], off, sizes[n:], wait)
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
				m, serr := splitVirtio(bufs[n:], sizes[n:], Headroom, sizes[n])
				if serr != nil {
					dropRead(t, serr)
					bad = serr
					continue
				}
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

// process forwards the n packets read into l.bufs.
func (l *insideLoop) process(n int) {
	sw := l.sw
	tbl := sw.table.Load()
	pi := tbl.port(l.port)
	l.tally.portRx += uint64(n)
	if pi == nil {
		l.tally.drops[DropPortDetached] += uint64(n)
		sw.stats.flush(&l.tally)
		return
	}
	nw := pi.net
	l.last = lookupCache{}
	for i := 0; i < n; i++ {
		// borrowed: pkt and frame point into l.bufs[i], which stays ours;
		// the underlay and port batches below hold them until flushed.
		buf := l.bufs[i]
		pkt := buf[Headroom : Headroom+l.sizes[i]]
		info, ok := parseIP(pkt)
		if !ok {
			l.tally.drop(DropMalformed)
			continue
		}
		if info.length > sw.cfg.MTU {
			// Only a container that raised its own MTU sends these; the
			// underlay has no room for them.
			l.tally.drop(DropTooBig)
			continue
		}
		pkt = pkt[:info.length]
		frame := buf[UnderlayOffset : Headroom+info.length]
		hash := flowHash(pkt, &info)

		h := l.last.host(nw, info.dst)
		if nw.policy != nil && h != nil && !nw.policy.allows(pkt, &info) {
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
			vxlan.Encap(frame, nw.vni, h.mac, pi.mac, info.etherType)
			l.udp.add(frame, sw.vtepAddr(nw.policyVTEP), hash)
		case h != nil && h.port != nil:
			if h.port == l.port {
				l.tally.drop(DropLoop)
				continue
			}
			l.local.add(h.port, buf[:Headroom+info.length])
		case h != nil:
			vxlan.Encap(frame, nw.vni, h.mac, pi.mac, info.etherType)
			l.udp.add(frame, sw.vtepAddr(h.vtep), hash)
		case nw.gateway != nil && !nw.isFlood(info.dst, info.v6):
			// To an address no endpoint has: out through the gateway, unless
			// it came from there (the host sent to a missing endpoint).
			if nw.gateway == l.port {
				l.tally.drop(DropNoEndpoint)
				continue
			}
			l.local.add(nw.gateway, buf[:Headroom+info.length])
		default:
			// Broadcast, multicast and unknown unicast: replicate to
			// every VTEP and every other local port of the network.
			dstMAC := vxlan.Broadcast
			if nw.isFlood(info.dst, info.v6) {
				dstMAC = floodMAC(info.dst, info.v6)
			}
			vxlan.Encap(frame, nw.vni, dstMAC, pi.mac, info.etherType)
			for _, v := range nw.vteps {
				l.udp.add(frame, sw.vtepAddr(v), hash)
			}
			// Shared by several writes: capacity capped so that no TUN
			// write can coalesce into it and change it for the next.
			shared := buf[: Headroom+info.length : Headroom+info.length]
			for _, lp := range nw.locals {
				if lp != l.port {
					l.local.add(lp, shared)
				}
			}
			l.tally.flooded++
		}
	}
	// The underlay goes first: a TUN write puts its virtio-net header over
	// the bytes where a flooded packet's VXLAN header sits.
	l.udp.flush(&l.tally)
	l.local.flush(&l.tally)
	sw.stats.flush(&l.tally)
}
