package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// superPacket builds what a TUN device with offloads hands over: a
// virtio-net header and a TCP or UDP packet of payload bytes whose transport
// checksum holds only the pseudo-header sum (CHECKSUM_PARTIAL).
func superPacket(t testing.TB, v6 bool, proto uint8, payload []byte, gsoSize int, flags byte) []byte {
	t.Helper()
	ipLen := ipv4HeaderLen
	if v6 {
		ipLen = ipv6HeaderLen
	}
	l4 := udpHeaderLen
	if proto == protoTCP {
		l4 = tcpHeaderLen + 12 // with a timestamp option
	}
	p := make([]byte, ipLen+l4+len(payload))
	if v6 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[ipv6PayloadLenOffset:], uint16(len(p)-ipv6HeaderLen))
		p[ipv6NextHeaderOffset], p[ipv6HopLimitOffset] = proto, 64
		copy(p[ipv6SrcOffset:], []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
		copy(p[ipv6DstOffset:], []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3})
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[ipv4TotalLenOffset:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[4:], 0xfffe) // the ID wraps while segments count up
		p[6] = 0x40                               // DF
		p[8], p[ipv4ProtocolOffset] = 64, proto
		copy(p[ipv4SrcOffset:], []byte{10, 0, 9, 2, 10, 0, 9, 3})
		binary.BigEndian.PutUint16(p[ipv4ChecksumOffset:], ^fold(sum(0, p[:ipLen])))
	}
	tp := p[ipLen:]
	binary.BigEndian.PutUint16(tp[0:], 40000)
	binary.BigEndian.PutUint16(tp[2:], 5201)
	csumOff := udpChecksumOffset
	if proto == protoTCP {
		binary.BigEndian.PutUint32(tp[4:], 0xffff_fff0) // wraps too
		binary.BigEndian.PutUint32(tp[8:], 77)
		tp[12] = byte(l4/4) << 4
		tp[tcpFlagsOffset] = flags
		tp[20], tp[21], tp[22] = 1, 1, 8 // NOP NOP timestamp
		tp[23] = 10
		csumOff = tcpChecksumOffset
	} else {
		binary.BigEndian.PutUint16(tp[4:], uint16(len(tp)))
	}
	copy(p[ipLen+l4:], payload)
	info, _ := parseIP(p)
	binary.BigEndian.PutUint16(tp[csumOff:], fold(pseudoHeaderSum(p, &info, len(tp))))

	hdr := make([]byte, virtioHdrLen)
	hdr[0] = virtioFlagNeedsCsum
	switch {
	case proto == protoUDP:
		hdr[1] = virtioGSOUDPL4
	case v6:
		hdr[1] = virtioGSOTCPv6
	default:
		hdr[1] = virtioGSOTCPv4
	}
	binary.NativeEndian.PutUint16(hdr[2:], uint16(ipLen+l4))
	binary.NativeEndian.PutUint16(hdr[4:], uint16(gsoSize))
	binary.NativeEndian.PutUint16(hdr[6:], uint16(ipLen))
	binary.NativeEndian.PutUint16(hdr[8:], uint16(csumOff))
	return append(hdr, p...)
}

// readInto places a read (virtio header and packet) as the TUN device
// would: the packet at Headroom of bufs[0].
func readInto(bufs [][]byte, read []byte) int {
	copy(bufs[0][Headroom-virtioHdrLen:], read)
	return len(read)
}

func TestSplitVirtio_segmentsLikeTheKernel(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i*13 + i>>8)
	}
	cases := []struct {
		name  string
		v6    bool
		proto uint8
	}{
		{"TCPv4", false, protoTCP},
		{"TCPv6", true, protoTCP},
		{"UDPv4", false, protoUDP},
		{"UDPv6", true, protoUDP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const gso = 1400
			read := superPacket(t, c.v6, c.proto, payload, gso, 0x18|tcpFlagFIN|tcpFlagCWR) // ACK PSH FIN CWR
			orig := append([]byte(nil), read[virtioHdrLen:]...)
			bufs := newBuffers(8, Headroom+2000)
			bufs[0] = make([]byte, Headroom+len(orig))
			sizes := make([]int, 8)
			n, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := (len(payload) + gso - 1) / gso; n != want {
				t.Fatalf("%d segments, want %d", n, want)
			}
			var got []byte
			for i := 0; i < n; i++ {
				seg := bufs[i][Headroom : Headroom+sizes[i]]
				info, ok := parseIP(seg)
				if !ok || info.length != len(seg) {
					t.Fatalf("segment %d: IP header invalid or length %d != %d", i, info.length, len(seg))
				}
				if !l4Valid(seg) {
					t.Errorf("segment %d: transport checksum invalid", i)
				}
				if !c.v6 {
					if fold(sum(0, seg[:ipv4HeaderLen])) != 0xffff {
						t.Errorf("segment %d: IPv4 header checksum invalid", i)
					}
					if id, want := binary.BigEndian.Uint16(seg[4:]), uint16(0xfffe+i); id != want {
						t.Errorf("segment %d: IP ID %#x, want %#x", i, id, want)
					}
				}
				hdr := len(seg) - min(gso, len(payload)-i*gso)
				tp := seg[info.l4:]
				if c.proto == protoTCP {
					if seq, want := binary.BigEndian.Uint32(tp[4:]), uint32(0xffff_fff0+i*gso); seq != want {
						t.Errorf("segment %d: seq %#x, want %#x", i, seq, want)
					}
					f := tp[tcpFlagsOffset]
					last := i == n-1
					if (f&tcpFlagFIN != 0) != last || (f&tcpFlagPSH != 0) != last {
						t.Errorf("segment %d: flags %#x: FIN and PSH belong to the last segment only", i, f)
					}
					if (f&tcpFlagCWR != 0) != (i == 0) {
						t.Errorf("segment %d: flags %#x: CWR belongs to the first segment only", i, f)
					}
					if !bytes.Equal(tp[20:32], orig[info.l4+20:info.l4+32]) {
						t.Errorf("segment %d: TCP options changed", i)
					}
				} else if l := binary.BigEndian.Uint16(tp[4:]); int(l) != len(tp) {
					t.Errorf("segment %d: UDP length %d, want %d", i, l, len(tp))
				}
				got = append(got, seg[hdr:]...)
			}
			if !bytes.Equal(got, payload) {
				t.Error("the segments' payloads do not add up to the super-packet's")
			}
		})
	}
}

func TestSplitVirtio_plainAndPartial(t *testing.T) {
	bufs := newBuffers(2, Headroom+2000)
	sizes := make([]int, 2)

	// No GSO, checksum complete: handed over as read.
	good := tcpPacket([]byte("hello"))
	read := append(make([]byte, virtioHdrLen), good...)
	n, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil)
	if err != nil || n != 1 || !bytes.Equal(bufs[0][Headroom:Headroom+sizes[0]], good) {
		t.Fatalf("plain packet: n=%d err=%v, or bytes changed", n, err)
	}

	// No GSO, checksum partial (NEEDS_CSUM): completed.
	read = superPacket(t, false, protoUDP, []byte("one small datagram"), 1400, 0)
	read[1] = virtioGSONone
	n, err = splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil)
	if err != nil || n != 1 {
		t.Fatalf("partial packet: n=%d err=%v", n, err)
	}
	if !l4Valid(bufs[0][Headroom : Headroom+sizes[0]]) {
		t.Error("a partial checksum was not completed")
	}
}

func TestSplitVirtio_errors(t *testing.T) {
	payload := make([]byte, 3000)
	mk := func(edit func(r []byte)) []byte {
		r := superPacket(t, false, protoTCP, payload, 1000, 0x10)
		edit(r)
		return r
	}
	cases := []struct {
		name string
		read []byte
		bufs int
		want string
	}{
		{"short", []byte{1, 2, 3}, 4, "shorter than the virtio-net header"},
		{"too many segments", mk(func([]byte) {}), 2, ""},
		{"gso size 0", mk(func(r []byte) { binary.NativeEndian.PutUint16(r[4:], 0) }), 4, "gso_size 0"},
		{"csum_start past end", mk(func(r []byte) { binary.NativeEndian.PutUint16(r[6:], 9000) }), 4, "csum_start 9000"},
		{"csum_start inside IP header", mk(func(r []byte) { binary.NativeEndian.PutUint16(r[6:], 8) }), 4, "csum_start 8"},
		{"IP version", mk(func(r []byte) { r[virtioHdrLen] = 0x65 }), 4, "gso_type 1 does not fit IP version 6"},
		{"TCP data offset", mk(func(r []byte) { r[virtioHdrLen+20+12] = 0x10 }), 4, "TCP data offset 4"},
		{"needs csum past end", append([]byte{virtioFlagNeedsCsum, 0, 0, 0, 0, 0, 50, 0, 6, 0}, make([]byte, 40)...), 4, "csum_start 50"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bufs := newBuffers(c.bufs, Headroom+4000)
			sizes := make([]int, c.bufs)
			_, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, c.read), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if c.want == "" {
				if !errors.Is(err, errTooManySegments) {
					t.Fatalf("error %v, want errTooManySegments", err)
				}
				return
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestSplitVirtio_noAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this without it)")
	}
	payload := make([]byte, 60000)
	read := superPacket(t, false, protoTCP, payload, 1398, 0x10)
	bufs := newBuffers(64, Headroom+MaxSegmentSize)
	sizes := make([]int, 64)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per split, want 0", allocs)
	}
}

// FuzzSplitVirtio feeds arbitrary reads: never a panic, and what comes out
// stays inside the buffers.
func FuzzSplitVirtio(f *testing.F) {
	f.Add(superPacket(f, false, protoTCP, make([]byte, 3000), 1000, 0x19))
	f.Add(superPacket(f, true, protoUDP, make([]byte, 300), 100, 0))
	f.Add([]byte{virtioFlagNeedsCsum, 0, 0, 0, 0, 0, 20, 0, 6, 0, 0x45})
	f.Fuzz(func(t *testing.T, read []byte) {
		if len(read) > 8000 {
			return
		}
		bufs := newBuffers(8, Headroom+8000)
		sizes := make([]int, 8)
		n, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil)
		if err != nil {
			return
		}
		for i := 0; i < n; i++ {
			if sizes[i] < 0 || Headroom+sizes[i] > len(bufs[i]) {
				t.Fatalf("segment %d: size %d outside its buffer", i, sizes[i])
			}
		}
	})
}

func BenchmarkSplitVirtio64K(b *testing.B) {
	read := superPacket(b, false, protoTCP, make([]byte, 64000), 1398, 0x10)
	bufs := newBuffers(64, Headroom+MaxSegmentSize)
	sizes := make([]int, 64)
	b.SetBytes(64000)
	for b.Loop() {
		if _, err := splitVirtio(bufs, sizes, Headroom, readInto(bufs, read), nil); err != nil {
			b.Fatal(err)
		}
	}
}
