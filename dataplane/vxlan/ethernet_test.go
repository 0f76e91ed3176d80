package vxlan_test

import (
	"bytes"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

func TestPutEthernetGolden(t *testing.T) {
	b := dirty(vxlan.EthernetLen + 1)
	vxlan.PutEthernet(b, vxlan.Broadcast, macSrc, vxlan.EtherTypeARP)
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x02, 0x42, 0x0a, 0x00, 0x09, 0x03,
		0x08, 0x06,
		0xff, // untouched
	}
	if !bytes.Equal(b, want) {
		t.Errorf("PutEthernet = % x, want % x", b, want)
	}
}

func TestParseEthernet(t *testing.T) {
	base := []byte{
		0x33, 0x33, 0x00, 0x00, 0x00, 0x01,
		0x02, 0x42, 0x0a, 0x00, 0x09, 0x03,
		0x86, 0xdd,
	}
	withType := func(hi, lo byte) []byte {
		b := append([]byte{}, base...)
		b[vxlan.EthernetTypeOffset], b[vxlan.EthernetTypeOffset+1] = hi, lo
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want vxlan.Ethernet
		err  error
	}{
		{"ipv6", base, vxlan.Ethernet{
			Dst:  vxlan.MAC{0x33, 0x33, 0, 0, 0, 1},
			Src:  macSrc,
			Type: vxlan.EtherTypeIPv6,
		}, nil},
		{"ipv4 with payload", append(withType(0x08, 0x00), 0x45), vxlan.Ethernet{
			Dst: vxlan.MAC{0x33, 0x33, 0, 0, 0, 1}, Src: macSrc, Type: vxlan.EtherTypeIPv4,
		}, nil},
		{"802.1Q", withType(0x81, 0x00), vxlan.Ethernet{}, vxlan.ErrVLAN},
		{"802.1ad", withType(0x88, 0xa8), vxlan.Ethernet{}, vxlan.ErrVLAN},
	}
	for n := range vxlan.EthernetLen {
		tests = append(tests, struct {
			name string
			in   []byte
			want vxlan.Ethernet
			err  error
		}{"short", base[:n], vxlan.Ethernet{}, vxlan.ErrTooShort})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vxlan.ParseEthernet(tc.in)
			if err != tc.err || got != tc.want {
				t.Errorf("ParseEthernet(% x) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestEthernetRoundTrip(t *testing.T) {
	for _, typ := range []uint16{vxlan.EtherTypeIPv4, vxlan.EtherTypeARP, vxlan.EtherTypeIPv6, 0x0600, 0xffff} {
		b := make([]byte, vxlan.EthernetLen)
		vxlan.PutEthernet(b, macDst, macSrc, typ)
		got, err := vxlan.ParseEthernet(b)
		want := vxlan.Ethernet{Dst: macDst, Src: macSrc, Type: typ}
		if err != nil || got != want {
			t.Errorf("type %#04x: got %+v, %v; want %+v", typ, got, err, want)
		}
	}
}
