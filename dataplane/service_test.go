package dataplane

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/dataplane/udp/udptest"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var (
	vip4 = netip.MustParseAddr("10.0.9.100")
	vip6 = netip.MustParseAddr("fd00:9::100")
)

// serviceSpecs is the rig's network with a service "api" whose tasks are
// port b (ip1b) and the remote endpoints ip2 (vtep2, also IPv6) and ip3
// (vtep3).
func (r *rig) serviceSpecs(tasks ...netip.Addr) []NetworkSpec {
	var ts []TaskSpec
	for _, a := range tasks {
		ts = append(ts, TaskSpec{Addrs: []netip.Addr{a}, Counters: &TaskCounters{}})
	}
	return []NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: r.portA},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: r.portB},
			{MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2, Peer: true},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3, Peer: true},
		},
		Services: []ServiceSpec{{Name: "api", VIPs: []netip.Addr{vip4, vip6}, Tasks: ts, Counters: &ServiceCounters{}}},
	}}
}

func (r *rig) setServices(t *testing.T, tasks ...netip.Addr) *ServiceSpec {
	t.Helper()
	specs := r.serviceSpecs(tasks...)
	tbl, err := NewTable(specs)
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	return &specs[0].Services[0]
}

// tcpSeg builds a TCP segment (IPv4 or IPv6) with correct checksums.
func tcpSeg(src, dst netip.Addr, sport, dport uint16, flags byte, payload string) []byte {
	ipLen := 20
	if src.Is6() {
		ipLen = 40
	}
	p := make([]byte, ipLen+20+len(payload))
	if src.Is6() {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(20+len(payload)))
		p[6], p[7] = protoTCP, 64
		copy(p[8:], src.AsSlice())
		copy(p[24:], dst.AsSlice())
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, protoTCP
		copy(p[12:], src.AsSlice())
		copy(p[16:], dst.AsSlice())
		binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	}
	t := p[ipLen:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	t[12], t[13] = 5<<4, flags
	copy(t[20:], payload)
	setTCPChecksum(p, ipLen)
	return p
}

// addrs reads a packet's source and destination.
func addrs(p []byte) (src, dst netip.Addr) {
	if p[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	}
	return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
}

func ipv4HeaderOK(p []byte) bool { return p[0]>>4 != 4 || fold(sum(0, p[:20])) == 0xffff }

// landing collects what the switch sends towards the service's tasks: to
// port b, and to the peers 2 and 3 (decapsulated).
type landing struct {
	r      *rig
	p2, p3 chan []byte
}

func (r *rig) landing(t *testing.T) *landing {
	l := &landing{r: r, p2: make(chan []byte, 1024), p3: make(chan []byte, 1024)}
	pump := func(c *udptest.Conn, ch chan []byte) {
		bufs, sizes, from := [][]byte{make([]byte, 70000)}, []int{0}, []netip.AddrPort{{}}
		for {
			n, err := c.ReadBatch(bufs, sizes, from)
			if err != nil {
				return
			}
			if n == 1 && sizes[0] >= vxlan.EncapLen {
				ch <- append([]byte(nil), bufs[0][vxlan.EncapLen:sizes[0]]...)
			}
		}
	}
	go pump(r.peer2, l.p2)
	go pump(r.peer3, l.p3)
	return l
}

// next returns the next packet for a task and where it went: "b", "2" or
// "3".
func (l *landing) next(t *testing.T) (string, []byte) {
	t.Helper()
	select {
	case p := <-l.r.b.Outbound():
		return "b", p
	case p := <-l.p2:
		return "2", p
	case p := <-l.p3:
		return "3", p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet reached a task within 5s")
	}
	return "", nil
}

var taskAt = map[string]netip.Addr{"b": ip1b, "2": ip2, "3": ip3}

// TestService_flowsSpreadStickAndReturn: flows from port a to the VIP go to
// every task (local and remote), each flow always to the same one, with
// the destination rewritten and checksums intact; the tasks' replies,
// local and from the underlay, reach a from the VIP.
func TestService_flowsSpreadStickAndReturn(t *testing.T) {
	r := newRig(t)
	spec := r.setServices(t, ip1b, ip2, ip3)
	l := r.landing(t)
	const flows = 90
	chose := map[uint16]string{}
	split := map[string]int{}
	for i := range flows {
		sport := uint16(40000 + i)
		r.a.Inject(tcpSeg(ip1, vip4, sport, 80, tcpFlagSYN, ""))
		where, p := l.next(t)
		src, dst := addrs(p)
		if src != ip1 || dst != taskAt[where] || !tcpChecksumOK(p) || !ipv4HeaderOK(p) {
			t.Fatalf("flow %d landed at %s as %v→%v (checksums %v %v)", i, where, src, dst, tcpChecksumOK(p), ipv4HeaderOK(p))
		}
		chose[sport] = where
		split[where]++
	}
	t.Logf("%d flows over 3 tasks: %v", flows, split)
	if len(split) != 3 {
		t.Errorf("flows reached %d tasks, want 3: %v", len(split), split)
	}
	// The same flows again, with data: each to its task.
	for sport, where := range chose {
		r.a.Inject(tcpSeg(ip1, vip4, sport, 80, tcpFlagACK, "more"))
		got, _ := l.next(t)
		if got != where {
			t.Fatalf("flow from port %d went to %s, then %s", sport, where, got)
		}
	}
	if got := spec.Counters.Flows.Load(); got != flows {
		t.Errorf("service counts %d flows, want %d", got, flows)
	}
	var perTask uint64
	for _, ts := range spec.Tasks {
		perTask += ts.Counters.Flows.Load()
	}
	if perTask != flows {
		t.Errorf("tasks count %d flows, want %d", perTask, flows)
	}

	// Replies: from the local task (port b) and from a remote one.
	var local, remote uint16
	for sport, where := range chose {
		switch {
		case where == "b" && local == 0:
			local = sport
		case where == "2" && remote == 0:
			remote = sport
		}
	}
	r.b.Inject(tcpSeg(ip1b, ip1, 80, local, tcpFlagSYN|tcpFlagACK, "hello"))
	p := out(t, r.a)
	if src, dst := addrs(p); src != vip4 || dst != ip1 || !tcpChecksumOK(p) || !ipv4HeaderOK(p) {
		t.Errorf("local task's reply reached a as %v→%v (checksums %v %v), want from the VIP", src, dst, tcpChecksumOK(p), ipv4HeaderOK(p))
	}
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, tcpSeg(ip2, ip1, 80, remote, tcpFlagSYN|tcpFlagACK, "hi")))
	p = out(t, r.a)
	if src, dst := addrs(p); src != vip4 || dst != ip1 || !tcpChecksumOK(p) || !ipv4HeaderOK(p) {
		t.Errorf("remote task's reply reached a as %v→%v, want from the VIP", src, dst)
	}
	// A packet from a task that is no reply (another source port) keeps
	// its own address: a talks to tasks directly too.
	r.b.Inject(tcpSeg(ip1b, ip1, 81, local, tcpFlagSYN, ""))
	if src, _ := addrs(out(t, r.a)); src != ip1b {
		t.Errorf("a direct packet from a task reached a from %v, want %v", src, ip1b)
	}
}

// TestService_taskLeaves: a task that leaves takes no new flow; a flow to
// it chooses again at its next packet (counted); flows to the others
// stay where they were.
func TestService_taskLeaves(t *testing.T) {
	r := newRig(t)
	spec := r.setServices(t, ip1b, ip2, ip3)
	l := r.landing(t)
	chose := map[uint16]string{}
	for i := range 60 {
		sport := uint16(41000 + i)
		r.a.Inject(tcpSeg(ip1, vip4, sport, 80, tcpFlagSYN, ""))
		where, _ := l.next(t)
		chose[sport] = where
	}
	spec = r.setServices(t, ip1b, ip3) // task 2 leaves
	moved := 0
	for sport, where := range chose {
		r.a.Inject(tcpSeg(ip1, vip4, sport, 80, tcpFlagACK, "x"))
		got, _ := l.next(t)
		switch {
		case got == "2":
			t.Fatalf("flow %d still went to the task that left", sport)
		case where == "2":
			moved++
		case got != where:
			t.Errorf("flow %d moved from %s to %s though its task stayed", sport, where, got)
		}
	}
	if got := spec.Counters.Moved.Load(); got != uint64(moved) || moved == 0 {
		t.Errorf("moved: counted %d, saw %d", got, moved)
	}
	for i := range 30 {
		r.a.Inject(tcpSeg(ip1, vip4, uint16(42000+i), 80, tcpFlagSYN, ""))
		if got, _ := l.next(t); got == "2" {
			t.Fatal("a new flow went to the task that left")
		}
	}
}

// TestService_ipv6AndICMP: the IPv6 VIP goes to the tasks with IPv6
// addresses (only ip62 here); an echo request to the VIP is answered
// from it; a VIP of a family with no task drops (no_task) and answers
// ICMPv6 port unreachable.
func TestService_ipv6AndICMP(t *testing.T) {
	r := newRig(t)
	tasks := r.serviceSpecs()
	tasks[0].Services[0].Tasks = []TaskSpec{{Addrs: []netip.Addr{ip2, ip62}}}
	tbl, err := NewTable(tasks)
	if err != nil {
		t.Fatal(err)
	}
	r.sw.SetTable(tbl)
	l := r.landing(t)
	r.a.Inject(tcpSeg(ip6a, vip6, 5000, 443, tcpFlagSYN, ""))
	where, p := l.next(t)
	if src, dst := addrs(p); where != "2" || src != ip6a || dst != ip62 || !tcpChecksumOK(p) {
		t.Fatalf("IPv6 flow landed at %s as %v→%v (checksum %v)", where, src, dst, tcpChecksumOK(p))
	}
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv6, tcpSeg(ip62, ip6a, 443, 5000, tcpFlagSYN|tcpFlagACK, "")))
	p = out(t, r.a)
	if src, _ := addrs(p); src != vip6 || !tcpChecksumOK(p) {
		t.Errorf("IPv6 reply from %v (checksum %v), want the VIP", src, tcpChecksumOK(p))
	}

	// ping the VIP
	r.a.Inject(icmpEcho(ip1, vip4, 8, 77))
	where, p = l.next(t)
	if _, dst := addrs(p); where != "2" || dst != ip2 || !ipv4HeaderOK(p) {
		t.Fatalf("echo request landed at %s for %v", where, dst)
	}
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, icmpEcho(ip2, ip1, 0, 77)))
	if src, _ := addrs(out(t, r.a)); src != vip4 {
		t.Errorf("echo reply from %v, want the VIP", src)
	}

	// Only IPv4 tasks now: the IPv6 VIP has none.
	tasks[0].Services[0].Tasks = []TaskSpec{{Addrs: []netip.Addr{ip1b}}}
	tbl, _ = NewTable(tasks)
	r.sw.SetTable(tbl)
	r.a.Inject(tcpSeg(ip6a, vip6, 5001, 443, tcpFlagSYN, ""))
	waitStats(t, r.sw, "no_task drop", func(s Stats) bool { return s.Drops["no_task"] == 1 })
	// ... and answered as by a host where nothing listens, from the VIP.
	p = out(t, r.a)
	if len(p) < 48+40 || p[6] != protoICMPv6 || p[40] != 1 || p[41] != 4 {
		t.Fatalf("answer %x: want ICMPv6 port unreachable", p)
	}
	if src, dst := addrs(p); src != vip6 || dst != ip6a {
		t.Errorf("port unreachable %v→%v, want %v→%v", src, dst, vip6, ip6a)
	}
	ph := sum(0, p[ipv6SrcOffset:ipv6DstOffset+16]) + uint64(len(p)-40) + protoICMPv6
	if fold(sum(ph, p[40:])) != 0xffff {
		t.Error("the ICMPv6 checksum is broken")
	}
	if _, dst := addrs(p[48:]); dst != vip6 {
		t.Errorf("it quotes a packet to %v, want the VIP", dst)
	}
}

// icmpEcho builds an IPv4 echo request (typ 8) or reply (0).
func icmpEcho(src, dst netip.Addr, typ byte, id uint16) []byte {
	p := make([]byte, 28)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], 28)
	p[8], p[9] = 64, protoICMP
	copy(p[12:], src.AsSlice())
	copy(p[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(p[10:], ^fold(sum(0, p[:20])))
	p[20] = typ
	binary.BigEndian.PutUint16(p[24:], id)
	binary.BigEndian.PutUint16(p[22:], ^fold(sum(0, p[20:])))
	return p
}

// TestService_badSpecsLeftOut: a VIP that is an endpoint's address, a
// second VIP of a family, a task that is no endpoint: named and left out,
// the rest built.
func TestService_badSpecsLeftOut(t *testing.T) {
	r := newRig(t)
	specs := r.serviceSpecs(ip1b)
	specs[0].Services = append(specs[0].Services,
		ServiceSpec{Name: "clash", VIPs: []netip.Addr{ip2}},
		ServiceSpec{Name: "two", VIPs: []netip.Addr{netip.MustParseAddr("10.0.9.101"), netip.MustParseAddr("10.0.9.102")}},
		ServiceSpec{Name: "novip"},
		ServiceSpec{Name: "ghost", VIPs: []netip.Addr{netip.MustParseAddr("10.0.9.103")}, Tasks: []TaskSpec{{Addrs: []netip.Addr{netip.MustParseAddr("10.0.9.77")}}}},
	)
	tbl, err := NewTable(specs)
	for _, want := range []string{
		`service "clash": VIP 10.0.9.3 is an endpoint's address`,
		`service "two": VIP 10.0.9.102: a second VIP of its family`,
		`service "novip": no VIP`,
		`service "ghost": task address 10.0.9.77 is no endpoint's`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
	nw := tbl.vnis.get(testVNI)
	if nw == nil || nw.vips.get(keyOf(vip4)) == nil || nw.vips.get(keyOf(netip.MustParseAddr("10.0.9.103"))) == nil {
		t.Fatal("the good service (and the one with no task left) are not in the table")
	}
}

// TestRewriteAddr_checksums: after a source or destination rewrite, a
// complete checksum still verifies and a partial one is the new
// pseudo-header sum, for TCP, UDP and ICMPv6 over both families.
func TestRewriteAddr_checksums(t *testing.T) {
	v4b, v6b := netip.MustParseAddr("192.168.77.250"), netip.MustParseAddr("2001:db8:ffff::1")
	pkts := map[string][]byte{
		"tcp4": tcpSeg(ip1, vip4, 1234, 80, tcpFlagACK, "some payload bytes"),
		"tcp6": tcpSeg(ip6a, vip6, 1234, 80, tcpFlagACK, "odd"),
		"udp4": withUDPChecksum(ipv4UDP(ip1, vip4, 5, 53, []byte("query"))),
		"udp6": withUDPChecksum(ipv6UDP(ip6a, vip6, []byte("q6"))),
	}
	for name, p := range pkts {
		for _, dst := range []bool{true, false} {
			for _, partial := range []bool{false, true} {
				q := append([]byte(nil), p...)
				info, _ := parseIP(q)
				field := info.l4 + tcpChecksumOffset
				if info.proto == protoUDP {
					field = info.l4 + udpChecksumOffset
				}
				if partial {
					binary.BigEndian.PutUint16(q[field:], fold(pseudoHeaderSum(q, &info, info.length-info.l4)))
				}
				to := v4b
				if info.v6 {
					to = v6b
				}
				rewriteAddr(q, &info, dst, keyOf(to), partial)
				src, d := addrs(q)
				if got := map[bool]netip.Addr{true: d, false: src}[dst]; got != to {
					t.Fatalf("%s: address %v, want %v", name, got, to)
				}
				if !ipv4HeaderOK(q) {
					t.Errorf("%s dst=%v partial=%v: IPv4 header checksum broken", name, dst, partial)
				}
				if partial {
					if got, want := binary.BigEndian.Uint16(q[field:]), fold(pseudoHeaderSum(q, &info, info.length-info.l4)); got != want {
						t.Errorf("%s dst=%v: partial sum %#x, want %#x", name, dst, got, want)
					}
				} else if !l4Valid(q) {
					t.Errorf("%s dst=%v: checksum broken", name, dst)
				}
			}
		}
	}
	// IPv4 UDP without a checksum stays without one.
	q := ipv4UDP(ip1, vip4, 5, 53, []byte("query"))
	info, _ := parseIP(q)
	rewriteAddr(q, &info, true, keyOf(v4b), false)
	if q[info.l4+udpChecksumOffset] != 0 || q[info.l4+udpChecksumOffset+1] != 0 || !ipv4HeaderOK(q) {
		t.Error("IPv4 UDP without a checksum got one, or its header checksum broke")
	}
}

func withUDPChecksum(p []byte) []byte {
	info, _ := parseIP(p)
	binary.BigEndian.PutUint16(p[info.l4+udpChecksumOffset:], ^fold(sum(pseudoHeaderSum(p, &info, info.length-info.l4), p[info.l4:])))
	return p
}

// FuzzServicePath: whatever a port sends to a VIP, and whatever comes
// back, is forwarded, rewritten or dropped, never a panic.
func FuzzServicePath(f *testing.F) {
	f.Add(tcpSeg(ip1, vip4, 40000, 80, tcpFlagSYN, ""), tcpSeg(ip2, ip1, 80, 40000, tcpFlagACK, "x"))
	f.Add(icmpEcho(ip1, vip4, 8, 1), icmpEcho(ip2, ip1, 0, 1))
	f.Add(withUDPChecksum(ipv6UDP(ip6a, vip6, []byte("q"))), []byte{0x60})
	h := newHotRig(f)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: h.inside.port},
			{MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2},
		},
		Services: []ServiceSpec{{Name: "api", VIPs: []netip.Addr{vip4, vip6}, Tasks: []TaskSpec{{Addrs: []netip.Addr{ip2, ip62}}}}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	h.sw.SetTable(tbl)
	f.Fuzz(func(t *testing.T, toVIP, back []byte) {
		if len(toVIP) > 2000 || len(back) > 2000 {
			return
		}
		h.loadInside(toVIP, 1)
		h.processInside(1)
		h.loadOutside(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, back), vtep2, 1)
		h.outside.process(1)
		h.loadOutside(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv6, back), vtep2, 1)
		h.outside.process(1)
	})
}

// TestService_taskIsNeverItsOwnTask: a task that connects to its own
// service's VIP reaches another task; with no other, it is dropped
// (no_task) rather than sent back to itself, and refused with ICMP.
func TestService_taskIsNeverItsOwnTask(t *testing.T) {
	r := newRig(t)
	r.setServices(t, ip1b, ip2)
	l := r.landing(t)
	for i := range 40 {
		r.b.Inject(tcpSeg(ip1b, vip4, uint16(43000+i), 80, tcpFlagSYN, ""))
		if where, _ := l.next(t); where != "2" {
			t.Fatalf("flow %d from task b went to %s", i, where)
		}
	}
	r.setServices(t, ip1b)
	r.b.Inject(tcpSeg(ip1b, vip4, 44000, 80, tcpFlagSYN, ""))
	waitStats(t, r.sw, "no_task drop", func(s Stats) bool { return s.Drops["no_task"] == 1 })
	// The connection is refused at once: ICMP port unreachable from the VIP.
	p := out(t, r.b)
	if len(p) < 28+20 || p[9] != protoICMP || p[20] != 3 || p[21] != 3 || !ipv4HeaderOK(p) || fold(sum(0, p[20:])) != 0xffff {
		t.Fatalf("answer %x: want ICMP port unreachable", p)
	}
	if src, dst := addrs(p); src != vip4 || dst != ip1b {
		t.Errorf("port unreachable %v→%v, want %v→%v", src, dst, vip4, ip1b)
	}
	// An echo request gets no answer; a UDP datagram after it is refused
	// (the first answer out is the datagram's).
	r.b.Inject(icmpEcho(ip1b, vip4, 8, 9))
	r.b.Inject(withUDPChecksum(ipv4UDP(ip1b, vip4, 5353, 53, []byte("q"))))
	waitStats(t, r.sw, "no_task drops", func(s Stats) bool { return s.Drops["no_task"] == 3 })
	p = out(t, r.b)
	if len(p) < 48 || p[9] != protoICMP || p[20] != 3 || p[21] != 3 || p[28+9] != protoUDP {
		t.Fatalf("answer %x: want ICMP port unreachable quoting the UDP datagram", p)
	}
}

// TestService_tooBigQuotesTheVIP: a packet to a VIP too large for the
// narrow path to its task's host is answered with ICMP quoting the packet
// as its sender sent it: to the VIP.
func TestService_tooBigQuotesTheVIP(t *testing.T) {
	r := newRig(t)
	r.setServices(t, ip2)
	r.sw.pmtu.Store((&pathMTUs{vteps: []netip.Addr{vtep2}, inner: []int{1300}}).seal())
	big := withDF(withUDPChecksum(ipv4UDP(ip1, vip4, 1000, 2000, make([]byte, 1372))))
	r.a.Inject(big)
	p := out(t, r.a)
	if len(p) < 48 || p[9] != protoICMP || p[20] != 3 || p[21] != 4 {
		t.Fatalf("answer %x: want ICMP fragmentation needed", p)
	}
	quoted := p[28:]
	if _, dst := addrs(quoted); dst != vip4 {
		t.Errorf("the ICMP error quotes a packet to %v, want the VIP %v", dst, vip4)
	}
	if !ipv4HeaderOK(quoted) {
		t.Error("the quoted header's checksum is broken")
	}
}

// TestFlows_closedConnectionExpiresSoon: after the client's FIN, the flow
// keeps its short idle time though the last ACK follows; a SYN of the
// same ports starts a connection with the long one.
func TestFlows_closedConnectionExpiresSoon(t *testing.T) {
	h := newHotRig(t)
	tbl, err := NewTable([]NetworkSpec{{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: h.inside.port},
			{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2},
		},
		Services: []ServiceSpec{{Name: "api", VIPs: []netip.Addr{vip4}, Tasks: []TaskSpec{{Addrs: []netip.Addr{ip2}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	left := func() time.Duration {
		t.Helper()
		for i := range h.inside.flows.fwd {
			if f := &h.inside.flows.fwd[i]; f.live {
				return time.Duration(f.expires - time.Now().UnixNano())
			}
		}
		t.Fatal("no flow")
		return 0
	}
	send := func(flags byte) {
		h.loadInside(tcpSeg(ip1, vip4, 40000, 80, flags, ""), 1)
		h.processInside(1)
	}
	send(tcpFlagSYN)
	send(tcpFlagACK)
	if d := left(); d < 20*time.Minute {
		t.Fatalf("an open connection expires in %v", d)
	}
	send(tcpFlagFIN | tcpFlagACK)
	send(tcpFlagACK) // the last ACK
	if d := left(); d > 11*time.Second {
		t.Errorf("a closed connection expires in %v, want about 10 s", d)
	}
	send(tcpFlagSYN)
	if d := left(); d < 20*time.Minute {
		t.Errorf("a new connection of the same ports expires in %v", d)
	}
}
