package vxlan_test

import (
	"bytes"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

func FuzzDecap(f *testing.F) {
	f.Add(append([]byte{}, golden...))
	f.Add(append(append([]byte{}, golden...), 0x45, 0, 0, 20))
	f.Add([]byte{})
	f.Add(golden[:vxlan.HeaderLen])
	f.Add(golden[:vxlan.EncapLen-1])
	reserved := append([]byte{}, golden...)
	reserved[0], reserved[1], reserved[2], reserved[3], reserved[7] = 0xff, 0xaa, 0x55, 0x01, 0x80
	f.Add(reserved)
	noFlag := append([]byte{}, golden...)
	noFlag[0] = 0xf7
	f.Add(noFlag)
	vlan := append([]byte{}, golden...)
	vlan[vxlan.HeaderLen+vxlan.EthernetTypeOffset] = 0x81
	f.Add(vlan)
	qinq := append([]byte{}, golden...)
	qinq[vxlan.HeaderLen+vxlan.EthernetTypeOffset], qinq[vxlan.HeaderLen+vxlan.EthernetTypeOffset+1] = 0x88, 0xa8
	f.Add(qinq)

	f.Fuzz(func(t *testing.T, data []byte) {
		orig := append([]byte{}, data...)
		fr, err := vxlan.Decap(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("Decap modified its input")
		}
		// The lower-level parsers must not panic either, on any input.
		vni, herr := vxlan.ParseHeader(data)
		var eth vxlan.Ethernet
		var eerr error
		if len(data) >= vxlan.HeaderLen {
			eth, eerr = vxlan.ParseEthernet(data[vxlan.HeaderLen:])
		}

		if err != nil {
			switch err {
			case vxlan.ErrTooShort, vxlan.ErrFlags, vxlan.ErrVLAN:
			default:
				t.Fatalf("Decap returned non-sentinel error %v", err)
			}
			if fr != (vxlan.Frame{}) {
				t.Fatalf("Decap returned %+v with error %v", fr, err)
			}
			if len(data) < vxlan.EncapLen && err != vxlan.ErrTooShort {
				t.Fatalf("len %d: err %v, want ErrTooShort", len(data), err)
			}
			return
		}

		// Success must agree with the component parsers.
		if herr != nil || eerr != nil || fr.VNI != vni || fr.Eth != eth {
			t.Fatalf("Decap %+v disagrees with ParseHeader (%#x, %v) / ParseEthernet (%+v, %v)", fr, vni, herr, eth, eerr)
		}
		if fr.PayloadOffset != vxlan.EncapLen || fr.VNI > vxlan.MaxVNI {
			t.Fatalf("Decap = %+v", fr)
		}

		// Round trip: re-encoding yields the input with reserved bits zeroed.
		want := append([]byte{}, data[:vxlan.EncapLen]...)
		want[vxlan.FlagsOffset] &= vxlan.FlagVNI
		want[1], want[2], want[3] = 0, 0, 0
		want[vxlan.VNIOffset+vxlan.VNILen] = 0
		got := make([]byte, vxlan.EncapLen)
		vxlan.Encap(got, fr.VNI, fr.Eth.Dst, fr.Eth.Src, fr.Eth.Type)
		if !bytes.Equal(got, want) {
			t.Fatalf("round trip:\n got % x\nwant % x", got, want)
		}
		if fr2, err := vxlan.Decap(got); err != nil || fr2 != fr {
			t.Fatalf("Decap(Encap(fr)) = %+v, %v; want %+v", fr2, err, fr)
		}
	})
}
