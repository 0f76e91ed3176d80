package vxlan_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var (
	macDst = vxlan.MAC{0x02, 0x42, 0x0a, 0x00, 0x09, 0x02}
	macSrc = vxlan.MAC{0x02, 0x42, 0x0a, 0x00, 0x09, 0x03}
)

// golden is Encap(vni=0x123456, dst=macDst, src=macSrc, EtherTypeIPv4),
// written out by hand.
var golden = []byte{
	0x08, 0x00, 0x00, 0x00, // flags: I; reserved
	0x12, 0x34, 0x56, 0x00, // VNI 0x123456; reserved
	0x02, 0x42, 0x0a, 0x00, 0x09, 0x02, // dst
	0x02, 0x42, 0x0a, 0x00, 0x09, 0x03, // src
	0x08, 0x00, // IPv4
}

func dirty(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }

func TestConstants(t *testing.T) {
	if vxlan.EncapLen != 22 || vxlan.HeaderLen != 8 || vxlan.EthernetLen != 14 {
		t.Fatalf("lengths: header %d ethernet %d encap %d", vxlan.HeaderLen, vxlan.EthernetLen, vxlan.EncapLen)
	}
	if vxlan.MaxVNI != 16777215 || vxlan.DefaultPort != 4789 || vxlan.FlagVNI != 0x08 {
		t.Fatal("MaxVNI, DefaultPort or FlagVNI wrong")
	}
}

func TestPutHeaderGolden(t *testing.T) {
	tests := []struct {
		name string
		vni  uint32
		want []byte
	}{
		{"one", 1, []byte{0x08, 0, 0, 0, 0x00, 0x00, 0x01, 0}},
		{"mid", 0x123456, []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0}},
		{"max", vxlan.MaxVNI, []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}},
		{"zero", 0, []byte{0x08, 0, 0, 0, 0, 0, 0, 0}},
		// Bits above 24 are discarded and never leak into the reserved byte.
		{"masked", 0xab_cdef12, []byte{0x08, 0, 0, 0, 0xcd, 0xef, 0x12, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := dirty(vxlan.HeaderLen + 2) // reserved bits must be cleared
			vxlan.PutHeader(b, tc.vni)
			if !bytes.Equal(b[:vxlan.HeaderLen], tc.want) {
				t.Errorf("PutHeader(%#x) = % x, want % x", tc.vni, b[:vxlan.HeaderLen], tc.want)
			}
			if b[vxlan.HeaderLen] != 0xff || b[vxlan.HeaderLen+1] != 0xff {
				t.Errorf("PutHeader wrote past HeaderLen: % x", b)
			}
		})
	}
}

func TestEncapGolden(t *testing.T) {
	payload := []byte{0x45, 0x00, 0xde, 0xad}
	b := dirty(vxlan.EncapLen)
	b = append(b, payload...)
	vxlan.Encap(b, 0x123456, macDst, macSrc, vxlan.EtherTypeIPv4)
	if !bytes.Equal(b[:vxlan.EncapLen], golden) {
		t.Errorf("Encap = % x\nwant   % x", b[:vxlan.EncapLen], golden)
	}
	if !bytes.Equal(b[vxlan.EncapLen:], payload) {
		t.Errorf("Encap modified payload: % x", b[vxlan.EncapLen:])
	}
}

func TestDecapGolden(t *testing.T) {
	b := append(append([]byte{}, golden...), 0x45, 0x00)
	f, err := vxlan.Decap(b)
	if err != nil {
		t.Fatal(err)
	}
	want := vxlan.Frame{
		VNI:           0x123456,
		Eth:           vxlan.Ethernet{Dst: macDst, Src: macSrc, Type: vxlan.EtherTypeIPv4},
		PayloadOffset: vxlan.EncapLen,
	}
	if f != want {
		t.Errorf("Decap = %+v, want %+v", f, want)
	}
	if got := b[f.PayloadOffset:]; !bytes.Equal(got, []byte{0x45, 0x00}) {
		t.Errorf("payload = % x", got)
	}
}

func TestParseHeader(t *testing.T) {
	type result struct {
		vni uint32
		err error
	}
	tests := []struct {
		name string
		in   []byte
		want result
	}{
		{"valid", []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0}, result{0x123456, nil}},
		{"vni zero accepted", []byte{0x08, 0, 0, 0, 0, 0, 0, 0}, result{0, nil}},
		{"longer buffer", []byte{0x08, 0, 0, 0, 0, 0, 7, 0, 0xaa}, result{7, nil}},
		{"no flags", []byte{0x00, 0, 0, 0, 0x12, 0x34, 0x56, 0}, result{0, vxlan.ErrFlags}},
		{"all flags but I", []byte{0xf7, 0, 0, 0, 0x12, 0x34, 0x56, 0}, result{0, vxlan.ErrFlags}},
		{"reserved flag bits ignored", []byte{0xff, 0, 0, 0, 0x12, 0x34, 0x56, 0}, result{0x123456, nil}},
		{"reserved bytes ignored", []byte{0x08, 0xff, 0xff, 0xff, 0x12, 0x34, 0x56, 0xff}, result{0x123456, nil}},
		{"gbp extension ignored", []byte{0x88, 0xc0, 0x12, 0x34, 0x00, 0x00, 0x2a, 0}, result{42, nil}},
	}
	for n := range vxlan.HeaderLen {
		tests = append(tests, struct {
			name string
			in   []byte
			want result
		}{"short " + string(rune('0'+n)), golden[:n], result{0, vxlan.ErrTooShort}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vni, err := vxlan.ParseHeader(tc.in)
			if got := (result{vni, err}); got != tc.want {
				t.Errorf("ParseHeader(% x) = %#x, %v; want %#x, %v", tc.in, vni, err, tc.want.vni, tc.want.err)
			}
		})
	}
}

func TestDecapErrors(t *testing.T) {
	withType := func(hi, lo byte) []byte {
		b := append([]byte{}, golden...)
		b[vxlan.HeaderLen+vxlan.EthernetTypeOffset] = hi
		b[vxlan.HeaderLen+vxlan.EthernetTypeOffset+1] = lo
		return b
	}
	withFlags := func(f byte) []byte {
		b := append([]byte{}, golden...)
		b[vxlan.FlagsOffset] = f
		return b
	}
	tests := []struct {
		name string
		in   []byte
		err  error
	}{
		{"nil", nil, vxlan.ErrTooShort},
		{"missing I flag", withFlags(0x00), vxlan.ErrFlags},
		{"other flags only", withFlags(0xf7), vxlan.ErrFlags},
		{"reserved flags set", withFlags(0xff), nil},
		{"802.1Q", withType(0x81, 0x00), vxlan.ErrVLAN},
		{"802.1ad", withType(0x88, 0xa8), vxlan.ErrVLAN},
		{"ipv6", withType(0x86, 0xdd), nil},
		{"arp", withType(0x08, 0x06), nil},
		{"exact length", golden, nil},
	}
	// Every truncation of a valid datagram, including ones that hold a
	// complete VXLAN header but a partial Ethernet header.
	for n := range vxlan.EncapLen {
		tests = append(tests, struct {
			name string
			in   []byte
			err  error
		}{"short", golden[:n], vxlan.ErrTooShort})
	}
	// Short datagrams are ErrTooShort even when the flags are also bad.
	tests = append(tests, struct {
		name string
		in   []byte
		err  error
	}{"short with bad flags", withFlags(0)[:vxlan.HeaderLen+1], vxlan.ErrTooShort})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := vxlan.Decap(tc.in)
			if err != tc.err { // sentinels are never wrapped
				t.Fatalf("Decap(% x) err = %v, want %v", tc.in, err, tc.err)
			}
			if err != nil && f != (vxlan.Frame{}) {
				t.Errorf("Decap returned non-zero Frame %+v with error", f)
			}
			if err == nil && f.PayloadOffset != vxlan.EncapLen {
				t.Errorf("PayloadOffset = %d", f.PayloadOffset)
			}
		})
	}
}

func TestDecapReservedBitsIgnored(t *testing.T) {
	b := append([]byte{}, golden...)
	b[0] = 0xff
	b[1], b[2], b[3], b[7] = 0xff, 0xff, 0xff, 0xff
	f, err := vxlan.Decap(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.VNI != 0x123456 {
		t.Errorf("VNI = %#x, reserved byte leaked", f.VNI)
	}
}

func TestEncodersPanicOnShortBuffer(t *testing.T) {
	tests := []struct {
		name string
		n    int
		fn   func([]byte)
	}{
		{"PutHeader", vxlan.HeaderLen - 1, func(b []byte) { vxlan.PutHeader(b, 1) }},
		{"PutEthernet", vxlan.EthernetLen - 1, func(b []byte) { vxlan.PutEthernet(b, macDst, macSrc, vxlan.EtherTypeIPv4) }},
		{"Encap", vxlan.EncapLen - 1, func(b []byte) { vxlan.Encap(b, 1, macDst, macSrc, vxlan.EtherTypeIPv4) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, tc.n)
			defer func() {
				if recover() == nil {
					t.Errorf("%s on %d bytes did not panic", tc.name, tc.n)
				}
				if !bytes.Equal(b, make([]byte, tc.n)) {
					t.Errorf("%s wrote % x before panicking", tc.name, b)
				}
			}()
			tc.fn(b)
		})
	}
}

func TestValidVNI(t *testing.T) {
	tests := []struct {
		vni uint32
		msg string // "" means valid
	}{
		{0, "vxlan: vni 0 out of range 1-16777215"},
		{1, ""},
		{4096, ""},
		{vxlan.MaxVNI, ""},
		{vxlan.MaxVNI + 1, "vxlan: vni 16777216 out of range 1-16777215"},
		{math.MaxUint32, "vxlan: vni 4294967295 out of range 1-16777215"},
	}
	for _, tc := range tests {
		err := vxlan.ValidVNI(tc.vni)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("ValidVNI(%d) = %v, want nil", tc.vni, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.msg {
			t.Errorf("ValidVNI(%d) = %v, want %q", tc.vni, err, tc.msg)
			continue
		}
		var ve *vxlan.VNIError
		if !errors.As(err, &ve) || ve.VNI != tc.vni {
			t.Errorf("ValidVNI(%d): errors.As *VNIError failed: %#v", tc.vni, err)
		}
		if !errors.Is(err, vxlan.ErrVNIRange) {
			t.Errorf("ValidVNI(%d): not errors.Is ErrVNIRange", tc.vni)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, err := range []error{vxlan.ErrTooShort, vxlan.ErrFlags, vxlan.ErrVLAN, vxlan.ErrVNIRange, vxlan.ErrInvalidMAC} {
		msg := err.Error()
		if !strings.HasPrefix(msg, "vxlan: ") || msg != strings.ToLower(msg) {
			t.Errorf("error message %q: want lower-case with vxlan: prefix", msg)
		}
	}
	if vxlan.ErrTooShort.Error() != "vxlan: datagram too short" {
		t.Errorf("ErrTooShort = %q", vxlan.ErrTooShort)
	}
}

var (
	sinkFrame vxlan.Frame
	sinkEth   vxlan.Ethernet
	sinkVNI   uint32
	sinkErr   error
	sinkBytes []byte
)

func TestZeroAllocs(t *testing.T) {
	buf := make([]byte, vxlan.EncapLen+64)
	vxlan.Encap(buf, 42, macDst, macSrc, vxlan.EtherTypeIPv4)
	vlan := append([]byte{}, buf...)
	vlan[vxlan.HeaderLen+vxlan.EthernetTypeOffset] = 0x81
	text := make([]byte, 0, 32)
	tests := []struct {
		name string
		fn   func()
	}{
		{"Encap", func() { vxlan.Encap(buf, 42, macDst, macSrc, vxlan.EtherTypeIPv4) }},
		{"PutHeader", func() { vxlan.PutHeader(buf, 42) }},
		{"PutEthernet", func() { vxlan.PutEthernet(buf[vxlan.HeaderLen:], macDst, macSrc, vxlan.EtherTypeIPv4) }},
		{"Decap", func() { sinkFrame, sinkErr = vxlan.Decap(buf) }},
		{"Decap short", func() { sinkFrame, sinkErr = vxlan.Decap(buf[:5]) }},
		{"Decap vlan", func() { sinkFrame, sinkErr = vxlan.Decap(vlan) }},
		{"ParseHeader", func() { sinkVNI, sinkErr = vxlan.ParseHeader(buf) }},
		{"ParseEthernet", func() { sinkEth, sinkErr = vxlan.ParseEthernet(buf[vxlan.HeaderLen:]) }},
		{"MAC.AppendText", func() { sinkBytes, sinkErr = macDst.AppendText(text[:0]) }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.name, n)
		}
	}
	if f, err := vxlan.Decap(buf); err != nil || f.VNI != 42 {
		t.Fatalf("sanity: Decap = %+v, %v", f, err)
	}
}

// TestSegmentsPerTrain: every segment's datagram, seal included, fits
// one train, and one more would not.
func TestSegmentsPerTrain(t *testing.T) {
	for _, c := range []struct{ mtu, want int }{{1450, 43}, {1422, 44}, {1400, 44}, {9000, 7}, {65535, 1}, {0, 1}, {-5, 1}} {
		got := vxlan.SegmentsPerTrain(c.mtu)
		if got != c.want {
			t.Errorf("SegmentsPerTrain(%d) = %d, want %d", c.mtu, got, c.want)
		}
		if c.mtu > 0 && c.mtu < 60000 && (got*(c.mtu+vxlan.EncapLen+28) > vxlan.TrainBytes || (got+1)*(c.mtu+vxlan.EncapLen+28) <= vxlan.TrainBytes) {
			t.Errorf("SegmentsPerTrain(%d) = %d is not the most that fit %d bytes", c.mtu, got, vxlan.TrainBytes)
		}
	}
}
