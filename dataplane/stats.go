package dataplane

import "sync/atomic"

// DropReason says why the switch dropped a packet. Append-only: the values
// appear in metrics and status output.
type DropReason int

const (
	// DropMalformed: not a well-formed IP packet, VXLAN datagram or
	// Ethernet frame.
	DropMalformed DropReason = iota
	// DropUnknownVNI: a VXLAN datagram for a VNI the table does not list.
	DropUnknownVNI
	// DropUnknownVTEP: a datagram from an address that is not a VTEP of
	// that VNI.
	DropUnknownVTEP
	// DropUnsupported: an inner frame that is neither IPv4, IPv6 nor ARP,
	// or an ARP/ND message the switch does not answer.
	DropUnsupported
	// DropNoEndpoint: a unicast frame from the underlay for an address
	// that has no local endpoint.
	DropNoEndpoint
	// DropPortDetached: a packet read from a port that has no entry in the
	// table.
	DropPortDetached
	// DropTooBig: a packet larger than the MTU, or than the underlay path
	// to its destination carries (answered with ICMP "too big" where it
	// may not be fragmented; see toobig.go).
	DropTooBig
	// DropWrite: a write to the underlay or to a port failed.
	DropWrite
	// DropLoop: a packet from a port addressed to that same port.
	DropLoop
	// DropPolicy: a packet an l2tunnel network's policy denied.
	DropPolicy
	// DropNeighborMiss: a packet for an uplink whose next hop's MAC is not
	// known yet (an ARP request went out), or for an address of an overlay
	// no table lists that no answer named in time (learned.go, held.go).
	DropNeighborMiss
	// DropSealNoKey: a packet for an encrypted network's peer whose keys
	// are not known (yet).
	DropSealNoKey
	// DropSealUnknownKey: a sealed datagram naming a key id the sender's
	// keys do not have.
	DropSealUnknownKey
	// DropSealStaleKey: a sealed datagram naming a key a rotation retired.
	DropSealStaleKey
	// DropSealBadTag: a sealed datagram that failed authentication:
	// changed on the way, or not sealed by the peer.
	DropSealBadTag
	// DropSealReplay: a sealed datagram whose counter was taken before or
	// is older than the replay window.
	DropSealReplay
	// DropSealMismatch: a plain datagram for an encrypted network, or a
	// sealed one for a plain network.
	DropSealMismatch
	// DropNoTask: a packet to a service's VIP with no task of its family
	// (service.go).
	DropNoTask
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"malformed", "unknown_vni", "unknown_vtep", "unsupported", "no_endpoint",
	"port_detached", "too_big", "write_error", "loop", "policy", "neighbor_miss",
	"seal_no_key", "seal_unknown_key", "seal_stale_key", "seal_bad_tag", "seal_replay", "seal_mismatch",
	"no_task",
}

// DropHelp says, for a person, what each drop reason of Stats.Drops
// counts: the switch's own reasons, then the underlay socket's (vxnet
// stats lists them by name).
var DropHelp = []struct{ Reason, Help string }{
	{"malformed", "not a well-formed IP packet, VXLAN datagram or Ethernet frame"},
	{"unknown_vni", "a VXLAN datagram for a VNI no network of this host has"},
	{"unknown_vtep", "a VXLAN datagram from an address that is no host of that network"},
	{"unsupported", "an inner frame neither IPv4, IPv6 nor ARP, or an ARP/ND message the switch does not answer"},
	{"no_endpoint", "a packet for an address no container, gateway or route of its network has (from another host, or a container's to an address off its network), or an ARP request or neighbour solicitation for an address vxnet does not list"},
	{"port_detached", "a packet from a container device whose endpoint is going or gone (normal while a container stops)"},
	{"too_big", "a container sent more than the network's MTU or the path carries, and the packet may not be cut in fragments (IPv6, or IPv4 with DF): dropped, and answered with ICMP \"too big\" where one is due (not to broadcast or multicast; at most 100 a second)"},
	{"write_error", "a write to the underlay or to a container device failed (a container stopping mid-packet, say)"},
	{"loop", "a packet from a container addressed to that container's own device"},
	{"policy", "a packet an l2tunnel network's policy denied"},
	{"neighbor_miss", "a packet for an address whose MAC is not known yet (an ARP request or neighbour solicitation went out)"},
	{"seal_no_key", "encrypted network: not sent, no key for that host yet"},
	{"seal_unknown_key", "encrypted network: sealed with a key id this host does not know"},
	{"seal_stale_key", "encrypted network: sealed with a key a rotation retired"},
	{"seal_bad_tag", "encrypted network: failed authentication (changed on the way, or not sealed by the peer)"},
	{"seal_replay", "encrypted network: a datagram seen before, or older than the replay window"},
	{"seal_mismatch", "a plain datagram for an encrypted network, or a sealed one for a plain network"},
	{"no_task", "a packet to a service's VIP with no task of its address family"},
	{"underlay_truncated", "a datagram larger than the underlay socket's buffer"},
	{"underlay_send_error", "the kernel refused a send to the underlay"},
	{"underlay_too_big", "the kernel refused a datagram as too big for its path (the path MTU is then asked for)"},
}

// String returns the reason as used in metrics labels.
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return "unknown"
	}
	return dropNames[r]
}

// Stats is a copy of the switch's counters.
type Stats struct {
	PortRxPackets     uint64            // packets read from local ports
	PortTxPackets     uint64            // packets written to local ports
	UnderlayRxPackets uint64            // VXLAN datagrams received
	UnderlayTxPackets uint64            // VXLAN datagrams sent (each flood copy counts)
	UnderlayRxBytes   uint64            // UDP payload bytes received
	UnderlayTxBytes   uint64            // UDP payload bytes handed to the underlay
	Flooded           uint64            // packets replicated head-end
	NeighborReplies   uint64            // ARP and neighbour-discovery messages sent: replies, and requests (uplinks', and for kernel VTEPs' addresses)
	Coalesced         uint64            // received TCP segments and UDP datagrams merged into super-packets, and pure TCP ACKs a later one of their flow made redundant (counted in PortTxPackets too)
	ICMPTooBig        uint64            // ICMP "too big" messages sent to local ports (toobig.go)
	NeighborIn        uint64            // ARP replies and announcements and IPv6 advertisements from the underlay, taken in to learn from (learned.go)
	UplinkRxFrames    uint64            // frames read from uplinks (transparent, l2bridge)
	UplinkTxFrames    uint64            // packets sent out of uplinks
	ServiceFlows      uint64            // flows to a service's VIP that chose a task (service.go)
	FlowsEvicted      uint64            // live flows pushed out of a full flow table (flows.go)
	Drops             map[string]uint64 // by DropReason.String()
}

// counters are the shared atomics. Packet loops count into a private
// tally and add it here once per batch, so cores do not fight over one
// cache line per packet.
type counters struct {
	portRx, portTx, udpRx, udpTx, udpRxBytes, udpTxBytes, flooded, neighbor, coalesced, uplinkRx, uplinkTx, icmpTooBig, neighborIn, serviceFlows, flowsEvicted atomic.Uint64
	drops                                                                                                                                                      [numDropReasons]atomic.Uint64
}

// tally is a packet loop's private count for one batch.
type tally struct {
	portRx, portTx, udpRx, udpTx, udpRxBytes, udpTxBytes, flooded, neighbor, coalesced, uplinkRx, uplinkTx, icmpTooBig, neighborIn, serviceFlows, flowsEvicted uint64
	drops                                                                                                                                                      [numDropReasons]uint64
}

func (t *tally) drop(r DropReason) { t.drops[r]++ }

// flush adds t to c and zeroes t.
func (c *counters) flush(t *tally) {
	add := func(a *atomic.Uint64, v uint64) {
		if v != 0 {
			a.Add(v)
		}
	}
	add(&c.portRx, t.portRx)
	add(&c.portTx, t.portTx)
	add(&c.udpRx, t.udpRx)
	add(&c.udpTx, t.udpTx)
	add(&c.udpRxBytes, t.udpRxBytes)
	add(&c.udpTxBytes, t.udpTxBytes)
	add(&c.flooded, t.flooded)
	add(&c.neighbor, t.neighbor)
	add(&c.coalesced, t.coalesced)
	add(&c.uplinkRx, t.uplinkRx)
	add(&c.uplinkTx, t.uplinkTx)
	add(&c.icmpTooBig, t.icmpTooBig)
	add(&c.neighborIn, t.neighborIn)
	add(&c.serviceFlows, t.serviceFlows)
	add(&c.flowsEvicted, t.flowsEvicted)
	for i, v := range t.drops {
		add(&c.drops[i], v)
	}
	*t = tally{}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		PortRxPackets:     c.portRx.Load(),
		PortTxPackets:     c.portTx.Load(),
		UnderlayRxPackets: c.udpRx.Load(),
		UnderlayTxPackets: c.udpTx.Load(),
		UnderlayRxBytes:   c.udpRxBytes.Load(),
		UnderlayTxBytes:   c.udpTxBytes.Load(),
		Flooded:           c.flooded.Load(),
		NeighborReplies:   c.neighbor.Load(),
		Coalesced:         c.coalesced.Load(),
		UplinkRxFrames:    c.uplinkRx.Load(),
		UplinkTxFrames:    c.uplinkTx.Load(),
		ICMPTooBig:        c.icmpTooBig.Load(),
		NeighborIn:        c.neighborIn.Load(),
		ServiceFlows:      c.serviceFlows.Load(),
		FlowsEvicted:      c.flowsEvicted.Load(),
		Drops:             make(map[string]uint64, numDropReasons),
	}
	for i := range c.drops {
		s.Drops[DropReason(i).String()] = c.drops[i].Load()
	}
	return s
}
