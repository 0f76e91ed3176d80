package dataplane

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/udp"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// nopDevice is a port that takes writes without copying or allocating.
type nopDevice struct{ written int }

func (d *nopDevice) Read([][]byte, []int, int) (int, error) { return 0, os.ErrClosed }
func (d *nopDevice) Write(bufs [][]byte, _ int) (int, error) {
	d.written += len(bufs)
	return len(bufs), nil
}
func (d *nopDevice) BatchSize() int { return 64 }
func (d *nopDevice) Close() error   { return nil }

// nopUnderlay swallows writes and never delivers reads.
type nopUnderlay struct{ sent, bytes int }

func (u *nopUnderlay) ReadBatch([][]byte, []int, []netip.AddrPort) (int, error) {
	return 0, os.ErrClosed
}
func (u *nopUnderlay) WriteBatch(bufs [][]byte, _ []netip.AddrPort, _ []uint32) (int, error) {
	u.sent += len(bufs)
	for _, b := range bufs {
		u.bytes += len(b)
	}
	return len(bufs), nil
}
func (u *nopUnderlay) NewWriter() udp.BatchWriter { return u }
func (u *nopUnderlay) BatchSize() int             { return 64 }
func (u *nopUnderlay) Close() error               { return nil }

// hotRig is a switch whose loops are driven by hand, with no goroutines.
type hotRig struct {
	sw      *Switch
	under   *nopUnderlay
	devA    *nopDevice
	devB    *nopDevice
	portB   *Port
	inside  *insideLoop
	outside *outsideLoop
}

func newHotRig(tb testing.TB) *hotRig {
	h := &hotRig{under: &nopUnderlay{}, devA: &nopDevice{}, devB: &nopDevice{}}
	sw, err := New(DefaultConfig(), h.under)
	if err != nil {
		tb.Fatal(err)
	}
	h.sw = sw
	pa := &Port{sw: sw, dev: h.devA, name: "a", index: 0}
	pb := &Port{sw: sw, dev: h.devB, name: "b", index: 1}
	h.portB = pb
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: pa},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: pb},
			{MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3},
		},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	sw.SetTable(tbl)
	h.inside = sw.newInsideLoop(pa)
	h.inside.b = sw.batches.get() // for good: no loop runs here
	h.outside = sw.newOutsideLoop(sw.underlay)
	return h
}

// loadInside puts n copies of pkt in the inside loop's buffers.
func (h *hotRig) loadInside(pkt []byte, n int) {
	for i := 0; i < n; i++ {
		h.inside.readSizes[i] = copy(h.inside.readBufs[i][Headroom:], pkt)
	}
}

// processInside has the inside loop process the first n packets loaded.
func (h *hotRig) processInside(n int) {
	h.inside.process(h.inside.readBufs, h.inside.readSizes, nil, nil, n)
}

// loadOutside puts n copies of a datagram in the outside loop's buffers.
func (h *hotRig) loadOutside(dgram []byte, from netip.Addr, n int) {
	for i := 0; i < n; i++ {
		h.outside.sizes[i] = copy(h.outside.views[i], dgram)
		h.outside.from[i] = netip.AddrPortFrom(from, vxlan.DefaultPort)
	}
}

func TestHotPath_zeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	h := newHotRig(t)
	arp := frame(testVNI, vxlan.Broadcast, mac2, vxlan.EtherTypeARP, arpRequest(mac2, ip2, ip1))
	toRemote := ipv4UDP(ip1, ip2, 1, 2, make([]byte, 64))
	toBroadcast := ipv4UDP(ip1, netip.MustParseAddr("10.0.9.255"), 1, 2, make([]byte, 64))
	toLocal := ipv4UDP(ip1, ip1b, 1, 2, make([]byte, 64))
	fromRemote := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, make([]byte, 64)))
	tooBig := withDF(ipv4UDP(ip1, ip2, 1, 2, make([]byte, 1500)))
	toLearned := ipv4UDP(ip1, ipK, 1, 2, make([]byte, 64))
	toUnknown := ipv4UDP(ip1, netip.MustParseAddr("10.0.9.99"), 1, 2, make([]byte, 64))
	h.sw.applyLearned([]learnOffer{{vni: testVNI, addr: ipK, mac: macK, vtep: vtep3}}, time.Now().UnixNano())
	for name, tc := range map[string]struct {
		run  func()
		sent func() int
	}{
		"inside encap to remote": {func() {
			h.loadInside(toRemote, 32)
			h.processInside(32)
		}, func() int { return h.under.sent }},
		"inside flood": {func() {
			h.loadInside(toBroadcast, 32)
			h.processInside(32)
		}, func() int { return h.under.sent + h.devB.written }},
		"inside local": {func() {
			h.loadInside(toLocal, 32)
			h.processInside(32)
		}, func() int { return h.devB.written }},
		"inside too big, answered": {func() {
			h.inside.icmp = icmpLimit{tokens: icmpBurst} // not rate-limited here
			h.loadInside(tooBig, 1)
			h.processInside(1)
		}, func() int { return h.devA.written }},
		"inside to a learnt address": {func() {
			h.loadInside(toLearned, 32)
			h.processInside(32)
		}, func() int { return h.under.sent }},
		"inside to an unknown address, asked": {func() {
			h.inside.arp = arpThrottle{} // asks every time
			h.loadInside(toUnknown, 1)
			h.processInside(1)
		}, func() int { return h.under.sent }},
		"outside decap to port": {func() {
			h.loadOutside(fromRemote, vtep2, 32)
			h.outside.process(32)
		}, func() int { return h.devA.written }},
		"outside ARP reply": {func() {
			h.loadOutside(arp, vtep2, 32)
			h.outside.process(32)
		}, func() int { return h.under.sent }},
		"outside drop unknown VTEP": {func() {
			h.loadOutside(arp, vtepX, 32)
			h.outside.process(32)
		}, func() int { return int(h.sw.Stats().Drops["unknown_vtep"]) }},
	} {
		t.Run(name, func(t *testing.T) {
			before := tc.sent()
			if allocs := testing.AllocsPerRun(100, tc.run); allocs != 0 {
				t.Errorf("%v allocations per batch of 32 packets, want 0", allocs)
			}
			if tc.sent() == before {
				t.Errorf("the path did nothing: no packet came out")
			}
		})
	}
}

// TestHotPath_zeroAllocsOut: the way out (to the gateway port, and an
// l2tunnel host's to the policy host) allocates nothing either.
func TestHotPath_zeroAllocsOut(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	world := ipv4UDP(ip1, netip.MustParseAddr("198.51.100.7"), 1, 2, make([]byte, 64))
	for name, spec := range map[string]func(h *hotRig) NetworkSpec{
		"to the gateway": func(h *hotRig) NetworkSpec {
			return NetworkSpec{Gateway: h.portB}
		},
		"to the policy host": func(*hotRig) NetworkSpec { return NetworkSpec{PolicyVTEP: vtep3} },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHotRig(t)
			s := spec(h)
			s.VNI, s.Subnets = testVNI, []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")}
			s.Endpoints = []EndpointSpec{{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port}}
			tbl, err := NewTable([]NetworkSpec{s})
			if err != nil {
				t.Fatal(err)
			}
			h.sw.SetTable(tbl)
			before := h.under.sent + h.devB.written
			run := func() {
				h.loadInside(world, 32)
				h.processInside(32)
			}
			if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
				t.Errorf("%v allocations per batch", allocs)
			}
			if h.under.sent+h.devB.written == before {
				t.Error("nothing went out: the test measured the wrong path")
			}
		})
	}
}

// TestHotPath_zeroAllocsFragment: fragmenting an IPv4 packet without DF
// for a narrow path allocates nothing once the loop's fragment buffers
// exist.
func TestHotPath_zeroAllocsFragment(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	h := newHotRig(t)
	h.sw.pmtu.Store((&pathMTUs{vteps: []netip.Addr{vtep2}, inner: []int{600}}).seal())
	big := ipv4UDP(ip1, ip2, 1, 2, make([]byte, 1372))
	before := h.under.sent
	run := func() {
		h.loadInside(big, 8)
		h.processInside(8)
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per batch of 8 packets in fragments", allocs)
	}
	if per := (h.under.sent - before) / (101 * 8); per != 3 {
		t.Errorf("%d datagrams per packet, want 3 fragments", per)
	}
}

// TestHotPath_zeroAllocsService: packets to a service's VIP (a known
// flow, and new flows in a full flow table) and the tasks' replies back
// from the underlay allocate nothing.
func TestHotPath_zeroAllocsService(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	h := newHotRig(t)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: h.portB},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},
		},
		Services: []ServiceSpec{{Name: "api", VIPs: []netip.Addr{vip4}, Counters: &ServiceCounters{},
			Tasks: []TaskSpec{{Addrs: []netip.Addr{ip2}, Counters: &TaskCounters{}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	known := tcpSeg(ip1, vip4, 40000, 80, tcpFlagACK, "data")
	reply := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, tcpSeg(ip2, ip1, 80, 40000, tcpFlagACK, "back"))
	h.loadInside(known, 1)
	h.processInside(1)
	// Fill the flow table to its bound: from then on a new flow takes the
	// place of an old one.
	sport := uint16(1)
	newFlows := func(n int) {
		for i := range n {
			p := h.inside.readBufs[i][Headroom:]
			h.inside.readSizes[i] = copy(p, known)
			binary.BigEndian.PutUint16(p[20:], sport)
			setTCPChecksum(p[:h.inside.readSizes[i]], 20)
			sport++
			if sport == 40000 {
				sport++
			}
		}
		h.processInside(n)
	}
	for h.inside.flows == nil || len(h.inside.flows.fwd) < flowMaxSlots {
		newFlows(32)
	}
	for name, tc := range map[string]struct {
		run  func()
		sent func() int
	}{
		"inside to a VIP, a known flow": {func() {
			h.loadInside(known, 32)
			h.processInside(32)
		}, func() int { return h.under.sent }},
		"inside to a VIP, new flows": {func() { newFlows(32) }, func() int { return h.under.sent }},
		"outside reply from the VIP's task": {func() {
			h.loadOutside(reply, vtep2, 32)
			h.outside.process(32)
		}, func() int { return h.devA.written }},
	} {
		t.Run(name, func(t *testing.T) {
			before := tc.sent()
			if allocs := testing.AllocsPerRun(100, tc.run); allocs != 0 {
				t.Errorf("%v allocations per batch of 32 packets, want 0", allocs)
			}
			if tc.sent() == before {
				t.Errorf("the path did nothing: no packet came out")
			}
		})
	}
}
