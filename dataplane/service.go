package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/vxnet/vxnet/dataplane/lb"
)

// ServiceSpec is a service with virtual IPs on a network: a packet a
// local port sends to a VIP goes to one of the service's tasks, chosen by
// a consistent hash of its flow (package lb) and kept for the flow's life
// in the port's flow table (flows.go); the destination is rewritten to the
// task's address on the way, and the task's replies come back from the
// VIP.
type ServiceSpec struct {
	// Name, for errors and metrics.
	Name string
	// VIPs are the service's virtual addresses, at most one per family.
	// No endpoint of the network may hold one.
	VIPs []netip.Addr
	// Tasks are the endpoints behind the VIPs: each task's addresses are
	// endpoint addresses of the network. A VIP of a family no task has
	// drops what is sent to it (DropNoTask).
	Tasks []TaskSpec
	// Counters, if set, count the service's flows; the caller keeps them
	// from one table to the next.
	Counters *ServiceCounters
}

// TaskSpec is one task of a service.
type TaskSpec struct {
	Addrs []netip.Addr
	// Counters, if set, count the flows sent to this task.
	Counters *TaskCounters
}

// ServiceCounters count a service's flows, in any switch that has it.
type ServiceCounters struct {
	Flows  atomic.Uint64 // flows that chose a task
	Moved  atomic.Uint64 // flows whose task went away: the next packet chose again
	NoTask atomic.Uint64 // packets to a VIP with no task of its family
}

// TaskCounters count the flows sent to one task.
type TaskCounters struct {
	Flows atomic.Uint64
}

// service is a ServiceSpec compiled into the table.
type service struct {
	name     string
	counters *ServiceCounters
	fam      [2]serviceFamily // [0] IPv4, [1] IPv6
}

// serviceFamily is one family's tasks: the Maglev table names an index
// into tasks.
type serviceFamily struct {
	tasks    []addrKey
	counters []*TaskCounters
	maglev   *lb.Maglev       // nil: no task of this family
	has      addrTable[int32] // task address → index+1
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// addServices compiles s.Services into n, before freeze: VIPs must not be
// endpoint addresses, tasks' addresses must be. A service that fails its
// checks is left out; a task that does is left out of its service.
func (n *network) addServices(specs []ServiceSpec) (errs []error) {
	if len(specs) > 0 && (n.uplink != nil || n.policy != nil || n.policyVTEP.IsValid()) {
		// Their replies may leave through an uplink or a policy host, on
		// no path that rewrites them back.
		return []error{fmt.Errorf("dataplane: network %d: Services: only overlay and nat networks (no uplink, no l2tunnel) have services; %d left out", n.vni, len(specs))}
	}
	for i := range specs {
		s := &specs[i]
		svc := &service{name: s.Name, counters: s.Counters}
		var vips []netip.Addr
		bad := false
		for _, v := range s.VIPs {
			v = v.Unmap()
			switch {
			case !v.IsValid() || v.IsUnspecified() || v.IsMulticast():
				errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: VIP %v is not a unicast address; service left out", n.vni, s.Name, v))
				bad = true
			case n.byAddr[v] != nil:
				errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: VIP %v is an endpoint's address; service left out", n.vni, s.Name, v))
				bad = true
			case slices.ContainsFunc(vips, func(w netip.Addr) bool { return w.Is4() == v.Is4() }) || n.vipSet[v]:
				errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: VIP %v: a second VIP of its family, or another service's; service left out", n.vni, s.Name, v))
				bad = true
			}
			vips = append(vips, v)
		}
		if bad || len(vips) == 0 {
			if !bad {
				errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: no VIP; service left out", n.vni, s.Name))
			}
			continue
		}
		var names [2][]string
		for j := range s.Tasks {
			t := &s.Tasks[j]
			for _, a := range t.Addrs {
				a = a.Unmap()
				if h := n.byAddr[a]; h == nil || h.port == n.gateway && n.gateway != nil {
					errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: task address %v is no endpoint's; task left out", n.vni, s.Name, a))
					continue
				}
				f := &svc.fam[famIndex(a.Is6())]
				if slices.Contains(f.tasks, keyOf(a)) {
					continue
				}
				f.tasks = append(f.tasks, keyOf(a))
				f.counters = append(f.counters, t.Counters)
				names[famIndex(a.Is6())] = append(names[famIndex(a.Is6())], a.String())
			}
		}
		for fi := range svc.fam {
			f := &svc.fam[fi]
			f.has = newAddrTable[int32](len(f.tasks))
			for j, k := range f.tasks {
				f.has.put(k, int32(j+1))
			}
			if len(f.tasks) > 0 {
				m, err := lb.NewMaglev(names[fi])
				if err != nil {
					errs = append(errs, fmt.Errorf("dataplane: network %d: service %q: %w; service left out", n.vni, s.Name, err))
					bad = true
					break
				}
				f.maglev = m
			}
		}
		if bad {
			continue
		}
		if n.vipSet == nil {
			n.vipSet = map[netip.Addr]bool{}
		}
		for _, v := range vips {
			n.vipSet[v] = true
			n.vipList = append(n.vipList, vipEntry{keyOf(v), svc})
		}
	}
	return errs
}

type vipEntry struct {
	key addrKey
	svc *service
}

// freezeServices builds the VIP lookup table.
func (n *network) freezeServices() {
	if len(n.vipList) == 0 {
		return
	}
	n.vips = newAddrTable[*service](len(n.vipList))
	for _, e := range n.vipList {
		n.vips.put(e.key, e.svc)
	}
	n.hasVIPs = true
	n.vipList, n.vipSet = nil, nil
}

// pick chooses the task of a new flow of family fi by its hash: the
// task's address and index, ok false when the family has no task. A
// client that is a task of the service itself is never its own task
// (its reply would come from its own address, not the VIP): the next
// slot's task is, if the service has another.
func (s *service) pick(fi int, hash uint32, client addrKey) (addrKey, int, bool) {
	f := &s.fam[fi]
	if f.maglev == nil {
		return addrKey{}, 0, false
	}
	i := f.maglev.Lookup(hash)
	if f.tasks[i] == client {
		if len(f.tasks) == 1 {
			return addrKey{}, 0, false
		}
		for h := hash + 1; f.tasks[i] == client; h++ {
			i = f.maglev.Lookup(h)
		}
	}
	return f.tasks[i], i, true
}

// ICMP echo types.
const (
	icmpEchoReply    = 0
	icmpEchoRequest  = 8
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// flowPorts reads the ports of a flow, as one word (source port in the
// high half): TCP and UDP ports, the identifier of an ICMP echo request
// or reply in both halves. ok is false for anything else (a fragment,
// an ICMP error, another protocol).
func flowPorts(pkt []byte, info *ipInfo) (ports uint32, ok bool) {
	if info.l4 == 0 {
		return 0, false
	}
	switch info.proto {
	case protoTCP, protoUDP:
		if info.length-info.l4 < 4 || !firstFragment(pkt, info) {
			return 0, false
		}
		return binary.BigEndian.Uint32(pkt[info.l4:]), true
	case protoICMP, protoICMPv6:
		if info.length-info.l4 < 8 || (info.proto == protoICMP) == info.v6 || !firstFragment(pkt, info) {
			return 0, false
		}
		switch pkt[info.l4] {
		case icmpEchoRequest, icmpEchoReply, icmp6EchoRequest, icmp6EchoReply:
			id := uint32(binary.BigEndian.Uint16(pkt[info.l4+4:]))
			return id<<16 | id, true
		}
	}
	return 0, false
}

// firstFragment reports whether pkt is whole (IPv4 without MF and
// offset; IPv6 packets the parser gives a transport offset are whole).
func firstFragment(pkt []byte, info *ipInfo) bool {
	if info.v6 {
		return true
	}
	return binary.BigEndian.Uint16(pkt[ipv4FlagsFragOffset:])&0x3fff == 0
}

// rewriteAddr writes to over the source (dst false) or destination
// address of pkt and mends the checksums: the IPv4 header's, and the
// transport checksum that covers the address (TCP, UDP, ICMPv6), which
// is complete, or partial (the pseudo-header sum alone, lazy checksums).
func rewriteAddr(pkt []byte, info *ipInfo, dst bool, to addrKey, partial bool) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], to.hi)
	binary.BigEndian.PutUint64(b[8:], to.lo)
	off, n := ipv4SrcOffset, 4
	switch {
	case info.v6 && dst:
		off, n = ipv6DstOffset, 16
	case info.v6:
		off, n = ipv6SrcOffset, 16
	case dst:
		off = ipv4DstOffset
	}
	from := pkt[off : off+n]
	newb := b[16-n:]
	// One's-complement difference: the new words less the old ones.
	diff := sum(0, newb) + uint64(^fold(sum(0, from)))
	copy(from, newb)
	if !info.v6 {
		mendChecksum(pkt[ipv4ChecksumOffset:], diff, false)
	}
	field := -1
	switch info.proto {
	case protoTCP:
		if info.length-info.l4 >= tcpHeaderLen {
			field = info.l4 + tcpChecksumOffset
		}
	case protoUDP:
		if info.length-info.l4 >= udpHeaderLen && (info.v6 || binary.BigEndian.Uint16(pkt[info.l4+udpChecksumOffset:]) != 0) {
			field = info.l4 + udpChecksumOffset
		}
	case protoICMPv6:
		if info.v6 && info.length-info.l4 >= 4 {
			field = info.l4 + 2
		}
	}
	if info.l4 != 0 && field >= 0 {
		mendChecksum(pkt[field:], diff, partial)
		if info.proto == protoUDP && !partial && pkt[field] == 0 && pkt[field+1] == 0 {
			pkt[field], pkt[field+1] = 0xff, 0xff // 0 is "no checksum"
		}
	}
}

// mendChecksum adds diff to the checksum at c: a complemented checksum
// (RFC 1624's HC' = ~(~HC + ~m + m')), or a partial one, a plain sum.
func mendChecksum(c []byte, diff uint64, partial bool) {
	v := binary.BigEndian.Uint16(c)
	if partial {
		binary.BigEndian.PutUint16(c, fold(uint64(v)+diff))
		return
	}
	binary.BigEndian.PutUint16(c, ^fold(uint64(^v)+diff))
}
