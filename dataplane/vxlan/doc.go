// Package vxlan encodes and decodes the RFC 7348 VXLAN header and the inner
// Ethernet header that follows it, working in place on caller-supplied byte
// slices so that the data-plane hot path does not allocate.
//
// A VXLAN datagram is the payload of an outer UDP packet (destination port
// [DefaultPort]). This package handles only that UDP payload; the outer
// IP/UDP headers are the caller's concern.
//
// VXLAN header (RFC 7348 §5), [HeaderLen] = 8 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|R|R|R|I|R|R|R|            Reserved                           |  FlagsOffset = 0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                VXLAN Network Identifier (VNI) |   Reserved    |  VNIOffset = 4
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// I ([FlagVNI], 0x08 in byte 0) must be set; it marks the VNI as valid.
// All R bits are reserved: this package writes them as zero and, as RFC 7348
// §5 requires, ignores them on receipt.
//
// Inner Ethernet header, [EthernetLen] = 14 bytes, immediately after the
// VXLAN header (no 802.1Q tag; tagged frames are rejected with [ErrVLAN]):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC address                      |  EthernetDstOffset = 0
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |  EthernetSrcOffset = 6
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                    Source MAC address                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |  inner L3 packet ...             EthernetTypeOffset = 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Ethernet offsets are relative to the start of the Ethernet header, i.e. to
// HeaderLen within a datagram. The inner L3 packet starts at [EncapLen] = 22.
//
// Encoding functions ([PutHeader], [PutEthernet], [Encap]) never fail: the
// caller guarantees the buffer length and they panic, like any slice index,
// if it is too short. Decoding functions ([ParseHeader], [ParseEthernet],
// [Decap]) are bounds-checked and return only the sentinel errors
// [ErrTooShort], [ErrFlags] and [ErrVLAN]. None of these allocate.
package vxlan
