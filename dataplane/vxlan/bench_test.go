package vxlan_test

import (
	"strconv"
	"testing"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var payloadSizes = []int{64, 1400}

func BenchmarkEncap(b *testing.B) {
	for _, n := range payloadSizes {
		b.Run("payload="+strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, vxlan.EncapLen+n)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			var vni uint32
			for b.Loop() {
				vni++
				vxlan.Encap(buf, vni&vxlan.MaxVNI, macDst, macSrc, vxlan.EtherTypeIPv4)
			}
		})
	}
}

func BenchmarkDecap(b *testing.B) {
	for _, n := range payloadSizes {
		b.Run("payload="+strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, vxlan.EncapLen+n)
			vxlan.Encap(buf, 0x123456, macDst, macSrc, vxlan.EtherTypeIPv4)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				f, err := vxlan.Decap(buf)
				if err != nil || f.VNI != 0x123456 {
					b.Fatal(f, err)
				}
			}
		})
	}
}
