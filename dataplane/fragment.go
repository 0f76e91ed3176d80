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
// packet would have. A packet with IP options, or one needing more
// fragments than the loop has buffers, is dropped (too_big).

const maxFragments = 64

// mayFragment reports whether pkt (IPv4) may be fragmented: no DF, and a
// plain 20-byte header (no options to sort into copied and not copied).
func mayFragment(pkt []byte) bool {
	return binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])&0x4000 == 0 && pkt[0]&0x0f == 5
}

// fragmentV4 queues the IPv4 packet at buf[Headroom:] in fragments of at
// most mtu bytes, encapsulated for network nw (to dst from src) and sent
// to vtep with hash. It reports whether it did (false: too many
// fragments).
func (l *insideLoop) fragmentV4(buf []byte, info *ipInfo, mtu int, nw *network, dst, src vxlan.MAC, vtep netip.Addr, hash uint32) bool {
	pkt := buf[Headroom : Headroom+info.length]
	payload := pkt[ipv4HeaderLen:]
	step := (mtu - ipv4HeaderLen) &^ 7
	if step <= 0 {
		return false
	}
	count := (len(payload) + step - 1) / step
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
	for off := 0; off < len(payload); off += step {
		end := min(off+step, len(payload))
		fb := l.frags[l.fragsUsed]
		l.fragsUsed++
		f := fb[Headroom : Headroom+ipv4HeaderLen+end-off]
		copy(f, pkt[:ipv4HeaderLen])
		copy(f[ipv4HeaderLen:], payload[off:end])
		binary.BigEndian.PutUint16(f[ipv4TotalLenOffset:], uint16(len(f)))
		v := uint16((base + off) / 8)
		if end < len(payload) || more {
			v |= 0x2000
		}
		binary.BigEndian.PutUint16(f[ipv4FlagsFragOffset:], v)
		f[ipv4ChecksumOffset], f[ipv4ChecksumOffset+1] = 0, 0
		binary.BigEndian.PutUint16(f[ipv4ChecksumOffset:], ^fold(sum(0, f[:ipv4HeaderLen])))
		vxlan.Encap(fb[UnderlayOffset:], nw.vni, dst, src, vxlan.EtherTypeIPv4)
		l.send(nw, fb, Headroom+len(f), vtep, hash)
	}
	return true
}
