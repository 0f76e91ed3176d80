package dataplane

import (
	"encoding/binary"
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// IPv4 packets that may be fragmented (no DF) but do not fit their way.
//
// The underlay never fragments VXLAN (package udp sets DF), so an inner
// packet larger than what the path to its VTEP carries must be made to
// fit before it is encapsulated. One with DF, and every IPv6 packet, is
// answered with ICMP "too big" (toobig.go); an IPv4 packet without DF is
// fragmented here as a router would (RFC 791): a resolver answering with
// a large UDP datagram and no DF is not lost over a narrow underlay. The
// fragments are built in the loop's fragment buffers (made on first use,
// then reused), each a copy of the header with its own offset, length and
// checksum, and go to the same VTEP from the same source port as the
// packet would have. The first fragment keeps the header's options; the
// others carry only those marked to be copied. A packet whose options do
// not parse, or needing more fragments than the loop has buffers, is
// dropped (too_big).

const maxFragments = 64

// mayFragment reports whether pkt (IPv4) may be fragmented: no DF, and
// options, if any, well formed.
func mayFragment(pkt []byte) bool {
	if binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])&0x4000 != 0 {
		return false
	}
	hl := int(pkt[0]&0x0f) * 4
	if hl == ipv4HeaderLen {
		return true
	}
	var scratch [ipv4MaxOptions]byte
	_, ok := copiedOptions(pkt[ipv4HeaderLen:hl], scratch[:0])
	return ok
}

// ipv4MaxOptions is the most option bytes an IPv4 header holds.
const ipv4MaxOptions = 40

// copiedOptions appends to dst the options of opts (an IPv4 header's) that
// every fragment carries: those whose type has the copied flag (RFC 791
// 3.1). It reports whether opts are well formed.
func copiedOptions(opts, dst []byte) ([]byte, bool) {
	for i, n := 0, 0; i < len(opts); i += n {
		var kind byte
		var ok bool
		kind, n, ok = nextOption(opts, i)
		switch {
		case !ok:
			return dst, false
		case kind == tcpOptEnd: // the same in IPv4 (and NOP's copied flag is clear)
			return dst, true
		case kind&0x80 != 0:
			dst = append(dst, opts[i:i+n]...)
		}
	}
	return dst, true
}

// fragmentV4 queues the IPv4 packet at buf[Headroom:] in fragments of at
// most mtu bytes, encapsulated for network nw (to dst from src) and sent
// to vtep with hash. It reports whether it did (false: too many
// fragments, or options that do not parse).
func (l *insideLoop) fragmentV4(buf []byte, info *ipInfo, mtu int, nw *network, dst, src vxlan.MAC, vtep netip.Addr, hash uint32) bool {
	pkt := buf[Headroom : Headroom+info.length]
	hl := int(pkt[0]&0x0f) * 4
	payload := pkt[hl:]
	later, ok := copiedOptions(pkt[ipv4HeaderLen:hl], l.fragOpts[:0])
	if !ok {
		return false
	}
	hl2 := ipv4HeaderLen + (len(later)+3)&^3 // the later fragments' header
	first, step := (mtu-hl)&^7, (mtu-hl2)&^7
	if first <= 0 || step <= 0 {
		return false
	}
	count := 1 + (max(len(payload)-first, 0)+step-1)/step
	if count > maxFragments {
		return false
	}
	if l.frags == nil {
		l.frags = newBuffers(maxFragments, Headroom+l.sw.cfg.MTU+seal.TagLen)
	}
	if l.fragsUsed+count > len(l.frags) {
		// The queued fragments borrow the buffers: send them first.
		l.b.udp.flush(&l.tally)
		l.fragsUsed = 0
	}
	field := binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])
	base, more := int(field&0x1fff)*8, field&0x2000 != 0 // the packet may be a fragment itself
	for off := 0; off < len(payload); {
		h, n := hl, first
		if off > 0 {
			h, n = hl2, step
		}
		end := min(off+n, len(payload))
		fb := l.frags[l.fragsUsed]
		l.fragsUsed++
		f := fb[Headroom : Headroom+h+end-off]
		if off == 0 {
			copy(f, pkt[:hl])
		} else {
			copy(f, pkt[:ipv4HeaderLen])
			copy(f[ipv4HeaderLen:], later)
			clear(f[ipv4HeaderLen+len(later) : h]) // padded with end-of-list
			f[0] = 0x40 | byte(h/4)
		}
		copy(f[h:], payload[off:end])
		binary.BigEndian.PutUint16(f[ipv4TotalLenOffset:], uint16(len(f)))
		v := uint16((base + off) / 8)
		if end < len(payload) || more {
			v |= 0x2000
		}
		binary.BigEndian.PutUint16(f[ipv4FlagsFragOffset:], v)
		f[ipv4ChecksumOffset], f[ipv4ChecksumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(f[ipv4ChecksumOffset:], ^fold(sum(0, f[:h])))
		vxlan.Encap(fb[UnderlayOffset:], nw.vni, dst, src, vxlan.EtherTypeIPv4)
		l.send(nw, fb, Headroom+len(f), vtep, hash)
		off = end
	}
	return true
}
