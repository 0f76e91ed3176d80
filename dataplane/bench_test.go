package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vxnet/vxnet/dataplane/tun/tuntest"
	"github.com/vxnet/vxnet/dataplane/udp/udptest"
	"github.com/vxnet/vxnet/dataplane/vxlan"
)

var benchSizes = []int{64, 1400}

const benchBatch = 32

// BenchmarkEncap measures the inside path (parse, look up, encapsulate,
// hand to the underlay writer) per packet, in batches of 32.
func BenchmarkEncap(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			h := newHotRig(b)
			pkt := ipv4UDP(ip1, ip2, 1, 2, make([]byte, size-28))
			h.loadInside(pkt, benchBatch)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatch {
				h.processInside(benchBatch)
			}
		})
	}
}

// BenchmarkDecap measures the outside path (decapsulate, check VNI and
// VTEP, look up, hand to the port) per packet, in batches of 32. The tcp
// cases also pay for the check for a partial checksum.
func BenchmarkDecap(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
		pkt  func(size int) []byte
	}{
		{"64", 64, func(n int) []byte { return ipv4UDP(ip2, ip1, 1, 2, make([]byte, n-28)) }},
		{"1400", 1400, func(n int) []byte { return ipv4UDP(ip2, ip1, 1, 2, make([]byte, n-28)) }},
		{"tcp-64", 64, func(n int) []byte { return tcpPacket(make([]byte, n-40)) }},
		{"tcp-1400", 1400, func(n int) []byte { return tcpPacket(make([]byte, n-40)) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHotRig(b)
			pkt := tc.pkt(tc.size)
			h.loadOutside(frame(testVNI, mac1, mac2, vxlan.EtherTypeIPv4, pkt), vtep2, benchBatch)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatch {
				h.outside.process(benchBatch)
			}
		})
	}
}

// BenchmarkTunToTun sends packets from a fake port on one switch to a fake
// port on another, across an in-memory underlay: both paths and the
// goroutines between them. The fakes copy and allocate per packet, so the
// allocations reported here are theirs; this measures the switch's
// pipeline, not a kernel.
func BenchmarkTunToTun(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var n udptest.Network
			src, dst := tuntest.New(64, 4096), tuntest.New(64, 4096)
			benchSwitch(b, n.Conn(vtep1), src, ip1, mac1, vtep2, ip2, mac2)
			sw2 := benchSwitch(b, n.Conn(vtep2), dst, ip2, mac2, vtep1, ip1, mac1)
			pkt := ipv4UDP(ip1, ip2, 1, 2, make([]byte, size-28))
			stop := make(chan struct{})
			defer close(stop)
			go func() { // the receiving container
				for {
					select {
					case <-dst.Outbound():
					case <-stop:
						return
					}
				}
			}()
			arrived := func() uint64 { return sw2.Stats().PortTxPackets + n.Dropped() }
			b.SetBytes(int64(len(pkt)))
			b.ResetTimer()
			for sent := 1; sent <= b.N; sent++ {
				src.Inject(pkt)
				// The in-memory underlay drops when a queue is full, as a
				// real one would; keep the offered load below that.
				if sent%1024 == 0 {
					for arrived()+512 < uint64(sent) {
						runtime.Gosched()
					}
				}
			}
			for arrived() < uint64(b.N) {
				runtime.Gosched()
			}
			b.StopTimer()
			b.ReportMetric(float64(n.Dropped())/float64(b.N), "drops/op")
		})
	}
}

func benchSwitch(b *testing.B, u *udptest.Conn, dev *tuntest.Device, local netip.Addr, lmac vxlan.MAC,
	remote netip.Addr, rip netip.Addr, rmac vxlan.MAC) *Switch {
	sw, err := New(DefaultConfig(), u)
	if err != nil {
		b.Fatal(err)
	}
	p, err := sw.AddPort("p", dev)
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := NewTable([]NetworkSpec{{VNI: testVNI, Endpoints: []EndpointSpec{
		{MAC: lmac, Addrs: []netip.Addr{local}, Port: p},
		{MAC: rmac, Addrs: []netip.Addr{rip}, VTEP: remote},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	sw.SetTable(tbl)
	ctx, cancel := context.WithCancel(context.Background())
	go sw.Run(ctx)
	b.Cleanup(func() { cancel(); sw.Close() })
	return sw
}
