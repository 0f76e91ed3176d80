// Package dataplane is vxnet's userspace VXLAN switch.
//
// It moves packets between local ports (layer-3 TUN devices in container
// namespaces) and the underlay (one UDP socket on port 4789 speaking RFC 7348
// VXLAN to other hosts):
//
//	container ──TUN──▶ inside.go  ──encap──▶ underlay ──▶ other VTEPs
//	container ◀─TUN─── outside.go ◀─decap─── underlay ◀── other VTEPs
//	container ──TUN──▶ inside.go  ──────────▶ TUN ──▶ container (same host)
//
// # Tables
//
// What the switch knows is one immutable *Table: per VNI, every endpoint
// address with its MAC and its place (a local *Port or a remote VTEP), the
// VTEPs that receive broadcasts, and the subnets' broadcast addresses. The
// control plane builds a new Table with NewTable and publishes it with
// Switch.SetTable; the packet loops only Load the pointer once per batch, so
// the hot path never takes a lock and never sees a table half-written.
// The table is also the allow-list: frames for a VNI it does not list, or
// from a VTEP that has no place in that VNI, are dropped and counted.
//
// # Frames on the wire
//
// TUN devices carry IP packets without a link layer, so the inside path
// synthesises the inner Ethernet header: source MAC = the local endpoint's
// stable MAC, destination MAC = the table's MAC for the destination address.
// Broadcast and multicast packets are replicated head-end to every VTEP of
// the VNI and to the other local ports. On the outside path, ARP requests
// and IPv6 neighbour solicitations for addresses in the table are answered
// from the table (kernel VXLAN peers ask before they send), so nothing has
// to flood to find a MAC. A packet to an address of the network the table
// does not list (a kernel peer's container nobody configured) is resolved
// as a kernel VTEP would: an ARP request or neighbour solicitation to every
// VTEP, the answer learnt for a while (learned.go).
//
// # Buffers
//
// Every packet buffer is laid out with Headroom bytes in front of the IP
// packet:
//
//	0        10                 18              32
//	+--------+------------------+---------------+----------------------+
//	| unused | VXLAN header (8) | Ethernet (14) | IP packet ...        |
//	+--------+------------------+---------------+----------------------+
//	          ▲ UDP payload starts here          ▲ TUN reads/writes here
//
// The TUN device reads the IP packet at Headroom, the inside path writes
// the two headers in front of it, and the UDP send takes the slice from
// byte 10. The outside path receives at byte 10 so the inner IP packet
// lands at Headroom, ready for a TUN write (which puts its own 10-byte
// virtio-net header in the bytes just before the packet).
//
// The underlay's and the uplinks' loops own their buffers for their whole
// life. The ports' loops, one per endpoint, borrow theirs from a pool sized
// to the host's cores, only while they read and process a batch (see
// pool.go), so an idle endpoint holds no packet buffer. Nothing is
// allocated per packet.
package dataplane
