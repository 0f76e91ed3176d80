package dataplane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/udp/udptest"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// sealedKeys makes the keys the switch (vtep1) shares with each of peers:
// the keyring to publish, and each peer's side of its pair.
func sealedKeys(t testing.TB, peers ...netip.Addr) (*Keyring, map[netip.Addr]seal.Keys) {
	t.Helper()
	local := seal.Local{Static: newKeyPair(t), Session: newKeyPair(t)}
	ring := make(map[netip.Addr]PeerKeys)
	theirs := make(map[netip.Addr]seal.Keys)
	for _, p := range peers {
		remote := seal.Local{Static: newKeyPair(t), Session: newKeyPair(t)}
		ours, err := seal.Derive(seal.AES256GCM, local, seal.Remote{Static: remote.Static.Public(), Session: remote.Session.Public()})
		if err != nil {
			t.Fatal(err)
		}
		their, err := seal.Derive(seal.AES256GCM, remote, seal.Remote{Static: local.Static.Public(), Session: local.Session.Public()})
		if err != nil {
			t.Fatal(err)
		}
		ring[p] = PeerKeys{Send: ours.Send, Recv: []*seal.RecvKey{ours.Recv}, Retired: []uint32{0xdeadbeef}}
		theirs[p] = their
	}
	k, err := NewKeyring(ring)
	if err != nil {
		t.Fatal(err)
	}
	return k, theirs
}

func newKeyPair(t testing.TB) *seal.KeyPair {
	t.Helper()
	k, err := seal.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealedSpec is the rigs' network, encrypted: the remote endpoints are
// vxnet peers.
func sealedSpec(a, b *Port) NetworkSpec {
	return NetworkSpec{
		VNI:     testVNI,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")},
		Endpoints: []EndpointSpec{
			{MAC: mac1, Addrs: []netip.Addr{ip1, ip6a}, Port: a},
			{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: b},
			{MAC: mac2, Addrs: []netip.Addr{ip2, ip62}, VTEP: vtep2, Peer: true},
			{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3, Peer: true},
		},
		Encrypted: true,
	}
}

// newSealedRig is newRig with its network encrypted and keys for vtep2
// alone (vtep3's are not known yet).
func newSealedRig(t *testing.T) (*rig, map[netip.Addr]seal.Keys) {
	t.Helper()
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(r.portA, r.portB)})
	if err != nil {
		t.Fatal(err)
	}
	keys, theirs := sealedKeys(t, vtep2)
	r.sw.SetKeys(keys)
	r.sw.SetTable(tbl)
	return r, theirs
}

// sealAsPeer seals a plain VXLAN datagram (frame) with k as the peer
// would send it.
func sealAsPeer(t testing.TB, k *seal.SendKey, plain []byte) []byte {
	t.Helper()
	b := make([]byte, seal.HeaderLen+len(plain)-vxlan.HeaderLen, seal.HeaderLen+len(plain)-vxlan.HeaderLen+seal.TagLen)
	copy(b, plain[:vxlan.HeaderLen])
	copy(b[seal.HeaderLen:], plain[vxlan.HeaderLen:])
	ctr, ok := k.Reserve(1)
	if !ok {
		t.Fatal("key exhausted")
	}
	d, err := k.Seal(new(seal.Scratch), b, ctr)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openDatagram opens a sealed datagram as the peer would and returns its
// inner Ethernet frame.
func openDatagram(t *testing.T, k *seal.RecvKey, d []byte) []byte {
	t.Helper()
	h, err := seal.ParseHeader(d)
	if err != nil {
		t.Fatalf("datagram not sealed: %v (%x)", err, d[:min(len(d), 24)])
	}
	if h.VNI != testVNI || h.ID != k.ID() {
		t.Fatalf("header %+v: want VNI %d, key id %08x", h, testVNI, k.ID())
	}
	f, err := k.Open(new(seal.Scratch), append([]byte(nil), d...), h)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return f
}

func TestSealed_insideSealsForThePeer(t *testing.T) {
	r, theirs := newSealedRig(t)
	for _, pkt := range [][]byte{
		ipv4UDP(ip1, ip2, 1000, 2000, []byte("VXNET-SECRET-MARKER over IPv4")),
		ipv6UDP(ip6a, ip62, []byte("VXNET-SECRET-MARKER over IPv6")),
	} {
		r.a.Inject(pkt)
		got, _ := recv(t, r.peer2)
		if bytes.Contains(got, []byte("VXNET-SECRET-MARKER")) {
			t.Fatal("the inner payload crossed the underlay in clear")
		}
		if len(got) != vxlan.EncapLen+len(pkt)+seal.Overhead {
			t.Fatalf("sealed datagram %d bytes, want %d", len(got), vxlan.EncapLen+len(pkt)+seal.Overhead)
		}
		f := openDatagram(t, theirs[vtep2].Recv, got)
		eth, err := vxlan.ParseEthernet(f)
		if err != nil || eth.Dst != mac2 || eth.Src != mac1 {
			t.Fatalf("inner Ethernet %+v, %v", eth, err)
		}
		if !bytes.Equal(f[vxlan.EthernetLen:], pkt) {
			t.Fatal("inner packet changed in transit")
		}
	}
}

func TestSealed_outsideOpensToPort(t *testing.T) {
	r, theirs := newSealedRig(t)
	pkt := ipv4UDP(ip2, ip1, 2000, 1000, []byte("from afar, sealed"))
	send(t, r.peer2, sealAsPeer(t, theirs[vtep2].Send, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, pkt)))
	if got := out(t, r.a); !bytes.Equal(got, pkt) {
		t.Fatalf("port a got %x, want %x", got, pkt)
	}
	pkt6 := ipv6UDP(ip62, ip6a, []byte("v6, sealed"))
	send(t, r.peer2, sealAsPeer(t, theirs[vtep2].Send, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv6, pkt6)))
	if got := out(t, r.a); !bytes.Equal(got, pkt6) {
		t.Fatalf("port a got %x, want %x", got, pkt6)
	}
}

// TestSealed_everyFailureCountedNeverDelivered: each way a datagram can
// fail to open is a drop counted by its reason, and nothing reaches a
// port; the inside path drops packets for a peer without keys.
func TestSealed_everyFailureCountedNeverDelivered(t *testing.T) {
	r, theirs := newSealedRig(t)
	pkt := ipv4UDP(ip2, ip1, 2000, 1000, []byte("payload"))
	plain := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, pkt)
	good := sealAsPeer(t, theirs[vtep2].Send, plain)
	tampered := sealAsPeer(t, theirs[vtep2].Send, plain) // a counter of its own
	tampered[len(tampered)-20] ^= 1
	unknown := append([]byte(nil), good...)
	unknown[vxlan.HeaderLen] ^= 0xff // key id
	stale := append([]byte(nil), good...)
	copy(stale[vxlan.HeaderLen:], []byte{0xde, 0xad, 0xbe, 0xef})
	// The datagram itself, first: taken; then again: a replay.
	send(t, r.peer2, good)
	out(t, r.a)
	for _, tc := range []struct {
		name, reason string
		dgram        []byte
		from         *udptest.Conn
	}{
		{"replayed", "seal_replay", good, r.peer2},
		{"tampered", "seal_bad_tag", tampered, r.peer2},
		{"unknown key id", "seal_unknown_key", unknown, r.peer2},
		{"retired key id", "seal_stale_key", stale, r.peer2},
		{"plain on an encrypted network", "seal_mismatch", plain, r.peer2},
		{"from a peer without keys", "seal_unknown_key", good, r.peer3},
		{"from no VTEP of the network", "unknown_vtep", good, r.stranger},
		{"truncated", "malformed", good[:seal.HeaderLen+seal.TagLen-1], r.peer2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.sw.Stats().Drops[tc.reason]
			send(t, tc.from, tc.dgram)
			waitStats(t, r.sw, tc.reason, func(s Stats) bool { return s.Drops[tc.reason] == before+1 })
			select {
			case p := <-r.a.Outbound():
				t.Fatalf("delivered %x", p)
			default:
			}
		})
	}
	t.Run("to a peer without keys", func(t *testing.T) {
		before := r.sw.Stats().Drops["seal_no_key"]
		r.a.Inject(ipv4UDP(ip1, ip3, 1, 2, []byte("for vtep3")))
		waitStats(t, r.sw, "seal_no_key", func(s Stats) bool { return s.Drops["seal_no_key"] == before+1 })
	})
}

// TestSealed_plainNetworkRefusesSealed: a sealed datagram for a network
// that is not encrypted is dropped, not read as plain.
func TestSealed_plainNetworkRefusesSealed(t *testing.T) {
	r := newRig(t)
	_, theirs := sealedKeys(t, vtep2)
	d := sealAsPeer(t, theirs[vtep2].Send, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, []byte("x"))))
	send(t, r.peer2, d)
	waitStats(t, r.sw, "seal_mismatch", func(s Stats) bool { return s.Drops["seal_mismatch"] == 1 })
}

func TestSealed_floodSealsACopyPerPeer(t *testing.T) {
	r := newRig(t)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(r.portA, r.portB)})
	if err != nil {
		t.Fatal(err)
	}
	keys, theirs := sealedKeys(t, vtep2, vtep3)
	r.sw.SetKeys(keys)
	r.sw.SetTable(tbl)
	pkt := ipv4UDP(ip1, netip.MustParseAddr("10.0.9.255"), 1, 2, []byte("to all"))
	r.a.Inject(pkt)
	for _, p := range []struct {
		v    netip.Addr
		conn *udptest.Conn
	}{{vtep2, r.peer2}, {vtep3, r.peer3}} {
		got, _ := recv(t, p.conn)
		f := openDatagram(t, theirs[p.v].Recv, got)
		if !bytes.Equal(f[vxlan.EthernetLen:], pkt) {
			t.Fatalf("VTEP %s: flooded packet changed", p.v)
		}
	}
	if got := out(t, r.b); !bytes.Equal(got, pkt) {
		t.Fatal("local port b got another packet")
	}
}

// TestSealed_mtu: an encrypted network's inner MTU is seal.Overhead
// below the switch's.
func TestSealed_mtu(t *testing.T) {
	r, theirs := newSealedRig(t)
	mtu := r.sw.cfg.MTU - seal.Overhead
	fits := withDF(ipv4UDP(ip1, ip2, 1, 2, make([]byte, mtu-28)))
	r.a.Inject(fits)
	got, _ := recv(t, r.peer2)
	if f := openDatagram(t, theirs[vtep2].Recv, got); !bytes.Equal(f[vxlan.EthernetLen:], fits) {
		t.Fatal("a packet of the inner MTU changed")
	}
	over := withDF(ipv4UDP(ip1, ip2, 1, 2, make([]byte, mtu-27)))
	r.a.Inject(over)
	waitStats(t, r.sw, "too_big", func(s Stats) bool { return s.Drops["too_big"] == 1 })
}

// TestSealed_trainOpenedThenMerged: a train of sealed TCP segments the
// kernel coalesced is opened and leaves as one super-packet, as a plain
// one does; a tampered datagram in it is dropped and splits the run.
func TestSealed_trainOpenedThenMerged(t *testing.T) {
	r, l, c := coalesceRig(t)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(r.portA, r.portB)})
	if err != nil {
		t.Fatal(err)
	}
	keys, theirs := sealedKeys(t, vtep2)
	r.sw.SetKeys(keys)
	r.sw.SetTable(tbl)
	pay := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
	var ds [][]byte
	for i := 0; i < 4; i++ {
		flags, n := byte(0x10), 1000
		if i == 3 {
			flags, n = 0x18, 400
		}
		ds = append(ds, sealAsPeer(t, theirs[vtep2].Send, tcpDatagram(false, uint32(1000+1000*i), flags, pay(i, n))))
	}
	// The rig's underlay does no GRO: the loop gets what a GRO read needs.
	l.segs = make([]int, len(l.views))
	l.segBufs = newBuffers(maxGROSegments, Headroom+MaxSegmentSize)
	load := func(ds ...[]byte) {
		tr := train(len(ds[0]), ds...)
		l.sizes[0] = copy(l.views[0], tr)
		l.segs[0] = len(ds[0])
		l.from[0] = netip.AddrPortFrom(vtep2, 4789)
		l.keys = r.sw.keys.Load() // as process does, which would also flush the tally checkMerged reads
		l.handleCoalesced(r.sw.table.Load(), 0)
	}
	load(ds...)
	want := append(append(append(pay(0, 1000), pay(1, 1000)...), pay(2, 1000)...), pay(3, 400)...)
	checkMerged(t, false, l, c, virtioGSOTCPv4, 1000, 32, tcpChecksumOffset, want)

	// Sent again: every datagram a replay, nothing written.
	c.writes = nil
	before := l.tally.drops[DropSealReplay]
	load(ds...)
	if len(c.writes) != 0 {
		t.Fatalf("replayed train: %d writes", len(c.writes))
	}
	if got := l.tally.drops[DropSealReplay] - before; got != 4 {
		t.Fatalf("replayed train: %d replays counted, want 4", got)
	}

	// A fresh train with its third datagram changed on the way: dropped
	// as such, the first two merged, the last on its own.
	ds = ds[:0]
	for i := 0; i < 4; i++ {
		ds = append(ds, sealAsPeer(t, theirs[vtep2].Send, tcpDatagram(false, uint32(9000+1000*i), 0x10, pay(i, 1000))))
	}
	ds[2][len(ds[2])-1] ^= 0x40
	c.writes = nil
	bad := l.tally.drops[DropSealBadTag]
	load(ds...)
	if got := l.tally.drops[DropSealBadTag] - bad; got != 1 {
		t.Fatalf("%d bad tags counted, want 1", got)
	}
	if len(c.writes) != 1 || !bytes.HasSuffix(c.writes[0], append(pay(0, 1000), pay(1, 1000)...)) {
		t.Fatalf("%d super-packets; want one of the two datagrams before the changed one", len(c.writes))
	}
}

func TestNewTable_encryptedRefusesWhatCannotBeSealed(t *testing.T) {
	base := func() NetworkSpec {
		return NetworkSpec{VNI: testVNI, Encrypted: true, Endpoints: []EndpointSpec{{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2, Peer: true}}}
	}
	for name, tc := range map[string]struct {
		mod  func(*NetworkSpec)
		want string
	}{
		"kernel VTEP endpoint": {func(s *NetworkSpec) { s.Endpoints[0].Peer = false }, "not a vxnet peer"},
		"flood VTEPs":          {func(s *NetworkSpec) { s.FloodVTEPs = []netip.Addr{vtep3} }, "FloodVTEPs"},
	} {
		s := base()
		tc.mod(&s)
		if _, err := NewTable([]NetworkSpec{s}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
	if _, err := NewTable([]NetworkSpec{base()}); err != nil {
		t.Fatalf("a plain encrypted overlay: %v", err)
	}
}

func TestNewKeyring_refusesDuplicateIDs(t *testing.T) {
	_, theirs := sealedKeys(t, vtep2)
	r := theirs[vtep2].Recv
	if _, err := NewKeyring(map[netip.Addr]PeerKeys{vtep2: {Recv: []*seal.RecvKey{r, r}}}); err == nil {
		t.Fatal("two receive keys with one id accepted")
	}
	var k *Keyring
	if k.Peer(vtep2) != nil || k.sendKey(vtep2) != nil {
		t.Fatal("a nil keyring has keys")
	}
}

// TestHotPath_zeroAllocsSealed: sealing on the way out, a sealed flood,
// and opening on the way in allocate nothing.
func TestHotPath_zeroAllocsSealed(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	h := newHotRig(t)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(h.inside.port, h.portB)})
	if err != nil {
		t.Fatal(err)
	}
	keys, theirs := sealedKeys(t, vtep2, vtep3)
	h.sw.SetKeys(keys)
	h.sw.SetTable(tbl)
	toRemote := ipv4UDP(ip1, ip2, 1, 2, make([]byte, 1000))
	toBroadcast := ipv4UDP(ip1, netip.MustParseAddr("10.0.9.255"), 1, 2, make([]byte, 64))
	const runs, batch = 100, 32
	var inbound [][]byte
	for i := 0; i < (runs+1)*batch; i++ {
		inbound = append(inbound, sealAsPeer(t, theirs[vtep2].Send, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, make([]byte, 1000)))))
	}
	next := 0
	for name, tc := range map[string]struct {
		run  func()
		sent func() int
	}{
		"inside sealed to remote": {func() {
			h.loadInside(toRemote, batch)
			h.processInside(batch)
		}, func() int { return h.under.sent }},
		"inside sealed flood": {func() {
			h.loadInside(toBroadcast, batch)
			h.processInside(batch)
		}, func() int { return h.under.sent }},
		"outside opened to port": {func() {
			for i := 0; i < batch; i++ {
				h.outside.sizes[i] = copy(h.outside.views[i], inbound[next])
				h.outside.from[i] = netip.AddrPortFrom(vtep2, vxlan.DefaultPort)
				next++
			}
			h.outside.process(batch)
		}, func() int { return h.devA.written }},
	} {
		t.Run(name, func(t *testing.T) {
			before := tc.sent()
			if allocs := testing.AllocsPerRun(runs, tc.run); allocs != 0 {
				t.Errorf("%v allocations per batch of %d packets, want 0", allocs, batch)
			}
			if tc.sent() == before {
				t.Errorf("the path did nothing: no packet came out")
			}
		})
	}
	if d := h.sw.Stats().Drops; d["seal_replay"]+d["seal_bad_tag"]+d["seal_no_key"] != 0 {
		t.Fatalf("drops: %v", d)
	}
}

// TestSealed_l2tunnel: on an encrypted l2tunnel network a host seals what
// it hairpins to the policy host, and the policy host opens what comes
// in, decides, and seals it again for the next hop with that hop's key.
func TestSealed_l2tunnel(t *testing.T) {
	spec := func(r *rig, policyVTEP netip.Addr, policy *Policy) NetworkSpec {
		return NetworkSpec{
			VNI: testVNI,
			Endpoints: []EndpointSpec{
				{MAC: mac1, Addrs: []netip.Addr{ip1}, Port: r.portA},
				{MAC: mac1b, Addrs: []netip.Addr{ip1b}, Port: r.portB},
				{MAC: mac2, Addrs: []netip.Addr{ip2}, VTEP: vtep2, Peer: true},
				{MAC: mac3, Addrs: []netip.Addr{ip3}, VTEP: vtep3, Peer: true},
			},
			PolicyVTEP: policyVTEP, Policy: policy, Encrypted: true,
		}
	}
	t.Run("to the policy host", func(t *testing.T) {
		r := newRig(t)
		tbl, err := NewTable([]NetworkSpec{spec(r, vtep3, nil)})
		if err != nil {
			t.Fatal(err)
		}
		keys, theirs := sealedKeys(t, vtep3)
		r.sw.SetKeys(keys)
		r.sw.SetTable(tbl)
		pkt := ipv4UDP(ip1, ip1b, 1, 2, []byte("hairpin, sealed"))
		r.a.Inject(pkt)
		got, _ := recv(t, r.peer3)
		f := openDatagram(t, theirs[vtep3].Recv, got)
		if !bytes.Equal(f[vxlan.EthernetLen:], pkt) {
			t.Fatal("the hairpinned packet changed")
		}
	})
	t.Run("the policy host", func(t *testing.T) {
		r := newRig(t)
		tbl, err := NewTable([]NetworkSpec{spec(r, netip.Addr{}, &Policy{Default: true})})
		if err != nil {
			t.Fatal(err)
		}
		keys, theirs := sealedKeys(t, vtep2, vtep3)
		r.sw.SetKeys(keys)
		r.sw.SetTable(tbl)
		onward := frame(testVNI, mac3, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip3, 1, 9, []byte("to host 3, sealed")))
		send(t, r.peer2, sealAsPeer(t, theirs[vtep2].Send, onward))
		got, _ := recv(t, r.peer3)
		f := openDatagram(t, theirs[vtep3].Recv, got)
		if !bytes.Equal(f, onward[vxlan.HeaderLen:]) {
			t.Fatalf("vtep3 opened %x, want the frame as it came %x", f, onward[vxlan.HeaderLen:])
		}
	})
}

// FuzzOutsideSealed: whatever arrives for an encrypted network, alone or
// in a GRO train, never panics; what was not sealed by the peer's key
// never reaches a port; and what was is delivered or counted as a drop.
func FuzzOutsideSealed(f *testing.F) {
	h := newHotRig(f)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(h.inside.port, h.portB)})
	if err != nil {
		f.Fatal(err)
	}
	keys, theirs := sealedKeys(f, vtep2)
	h.sw.SetKeys(keys)
	h.sw.SetTable(tbl)
	h.outside.segs = make([]int, len(h.outside.views))
	h.outside.segBufs = newBuffers(maxGROSegments, Headroom+MaxSegmentSize)
	plain := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, []byte("x")))
	f.Add(byte(0), uint16(0), plain)
	f.Add(byte(1), uint16(0), plain)
	f.Add(byte(3), uint16(60), plain)
	f.Add(byte(2), uint16(40), sealAsPeer(f, theirs[vtep2].Send, plain))
	f.Fuzz(func(t *testing.T, mode byte, seg uint16, in []byte) {
		if len(in) > 9000 {
			return
		}
		sealed := mode&1 == 1
		d := in
		if sealed {
			if len(in) < vxlan.HeaderLen {
				return
			}
			d = sealAsPeer(t, theirs[vtep2].Send, in)
		}
		var dgram []byte
		segSize := 0
		if mode&2 == 2 { // a train: three copies, seg bytes apart (sealed copies each with a counter of its own)
			segSize = len(d)
			if !sealed && seg > 0 {
				segSize = int(seg)
			}
			for i := 0; i < 3; i++ {
				c := d
				if sealed && i > 0 {
					c = sealAsPeer(t, theirs[vtep2].Send, in)
				}
				if len(c) > segSize {
					c = c[:segSize]
				}
				dgram = append(dgram, c...)
				if len(c) < segSize {
					break
				}
			}
		} else {
			dgram = d
		}
		if len(dgram) == 0 || len(dgram) > len(h.outside.views[0]) {
			return
		}
		before := h.sw.Stats()
		aBefore, bBefore := h.devA.written, h.devB.written
		h.outside.sizes[0] = copy(h.outside.views[0], dgram)
		h.outside.segs[0] = segSize
		h.outside.from[0] = netip.AddrPortFrom(vtep2, vxlan.DefaultPort)
		h.outside.process(1)
		after := h.sw.Stats()
		delivered := h.devA.written - aBefore + h.devB.written - bBefore
		if !sealed && delivered > 0 {
			t.Fatalf("delivered %d packets from datagrams no key sealed: %x", delivered, dgram)
		}
		var drops uint64
		for k, v := range after.Drops {
			drops += v - before.Drops[k]
		}
		if delivered == 0 && drops == 0 && after.Coalesced == before.Coalesced {
			t.Fatalf("sealed datagram %x neither delivered nor counted as a drop", dgram)
		}
	})
}

// TestSealed_rotationAtEveryPointOfABurst: a peer switches to its new
// keys after k datagrams of a burst, for every k; while the old keys are
// kept (a rotation's grace), every datagram of the burst opens and
// reaches the port, and none is counted as a drop.
func TestSealed_rotationAtEveryPointOfABurst(t *testing.T) {
	const burst = 24
	h := newHotRig(t)
	tbl, err := NewTable([]NetworkSpec{sealedSpec(h.inside.port, h.portB)})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetTable(tbl)
	// Two sessions of the peer, each with its pair of keys on both sides.
	local := seal.Local{Static: newKeyPair(t), Session: newKeyPair(t)}
	peerStatic := newKeyPair(t)
	var ours, theirs [2]seal.Keys
	for i := range ours {
		peerSession := newKeyPair(t)
		if ours[i], err = seal.Derive(seal.AES256GCM, local, seal.Remote{Static: peerStatic.Public(), Session: peerSession.Public()}); err != nil {
			t.Fatal(err)
		}
		if theirs[i], err = seal.Derive(seal.AES256GCM, seal.Local{Static: peerStatic, Session: peerSession}, seal.Remote{Static: local.Static.Public(), Session: local.Session.Public()}); err != nil {
			t.Fatal(err)
		}
	}
	ring, err := NewKeyring(map[netip.Addr]PeerKeys{vtep2: {Send: ours[1].Send, Recv: []*seal.RecvKey{ours[1].Recv, ours[0].Recv}}})
	if err != nil {
		t.Fatal(err)
	}
	h.sw.SetKeys(ring)
	plain := frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, make([]byte, 200)))
	for k := 0; k <= burst; k++ {
		before := h.sw.Stats()
		written := h.devA.written
		for i := 0; i < burst; i++ {
			key := theirs[1].Send
			if i < k {
				key = theirs[0].Send
			}
			h.outside.sizes[i] = copy(h.outside.views[i], sealAsPeer(t, key, plain))
			h.outside.from[i] = netip.AddrPortFrom(vtep2, vxlan.DefaultPort)
		}
		h.outside.process(burst)
		if got := h.devA.written - written; got != burst {
			t.Errorf("switching after %d datagrams: %d of %d delivered", k, got, burst)
		}
		after := h.sw.Stats()
		for r, v := range after.Drops {
			if v != before.Drops[r] {
				t.Errorf("switching after %d datagrams: %d dropped as %s", k, v-before.Drops[r], r)
			}
		}
	}
}
