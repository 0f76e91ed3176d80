package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/vxnet/vxnet/gossip"
)

// BenchmarkGossipConvergence reports, per cluster size and scenario, the
// time for a put to reach every node (p50, p99, max in ms) and the bytes
// each node sends per second. Run with -benchtime 1x.
func BenchmarkGossipConvergence(b *testing.B) {
	// Churn at 200 nodes (20 writers, 400 changes/s) saturates a 2-core
	// machine simulating the whole cluster; quiet runs go to 200.
	for _, n := range []int{10, 50, 100, 200} {
		scenarios := []GossipScenario{{Nodes: n, Profile: gossip.ProfileLAN}}
		if n <= 100 {
			scenarios = append(scenarios, GossipScenario{Nodes: n, Profile: gossip.ProfileLAN, Churn: true, Loss: 0.01})
		}
		for _, sc := range scenarios {
			b.Run(fmt.Sprintf("%s/N=%d", map[bool]string{false: "quiet", true: "churn"}[sc.Churn], n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r, err := RunGossip(context.Background(), sc)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(r.P90.Microseconds())/1000, "p90-ms")
					b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(r.Max.Microseconds())/1000, "max-ms")
					b.ReportMetric(float64(r.Missing), "missing")
					b.ReportMetric(r.BytesPerNodeSec, "B/node/s")
				}
			})
		}
	}
}

// BenchmarkGossipFailover reports how long until every node has withdrawn
// the rows of a node that died (fast profile).
func BenchmarkGossipFailover(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d, err := RunFailover(context.Background(), n, gossip.ProfileFast, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(d.Milliseconds()), "withdrawn-ms")
			}
		})
	}
}
