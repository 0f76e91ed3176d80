package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A TUN device opened with IFF_VNET_HDR puts a virtio-net header (struct
// virtio_net_hdr, 10 bytes, host byte order) in front of every packet it
// hands over. With TSO and USO enabled the kernel sends one TCP or UDP
// "super-packet" of up to 64 KB there and leaves its segmentation to us,
// with the transport checksum left partial. splitVirtio does that work: it
// cuts the packet into MTU-sized packets the way the kernel's GSO would,
// each in its own buffer at the caller's offset, with their checksums
// complete, so the inside path forwards them like any other packet.
const virtioHdrLen = 10

// virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h).
const (
	virtioFlagNeedsCsum = 1
	virtioGSONone       = 0
	virtioGSOTCPv4      = 1
	virtioGSOTCPv6      = 4
	virtioGSOUDPL4      = 5
	virtioGSOECN        = 0x80
)

// TCP flags that only the last (FIN, PSH) or only the first (CWR) segment
// of a super-packet keeps, as the kernel's tcp_gso_segment does.
const (
	tcpFlagsOffset = 13
	tcpFlagFIN     = 0x01
	tcpFlagRST     = 0x04
	tcpFlagPSH     = 0x08
	tcpFlagCWR     = 0x80
)

// errTooManySegments reports a super-packet that would need more buffers
// than the caller has: only a container that set a tiny MSS sends one.
var errTooManySegments = errors.New("dataplane: TUN read: super-packet has more segments than the batch has buffers")

type virtioHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVirtioHdr(b []byte) virtioHdr {
	return virtioHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// splitVirtio handles one read of n bytes that landed at
// bufs[0][offset-virtioHdrLen:]: a virtio-net header, then the packet at
// offset. It leaves the packet, or its segments, at offset in bufs[0],
// bufs[1], … with their lengths in sizes, and returns how many. Segment 0
// stays where it was read; the others are copied out of it, so each buffer
// must hold offset plus one segment. Errors name the header field at fault.
//
// With partial non-nil, a TCP packet's checksum is left as the kernel
// handed it over, the pseudo-header sum alone (partial[i] set): the
// inside path finishes it only for a destination that needs it
// (lazyChecksum). Other packets get partial[i] false.
func splitVirtio(bufs [][]byte, sizes []int, offset, n int, partial []bool) (int, error) {
	if n < virtioHdrLen {
		return 0, fmt.Errorf("dataplane: TUN read of %d bytes is shorter than the virtio-net header", n)
	}
	h := decodeVirtioHdr(bufs[0][offset-virtioHdrLen:])
	pkt := bufs[0][offset : offset-virtioHdrLen+n]
	gso := h.gsoType &^ virtioGSOECN
	if gso == virtioGSONone {
		if partial != nil {
			partial[0] = false
		}
		if h.flags&virtioFlagNeedsCsum != 0 {
			at := int(h.csumStart) + int(h.csumOffset)
			if int(h.csumStart) > len(pkt) || at+2 > len(pkt) {
				return 0, fmt.Errorf("dataplane: TUN read: virtio csum_start %d + csum_offset %d past the packet's %d bytes", h.csumStart, h.csumOffset, len(pkt))
			}
			if partial != nil && h.csumOffset == tcpChecksumOffset && lazyTCP(pkt, int(h.csumStart)) {
				partial[0] = true
				sizes[0] = len(pkt)
				return 1, nil
			}
			// The field holds the pseudo-header sum; sum the rest onto it.
			initial := uint64(binary.BigEndian.Uint16(pkt[at:]))
			binary.BigEndian.PutUint16(pkt[at:], 0)
			c := ^fold(sum(initial, pkt[h.csumStart:]))
			if c == 0 && h.csumOffset == udpChecksumOffset {
				c = 0xffff // UDP's 0 means "no checksum" (and IPv6 receivers drop it)
			}
			binary.BigEndian.PutUint16(pkt[at:], c)
		}
		sizes[0] = len(pkt)
		return 1, nil
	}
	if len(pkt) < 1 {
		return 0, errors.New("dataplane: TUN read: empty packet after the virtio-net header")
	}
	v6 := pkt[0]>>4 == 6
	var proto uint8
	switch {
	case gso == virtioGSOTCPv4 && pkt[0]>>4 == 4, gso == virtioGSOTCPv6 && v6:
		proto = protoTCP
	case gso == virtioGSOUDPL4 && (v6 || pkt[0]>>4 == 4):
		proto = protoUDP
	default:
		return 0, fmt.Errorf("dataplane: TUN read: virtio gso_type %d does not fit IP version %d", h.gsoType, pkt[0]>>4)
	}
	ipLen := int(h.csumStart) // the transport header starts there
	minIP := ipv4HeaderLen
	if v6 {
		minIP = ipv6HeaderLen
	}
	if ipLen < minIP || ipLen+udpHeaderLen > len(pkt) {
		return 0, fmt.Errorf("dataplane: TUN read: virtio csum_start %d invalid for a %d-byte packet", h.csumStart, len(pkt))
	}
	// The kernel's hdr_len may cover a whole packet on forwarding paths:
	// take the transport header's own length instead.
	hdrLen := ipLen + udpHeaderLen
	csumAt := ipLen + udpChecksumOffset
	if proto == protoTCP {
		if ipLen+tcpHeaderLen > len(pkt) {
			return 0, fmt.Errorf("dataplane: TUN read: TCP header past the packet's %d bytes", len(pkt))
		}
		tl := tcpHeaderLenAt(pkt, ipLen)
		if tl < tcpHeaderLen || ipLen+tl > len(pkt) {
			return 0, fmt.Errorf("dataplane: TUN read: TCP data offset %d invalid for a %d-byte packet", tl, len(pkt))
		}
		hdrLen = ipLen + tl
		csumAt = ipLen + tcpChecksumOffset
	}
	seg := int(h.gsoSize)
	if seg == 0 {
		return 0, errors.New("dataplane: TUN read: virtio gso_size 0 on a GSO packet")
	}
	data := len(pkt) - hdrLen
	count := max(1, (data+seg-1)/seg)
	if count > len(bufs) || count > len(sizes) || partial != nil && count > len(partial) {
		return 0, errTooManySegments
	}
	lazy := partial != nil && proto == protoTCP
	for i := 1; i < count; i++ {
		if len(bufs[i]) < offset+hdrLen+seg {
			return 0, fmt.Errorf("dataplane: TUN read: gso_size %d does not fit a %d-byte buffer", seg, len(bufs[i]))
		}
	}
	// The pseudo-header's addresses, summed once for every segment.
	addrs := addrSum(pkt, v6)
	// Segments 1… first: they copy segment 0's headers before those change.
	for i := count - 1; i >= 0; i-- {
		start := hdrLen + i*seg
		end := min(start+seg, len(pkt))
		out := pkt[:end]
		if i > 0 {
			out = bufs[i][offset : offset+hdrLen+end-start]
			copy(out, pkt[:hdrLen])
			copy(out[hdrLen:], pkt[start:end])
		}
		fixSegment(out, segmentShape{ipLen: ipLen, hdrLen: hdrLen, csumAt: csumAt, v6: v6, proto: proto, lazy: lazy},
			i, i == count-1, uint32(i*seg), addrs)
		sizes[i] = len(out)
		if partial != nil {
			partial[i] = lazy
		}
	}
	return count, nil
}

// lazyTCP reports whether pkt, whose transport header starts at l4, is a
// TCP packet whose checksum can be left partial: IPv4 or IPv6 with TCP
// right after the fixed header, as the inside path parses it.
func lazyTCP(pkt []byte, l4 int) bool {
	switch {
	case len(pkt) > ipv4HeaderLen && pkt[0]>>4 == 4:
		return pkt[ipv4ProtocolOffset] == protoTCP && int(pkt[0]&0x0f)*4 == l4
	case len(pkt) > ipv6HeaderLen && pkt[0]>>4 == 6:
		return pkt[ipv6NextHeaderOffset] == protoTCP && l4 == ipv6HeaderLen
	}
	return false
}

type segmentShape struct {
	ipLen, hdrLen, csumAt int
	v6                    bool
	proto                 uint8
	lazy                  bool // leave the transport checksum at the pseudo-header sum
}

// fixSegment rewrites the headers of segment i (out, headers and payload)
// of a super-packet: lengths, IPv4 ID and header checksum, TCP sequence
// number and flags, UDP length, and the full transport checksum (the
// pseudo-header sum alone when s.lazy).
func fixSegment(out []byte, s segmentShape, i int, last bool, seqDelta uint32, addrs uint64) {
	l4Len := len(out) - s.ipLen
	if s.v6 {
		binary.BigEndian.PutUint16(out[ipv6PayloadLenOffset:], uint16(len(out)-ipv6HeaderLen))
	} else {
		binary.BigEndian.PutUint16(out[ipv4TotalLenOffset:], uint16(len(out)))
		if i > 0 {
			id := binary.BigEndian.Uint16(out[4:])
			binary.BigEndian.PutUint16(out[4:], id+uint16(i))
		}
		binary.BigEndian.PutUint16(out[ipv4ChecksumOffset:], 0)
		binary.BigEndian.PutUint16(out[ipv4ChecksumOffset:], ^fold(sum(0, out[:s.ipLen])))
	}
	if s.proto == protoTCP {
		t := out[s.ipLen:]
		binary.BigEndian.PutUint32(t[4:], binary.BigEndian.Uint32(t[4:])+seqDelta)
		if !last {
			t[tcpFlagsOffset] &^= tcpFlagFIN | tcpFlagPSH
		}
		if i > 0 {
			t[tcpFlagsOffset] &^= tcpFlagCWR
		}
	} else {
		binary.BigEndian.PutUint16(out[s.ipLen+4:], uint16(l4Len))
	}
	if s.lazy {
		binary.BigEndian.PutUint16(out[s.csumAt:], fold(addrs+uint64(s.proto)+uint64(l4Len)))
		return
	}
	binary.BigEndian.PutUint16(out[s.csumAt:], 0)
	c := ^fold(sum(addrs+uint64(s.proto)+uint64(l4Len), out[s.ipLen:]))
	if c == 0 && s.proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(out[s.csumAt:], c)
}
