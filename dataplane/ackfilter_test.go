package dataplane

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// ackSpec describes a TCP segment for the ACK filter's tests.
type ackSpec struct {
	v6      bool
	sport   uint16
	ack     uint32
	win     uint16
	flags   byte   // 0 means ACK alone (0x10)
	options []byte // padded to 4 bytes with NOPs
	data    int    // payload bytes
	tos     byte   // IPv4 TOS or IPv6 traffic class (ECN in the low bits)
	ae      bool   // the AccECN AE bit
	badSum  bool   // a TCP checksum off by one
	partial bool   // the TCP checksum as a vxnet peer may leave it: the pseudo-header's
}

// ackTS is a timestamps option behind two NOPs, as Linux sends it.
var ackTS = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}

// ackPacket builds the segment at Headroom in a buffer of its own.
func ackPacket(s ackSpec) []byte {
	opts := append([]byte(nil), s.options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	tl := tcpHeaderLen + len(opts)
	ipl := ipv4HeaderLen
	if s.v6 {
		ipl = ipv6HeaderLen
	}
	pkt := make([]byte, ipl+tl+s.data)
	if s.v6 {
		pkt[0] = 0x60 | s.tos>>4
		pkt[1] = s.tos << 4
		binary.BigEndian.PutUint16(pkt[4:], uint16(tl+s.data))
		pkt[6], pkt[7] = protoTCP, 64
		pkt[8], pkt[23] = 0xfd, 1
		pkt[24], pkt[39] = 0xfd, 2
	} else {
		pkt[0], pkt[1] = 0x45, s.tos
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8], pkt[9] = 64, protoTCP
		copy(pkt[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(0, pkt[:ipv4HeaderLen])))
	}
	t := pkt[ipl:]
	binary.BigEndian.PutUint16(t[0:], s.sport)
	binary.BigEndian.PutUint16(t[2:], 5201)
	binary.BigEndian.PutUint32(t[4:], 1000)
	binary.BigEndian.PutUint32(t[8:], s.ack)
	t[12] = byte(tl/4) << 4
	t[13] = s.flags
	if t[13] == 0 {
		t[13] = 0x10
	}
	if s.ae {
		t[12] |= 1
	}
	binary.BigEndian.PutUint16(t[14:], s.win)
	copy(t[tcpHeaderLen:], opts)
	info, _ := parseIP(pkt)
	pseudo := pseudoHeaderSum(pkt, &info, len(t))
	c := ^fold(sum(pseudo, t))
	if s.partial {
		c = fold(pseudo)
	}
	if s.badSum {
		c++
	}
	binary.BigEndian.PutUint16(t[16:], c)
	return append(make([]byte, Headroom), pkt...)
}

func TestRedundantACKs(t *testing.T) {
	sack := append(append([]byte(nil), ackTS...), 1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 10)
	for _, tc := range []struct {
		name  string
		group []ackSpec
		want  []bool
	}{
		{"a later ACK says more", []ackSpec{{sport: 1, ack: 100, win: 500, options: ackTS}, {sport: 1, ack: 200, win: 500, options: ackTS}}, []bool{true, false}},
		{"three in a row", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 1, ack: 200, win: 9}, {sport: 1, ack: 300, win: 9}}, []bool{true, true, false}},
		{"IPv6", []ackSpec{{v6: true, sport: 1, ack: 100, win: 9}, {v6: true, sport: 1, ack: 200, win: 9}}, []bool{true, false}},
		{"across the sequence wrap", []ackSpec{{sport: 1, ack: 0xfffffff0, win: 9}, {sport: 1, ack: 0x10, win: 9}}, []bool{true, false}},
		{"duplicate ACKs stay", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 1, ack: 100, win: 9}}, []bool{false, false}},
		{"an older number later stays apart", []ackSpec{{sport: 1, ack: 200, win: 9}, {sport: 1, ack: 100, win: 9}}, []bool{false, false}},
		{"a smaller window later", []ackSpec{{sport: 1, ack: 100, win: 500}, {sport: 1, ack: 200, win: 400}}, []bool{false, false}},
		{"SACK blocks tell of losses", []ackSpec{{sport: 1, ack: 100, win: 9, options: sack}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"the earlier carries data", []ackSpec{{sport: 1, ack: 100, win: 9, data: 10}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"the later carries data", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 1, ack: 200, win: 9, data: 10}}, []bool{false, false}},
		{"FIN", []ackSpec{{sport: 1, ack: 100, win: 9, flags: 0x11}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"PSH", []ackSpec{{sport: 1, ack: 100, win: 9, flags: 0x18}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"ECE", []ackSpec{{sport: 1, ack: 100, win: 9, flags: 0x50}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"other flows", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 2, ack: 200, win: 9}, {v6: true, sport: 1, ack: 300, win: 9}}, []bool{false, false, false}},
		{"interleaved flows", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 2, ack: 100, win: 9}, {sport: 1, ack: 200, win: 9}, {sport: 2, ack: 150, win: 9}}, []bool{true, true, false, false}},
		{"the later's checksum is bad", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 1, ack: 200, win: 9, badSum: true}}, []bool{false, false}},
		{"a partial checksum from a vxnet peer", []ackSpec{{sport: 1, ack: 100, win: 9, partial: true}, {sport: 1, ack: 200, win: 9, partial: true}}, []bool{true, false}},
		{"a congestion mark", []ackSpec{{sport: 1, ack: 100, win: 9, tos: 3}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"a congestion mark, IPv6", []ackSpec{{v6: true, sport: 1, ack: 100, win: 9, tos: 3}, {v6: true, sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"ECT is no mark", []ackSpec{{sport: 1, ack: 100, win: 9, tos: 2}, {sport: 1, ack: 200, win: 9}}, []bool{true, false}},
		{"AccECN's AE bit", []ackSpec{{sport: 1, ack: 100, win: 9, ae: true}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
		{"duplicates before one that says more", []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 1, ack: 100, win: 9}, {sport: 1, ack: 200, win: 9}}, []bool{true, true, false}},
		{"an unknown option", []ackSpec{{sport: 1, ack: 100, win: 9, options: []byte{30, 4, 0, 0}}, {sport: 1, ack: 200, win: 9}}, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bufs [][]byte
			for _, s := range tc.group {
				bufs = append(bufs, ackPacket(s))
			}
			skip := make([]bool, len(bufs))
			for i := range skip {
				skip[i] = true // must be reset
			}
			n := redundantACKs(bufs, skip)
			want := 0
			for i := range tc.want {
				if skip[i] != tc.want[i] {
					t.Errorf("packet %d: left out %v, want %v", i, skip[i], tc.want[i])
				}
				if tc.want[i] {
					want++
				}
			}
			if n != want {
				t.Errorf("returned %d, want %d", n, want)
			}
		})
	}
}

// TestRedundantACKs_invariant: over random groups of many flows (more than
// the filter tracks), an ACK left out always has a later pure ACK of its
// flow acknowledging more with a window no smaller, and the last ACK of
// each flow is always kept.
func TestRedundantACKs_invariant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 500; round++ {
		n := 1 + r.IntN(64)
		specs := make([]ackSpec, n)
		bufs := make([][]byte, n)
		for i := range specs {
			s := ackSpec{v6: r.IntN(4) == 0, sport: uint16(r.IntN(12)), ack: uint32(r.IntN(40)), win: uint16(100 + r.IntN(3))}
			if r.IntN(8) == 0 {
				s.data = 1 + r.IntN(100)
			}
			if r.IntN(2) == 0 {
				s.options = ackTS
			}
			s.badSum = r.IntN(10) == 0
			specs[i], bufs[i] = s, ackPacket(s)
		}
		skip := make([]bool, n)
		redundantACKs(bufs, skip)
		same := func(a, b ackSpec) bool { return a.v6 == b.v6 && a.sport == b.sport }
		for i, s := range specs {
			last := true
			for _, l := range specs[i+1:] {
				if same(s, l) {
					last = false
				}
			}
			if skip[i] && last {
				t.Fatalf("round %d: packet %d, its flow's last, left out", round, i)
			}
			if !skip[i] {
				continue
			}
			ok := false
			for _, l := range specs[i+1:] {
				if same(s, l) && l.data == 0 && !l.badSum && int32(l.ack-s.ack) > 0 && l.win >= s.win {
					ok = true
				}
			}
			if !ok || s.data != 0 {
				t.Fatalf("round %d: packet %d (%+v) left out with no later ACK saying more", round, i, s)
			}
		}
	}
}

// countWriter is a superWriter that keeps what it was given.
type countWriter struct{ got [][]byte }

func (w *countWriter) Write(b []byte) (int, error) {
	w.got = append(w.got, append([]byte(nil), b...))
	return len(b), nil
}

// TestPortTx_leavesOutRedundantACKs: a group of pure ACKs for a TUN port
// goes out as its flows' last ACKs, counted as sent and as coalesced.
func TestPortTx_leavesOutRedundantACKs(t *testing.T) {
	w := &countWriter{}
	p := &Port{newSuperOut: func() superWriter { return w }}
	var q portTx
	var tl tally
	for _, s := range []ackSpec{{sport: 1, ack: 100, win: 9}, {sport: 2, ack: 7, win: 9}, {sport: 1, ack: 200, win: 9}, {sport: 1, ack: 300, win: 9}} {
		q.add(p, ackPacket(s))
	}
	q.flush(&tl)
	if len(w.got) != 2 {
		t.Fatalf("%d packets written, want 2", len(w.got))
	}
	for i, want := range []uint32{7, 300} {
		pkt := w.got[i][virtioHdrLen:]
		if got := binary.BigEndian.Uint32(pkt[ipv4HeaderLen+8:]); got != want {
			t.Errorf("packet %d acknowledges %d, want %d", i, got, want)
		}
	}
	if tl.coalesced != 2 || tl.portTx != 4 {
		t.Errorf("coalesced %d, sent %d; want 2 and 4", tl.coalesced, tl.portTx)
	}
}

func FuzzPureACK(f *testing.F) {
	f.Add(ackPacket(ackSpec{sport: 1, ack: 100, win: 9, options: ackTS})[Headroom:])
	f.Add(ackPacket(ackSpec{v6: true, sport: 1, ack: 100, win: 9})[Headroom:])
	f.Add(ackPacket(ackSpec{sport: 1, ack: 100, win: 9, options: []byte{8, 10, 0, 0}})[Headroom:])
	f.Fuzz(func(t *testing.T, pkt []byte) {
		_, _, _, _, ok := pureACK(pkt)
		if !ok {
			return
		}
		info, _ := parseIP(pkt)
		if info.proto != protoTCP || info.length != info.l4+tcpHeaderLenAt(pkt, info.l4) {
			t.Fatalf("pure ACK with %d bytes past its header", info.length-info.l4-tcpHeaderLenAt(pkt, info.l4))
		}
	})
}
