package dataplane

import (
	"encoding/binary"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// tcpPacket builds an IPv4/TCP packet with a correct checksum.
func tcpPacket(payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8], p[9] = 64, protoTCP
	copy(p[12:], []byte{10, 0, 9, 3, 10, 0, 9, 2})
	binary.BigEndian.PutUint16(p[20:], 5201)
	binary.BigEndian.PutUint16(p[22:], 40000)
	p[32] = 5 << 4
	copy(p[40:], payload)
	info, _ := parseIP(p)
	binary.BigEndian.PutUint16(p[36:], ^fold(sum(pseudoHeaderSum(p, &info, len(p)-20), p[20:])))
	return p
}

func l4Valid(p []byte) bool {
	info, _ := parseIP(p)
	return fold(sum(pseudoHeaderSum(p, &info, info.length-info.l4), p[info.l4:info.length])) == 0xffff
}

func TestCompleteChecksum(t *testing.T) {
	good := tcpPacket([]byte("some payload bytes"))
	if !l4Valid(good) {
		t.Fatal("test packet invalid")
	}
	info, _ := parseIP(good)

	partial := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(partial[36:], fold(pseudoHeaderSum(partial, &info, len(partial)-20)))
	completeChecksum(partial, &info)
	if !l4Valid(partial) {
		t.Error("a partial checksum (pseudo-header only) was not completed")
	}

	corrupt := append([]byte(nil), good...)
	corrupt[45] ^= 0xff
	completeChecksum(corrupt, &info)
	if l4Valid(corrupt) {
		t.Error("a corrupted packet got a valid checksum: corruption must stay visible")
	}

	again := append([]byte(nil), good...)
	completeChecksum(again, &info)
	if string(again) != string(good) {
		t.Error("a valid checksum was changed")
	}
}

func TestSwitch_outside_completesPartialChecksum(t *testing.T) {
	r := newRig(t)
	pkt := tcpPacket(make([]byte, 100))
	info, _ := parseIP(pkt)
	binary.BigEndian.PutUint16(pkt[36:], fold(pseudoHeaderSum(pkt, &info, len(pkt)-20)))
	send(t, r.peer2, frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, pkt))
	if got := out(t, r.a); !l4Valid(got) {
		t.Errorf("packet reached the port with an incomplete checksum")
	}
}

// FuzzOutside feeds arbitrary datagrams from a known VTEP through the
// outside path: it must never panic, and every datagram is either
// forwarded, answered, taken in to learn from (NeighborIn) or counted as
// a drop.
func FuzzOutside(f *testing.F) {
	f.Add(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, ipv4UDP(ip2, ip1, 1, 2, []byte("x"))))
	f.Add(frame(testVNI, vxlan.Broadcast, mac2, vxlan.EtherTypeARP, arpRequest(mac2, ip2, ip1)))
	f.Add(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv6, ipv6UDP(ip62, ip6a, nil)))
	f.Add(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, tcpPacket([]byte("y"))))
	f.Add([]byte{8, 0, 0, 0, 0, 0x10, 0x01, 0})
	h := newHotRig(f)
	f.Fuzz(func(t *testing.T, dgram []byte) {
		if len(dgram) > len(h.outside.views[0]) {
			return
		}
		before := h.sw.Stats()
		sentBefore, aBefore, bBefore := h.under.sent, h.devA.written, h.devB.written
		h.loadOutside(dgram, vtep2, 1)
		h.outside.process(1)
		after := h.sw.Stats()
		var drops uint64
		for k, v := range after.Drops {
			drops += v - before.Drops[k]
		}
		moved := h.under.sent - sentBefore + h.devA.written - aBefore + h.devB.written - bBefore
		learnt := after.NeighborIn - before.NeighborIn
		if drops == 0 && moved == 0 && learnt == 0 {
			t.Fatalf("datagram %x neither forwarded, learnt from nor counted as a drop", dgram)
		}
	})
}

// sumRef is RFC 1071's loop, word by word: the reference for sum.
func sumRef(acc uint64, b []byte) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

func TestSum_matchesReference(t *testing.T) {
	b := make([]byte, 300)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	all := make([]byte, 300)
	for i := range all {
		all[i] = 0xff
	}
	for _, buf := range [][]byte{b, all} {
		for n := 0; n <= len(buf); n++ {
			for _, acc := range []uint64{0, 0xffff, 0x1_2345} {
				if got, want := fold(sum(acc, buf[:n])), fold(sumRef(acc, buf[:n])); got != want {
					t.Fatalf("len %d acc %#x: sum folds to %#04x, reference %#04x", n, acc, got, want)
				}
			}
		}
	}
}

func FuzzSum(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff}, uint64(0))
	f.Add([]byte("an odd number of bytes"), uint64(0xfffe))
	f.Fuzz(func(t *testing.T, b []byte, acc uint64) {
		acc &= 0xffff_ffff // callers pass sums of headers, far below overflow
		if got, want := fold(sum(acc, b)), fold(sumRef(acc, b)); got != want {
			t.Fatalf("sum folds to %#04x, reference %#04x", got, want)
		}
	})
}

func BenchmarkSum64K(b *testing.B) {
	buf := make([]byte, 65000)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sum(0, buf)
	}
}
