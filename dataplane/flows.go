package dataplane

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"time"
)

// Flow tables: a port that sends to a service's VIP keeps, per flow, the
// task its first packet chose (so a task joining or leaving moves no
// established flow) and publishes the way back (so the task's replies are
// rewritten to come from the VIP wherever they are delivered).
//
//   - The forward table is the port's inside loop's own: it alone reads
//     and writes it, with no atomics.
//   - The reverse table is written by that loop alone and read by every
//     loop that delivers to the port (other ports' inside loops, the
//     outside loops). Each slot is a seqlock: the writer makes its
//     sequence odd, stores the words, makes it even again; a reader that
//     sees an odd sequence, or a different one after reading, takes it
//     as a miss. The table is published on the Port (an atomic pointer):
//     a reader loads it once per packet.
//
// Both tables are open-addressed with a short probe window, start small
// and double when half full (allocating, once per doubling, on the
// port's first flows) up to flowMaxSlots; past that, the entry of the
// window that expires first makes room (FlowsEvicted). Entries expire when the client sends
// nothing for their idle time.
const (
	flowMinSlots = 256
	flowMaxSlots = 1 << 14
	flowProbe    = 16

	flowIdleTCP    = int64(30 * time.Minute)
	flowIdleTCPEnd = int64(10 * time.Second) // after a FIN or RST
	flowIdleUDP    = int64(2 * time.Minute)
	flowIdleICMP   = int64(10 * time.Second)
	// flowRevStamp: how often at most a flow in use pushes its reverse
	// entry's expiry on (one atomic store).
	flowRevStamp = int64(time.Second)
)

// flowKey is a flow as the client sees it: its own address (a), the
// address it talks to (b: the VIP forward, the task backward), the ports
// (the client's in the high half) and the protocol.
type flowKey struct {
	a, b  addrKey
	ports uint32
	proto uint8
}

func (k *flowKey) hash() uint32 {
	x := k.a.lo ^ bits.RotateLeft64(k.a.hi, 17) ^ k.b.lo*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(k.b.hi, 41)
	x ^= (uint64(k.ports)<<8 | uint64(k.proto)) * 0xc2b2ae3d27d4eb4f
	// SplitMix64's finalizer: every input bit reaches the low bits the
	// mask keeps.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return uint32(x)
}

// fwdFlow is a forward entry.
type fwdFlow struct {
	key     flowKey
	task    addrKey
	svc     *service // the service the task was last found in
	expires int64
	stamped int64 // the expiry last pushed to the reverse entry
	rev     int32 // the reverse entry's slot
	live    bool
	// closing: the client sent a FIN or RST; the flow lives its short
	// idle time from then on, whatever follows (the last ACK), until a
	// SYN starts a new connection of the same ports.
	closing bool
}

// flowTable is a port's forward table and the reverse table it writes.
type flowTable struct {
	fwd   []fwdFlow
	rev   *revTable
	owner []int32 // per reverse slot, the forward slot + 1 that owns it; 0: free
	mask  uint32
	port  *Port
	used  int // live forward entries, expired or not
}

// revTable is the published reverse table.
type revTable struct {
	slots []revSlot
	mask  uint32
}

// revSlot: w holds the key (client, task, ports<<8|proto|revValid) and
// the VIP.
type revSlot struct {
	seq     atomic.Uint64
	w       [7]atomic.Uint64
	expires atomic.Int64
}

const revValid = 1 << 40

// newFlowTable makes empty tables of slots; the caller publishes the
// reverse table (publish) once it holds what it should.
func newFlowTable(p *Port, slots int) *flowTable {
	return &flowTable{
		fwd:   make([]fwdFlow, slots),
		rev:   &revTable{slots: make([]revSlot, slots), mask: uint32(slots - 1)},
		owner: make([]int32, slots),
		mask:  uint32(slots - 1),
		port:  p,
	}
}

// publish makes the reverse table the one the port's deliverers read.
func (t *flowTable) publish() { t.port.rev.Store(t.rev) }

// tcpFlags reads a TCP packet's flags (0 for anything else).
func tcpFlags(pkt []byte, info *ipInfo) byte {
	if info.proto != protoTCP || info.length-info.l4 < tcpHeaderLen {
		return 0
	}
	return pkt[info.l4+tcpFlagsOffset]
}

// idleFor is how long a flow lives without a packet from its client.
func idleFor(proto uint8, closing bool) int64 {
	switch {
	case proto == protoTCP && closing:
		return flowIdleTCPEnd
	case proto == protoTCP:
		return flowIdleTCP
	case proto == protoUDP:
		return flowIdleUDP
	}
	return flowIdleICMP
}

// lookup returns the slot of k's live forward entry, -1 if none.
func (t *flowTable) lookup(k *flowKey, now int64) int {
	h := k.hash()
	for i := uint32(0); i < flowProbe; i++ {
		j := int((h + i) & t.mask)
		if f := &t.fwd[j]; f.live && f.key == *k && now < f.expires {
			return j
		}
	}
	return -1
}

// insert makes the entry of a new flow k to task (reverse entry included)
// and returns it. It never fails: a full window grows the table, or
// makes room.
func (t *flowTable) insert(k *flowKey, task addrKey, vip addrKey, svc *service, expires, now int64, tl *tally) *fwdFlow {
	for {
		fi, fok := t.freeFwd(k, now)
		rk := flowKey{a: k.a, b: task, ports: k.ports, proto: k.proto}
		ri, rok := t.freeRev(&rk, now)
		if (!fok || !rok || 2*t.used >= len(t.fwd)) && len(t.fwd) < flowMaxSlots {
			t.grow(now)
			continue
		}
		if f := &t.fwd[fi]; f.live {
			if now < f.expires && f.key != *k {
				tl.flowsEvicted++
			}
			t.dropFwd(fi) // expired, evicted or replaced
		}
		if o := t.owner[ri]; o != 0 {
			if f := &t.fwd[o-1]; f.live && now < f.expires {
				tl.flowsEvicted++
			}
			t.dropFwd(int(o - 1))
		}
		f := &t.fwd[fi]
		t.used++
		*f = fwdFlow{key: *k, task: task, svc: svc, expires: expires, stamped: expires, rev: int32(ri), live: true}
		t.owner[ri] = int32(fi + 1)
		t.rev.set(ri, &rk, vip, expires)
		return f
	}
}

// freeFwd finds k's slot in its window: a free or expired one, else the
// one that expires first (ok false).
func (t *flowTable) freeFwd(k *flowKey, now int64) (int, bool) {
	h := k.hash()
	best := -1
	for i := uint32(0); i < flowProbe; i++ {
		j := int((h + i) & t.mask)
		f := &t.fwd[j]
		if !f.live || now >= f.expires || f.key == *k {
			return j, true
		}
		if best < 0 || f.expires < t.fwd[best].expires {
			best = j
		}
	}
	return best, false
}

// freeRev does the same for the reverse key rk.
func (t *flowTable) freeRev(rk *flowKey, now int64) (int, bool) {
	h := rk.hash()
	best, bestExp := -1, int64(0)
	for i := uint32(0); i < flowProbe; i++ {
		j := int((h + i) & t.mask)
		o := t.owner[j]
		if o == 0 {
			return j, true
		}
		f := &t.fwd[o-1]
		if !f.live || now >= f.expires {
			return j, true
		}
		if best < 0 || f.expires < bestExp {
			best, bestExp = j, f.expires
		}
	}
	return best, false
}

// dropFwd forgets forward slot i and its reverse entry.
func (t *flowTable) dropFwd(i int) {
	f := &t.fwd[i]
	if !f.live {
		return
	}
	f.live = false
	t.used--
	if r := int(f.rev); t.owner[r] == int32(i+1) {
		t.owner[r] = 0
		t.rev.clear(r)
	}
}

// grow doubles both tables, keeps the live entries and then publishes
// the new reverse table, full: until then readers use the old one, whose
// entries are still right.
func (t *flowTable) grow(now int64) {
	old := t.fwd
	n := newFlowTable(t.port, 2*len(old))
	*t = *n
	defer t.publish()
	for i := range old {
		f := &old[i]
		if !f.live || now >= f.expires {
			continue
		}
		vip := f.key.b // the forward key's b; the reverse key's is the task
		fi, fok := t.freeFwd(&f.key, now)
		rk := flowKey{a: f.key.a, b: f.task, ports: f.key.ports, proto: f.key.proto}
		ri, rok := t.freeRev(&rk, now)
		if !fok || !rok {
			continue // too crowded even now: forgotten (it chooses again)
		}
		nf := *f
		nf.rev = int32(ri)
		t.fwd[fi] = nf
		t.used++
		t.owner[ri] = int32(fi + 1)
		t.rev.set(ri, &rk, vip, f.expires)
	}
}

// touch notes a packet of flow f at now: its expiry moves on, and the
// reverse entry's with it at most once per flowRevStamp.
func (t *flowTable) touch(f *fwdFlow, expires int64) {
	f.expires = expires
	if expires-f.stamped >= flowRevStamp || expires < f.stamped {
		f.stamped = expires
		t.rev.slots[f.rev].expires.Store(expires)
	}
}

// retask points the flow in slot fi at a new task (its old one went
// away).
func (t *flowTable) retask(fi int, task addrKey, svc *service, expires, now int64, tl *tally) {
	f := &t.fwd[fi]
	f.task, f.svc, f.expires, f.stamped = task, svc, expires, expires
	rk := flowKey{a: f.key.a, b: task, ports: f.key.ports, proto: f.key.proto}
	// The reverse entry stays in its slot though its key's hash changed:
	// readers would not find it there, so it moves.
	t.owner[f.rev] = 0
	t.rev.clear(int(f.rev))
	ri, _ := t.freeRev(&rk, now)
	if o := t.owner[ri]; o != 0 && int(o) != fi+1 {
		if g := &t.fwd[o-1]; g.live && now < g.expires {
			tl.flowsEvicted++
		}
		t.dropFwd(int(o - 1))
	}
	f.rev = int32(ri)
	t.owner[ri] = int32(fi + 1)
	t.rev.set(ri, &rk, f.key.b, expires)
}

func (r *revTable) set(i int, k *flowKey, vip addrKey, expires int64) {
	s := &r.slots[i]
	s.seq.Add(1) // odd: being written
	s.w[0].Store(k.a.hi)
	s.w[1].Store(k.a.lo)
	s.w[2].Store(k.b.hi)
	s.w[3].Store(k.b.lo)
	s.w[4].Store(uint64(k.ports)<<8 | uint64(k.proto) | revValid)
	s.w[5].Store(vip.hi)
	s.w[6].Store(vip.lo)
	s.expires.Store(expires)
	s.seq.Add(1)
}

func (r *revTable) clear(i int) {
	s := &r.slots[i]
	s.seq.Add(1)
	s.w[4].Store(0)
	s.seq.Add(1)
}

// lookup returns the VIP a reply of reverse key k comes from.
func (r *revTable) lookup(k *flowKey, now int64) (addrKey, bool) {
	h := k.hash()
	meta := uint64(k.ports)<<8 | uint64(k.proto) | revValid
	for i := uint32(0); i < flowProbe; i++ {
		s := &r.slots[(h+i)&r.mask]
		seq := s.seq.Load()
		if seq&1 != 0 || s.w[4].Load() != meta {
			continue
		}
		match := s.w[0].Load() == k.a.hi && s.w[1].Load() == k.a.lo && s.w[2].Load() == k.b.hi && s.w[3].Load() == k.b.lo
		vip := addrKey{s.w[5].Load(), s.w[6].Load()}
		live := now < s.expires.Load()
		if s.seq.Load() == seq && match && live {
			return vip, true
		}
	}
	return addrKey{}, false
}

// toTask sends a packet a port sends to the VIP of svc to the flow's
// task: found in the port's flow table, or chosen (and noted there). It
// rewrites the destination, mends the checksums (partial: the transport
// checksum is the pseudo-header sum) and returns false when the packet
// is dropped (counted); noTask says it was for want of a task.
func (l *insideLoop) toTask(nw *network, svc *service, pkt []byte, info *ipInfo, partial bool, now int64) (ok, noTask bool) {
	ports, ok := flowPorts(pkt, info)
	if !ok {
		l.tally.drop(DropUnsupported)
		return false, false
	}
	fam := famIndex(info.v6)
	k := flowKey{a: srcKey(pkt, info.v6), b: info.dst, ports: ports, proto: info.proto}
	if l.flows == nil {
		l.flows = newFlowTable(l.port, flowMinSlots)
		l.flows.publish()
	}
	flags := tcpFlags(pkt, info)
	ending := flags&(tcpFlagFIN|tcpFlagRST) != 0
	var f *fwdFlow
	if slot := l.flows.lookup(&k, now); slot >= 0 {
		f = &l.flows.fwd[slot]
		if flags&tcpFlagSYN != 0 && flags&tcpFlagACK == 0 {
			f.closing = false // a new connection of the same ports
		}
		f.closing = f.closing || ending
		expires := now + idleFor(info.proto, f.closing)
		switch {
		case f.svc == svc:
			l.flows.touch(f, expires)
		case svc.fam[fam].has.get(f.task) != 0:
			// A new table since, and the task is still the service's.
			f.svc = svc
			l.flows.touch(f, expires)
		default:
			// Its task went away: the flow chooses again (a TCP
			// connection is then reset by the new task).
			task, ti, ok := svc.pick(fam, flowHash(pkt, info), k.a)
			if !ok {
				l.flows.dropFwd(slot)
				svc.countNoTask()
				l.tally.drop(DropNoTask)
				return false, true
			}
			if svc.counters != nil {
				svc.counters.Moved.Add(1)
			}
			svc.countFlow(fam, ti)
			l.flows.retask(slot, task, svc, expires, now, &l.tally)
		}
	} else {
		task, ti, ok := svc.pick(fam, flowHash(pkt, info), k.a)
		if !ok {
			svc.countNoTask()
			l.tally.drop(DropNoTask)
			return false, true
		}
		f = l.flows.insert(&k, task, info.dst, svc, now+idleFor(info.proto, ending), now, &l.tally)
		f.closing = ending
		svc.countFlow(fam, ti)
		l.tally.serviceFlows++
	}
	rewriteAddr(pkt, info, true, f.task, partial)
	info.dst = f.task
	return true, false
}

func (s *service) countFlow(fi, ti int) {
	if s.counters != nil {
		s.counters.Flows.Add(1)
	}
	if c := s.fam[fi].counters[ti]; c != nil {
		c.Flows.Add(1)
	}
}

func (s *service) countNoTask() {
	if s.counters != nil {
		s.counters.NoTask.Add(1)
	}
}

// fromVIP rewrites a packet being delivered to port p back to come from
// the VIP its flow was sent to, when p's flow table has its flow (a reply
// of a task to a client that sent to a VIP). The packet's checksums are
// complete (partial false) or recomputed by the caller after (partial
// true: only the addresses are written).
func fromVIP(p *Port, pkt []byte, info *ipInfo, now int64) {
	r := p.rev.Load()
	if r == nil {
		return
	}
	ports, ok := flowPorts(pkt, info)
	if !ok {
		return
	}
	// The reply's ports, the other way round: the client's first.
	k := flowKey{a: info.dst, b: srcKey(pkt, info.v6), ports: ports<<16 | ports>>16, proto: info.proto}
	vip, ok := r.lookup(&k, now)
	if !ok {
		return
	}
	rewriteAddr(pkt, info, false, vip, false)
}

// srcKey reads a packet's source address.
func srcKey(pkt []byte, v6 bool) addrKey {
	if v6 {
		return addrKey{binary.BigEndian.Uint64(pkt[ipv6SrcOffset:]), binary.BigEndian.Uint64(pkt[ipv6SrcOffset+8:])}
	}
	return keyV4(pkt[ipv4SrcOffset:])
}
