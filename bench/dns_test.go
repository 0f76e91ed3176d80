package bench

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	DNSChildMain() // the vxnet DNS server child of RunDNS, when asked
	os.Exit(m.Run())
}

func needDNSTools(tb testing.TB) {
	tb.Helper()
	for _, tool := range []string{"dnsperf", "dnsmasq", "taskset", "dig"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not found: run `make deps` (installs dnsperf, dnsmasq, dnsutils)", tool)
		}
	}
}

// TestRunDNS_brief runs both servers for a second each: the harness works.
func TestRunDNS_brief(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dnsperf and dnsmasq")
	}
	needDNSTools(t)
	r, err := RunDNS(context.Background(), DNSConfig{Names: 100, Duration: time.Second, FixedQPS: 2000, FixedFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	for _, s := range r.Servers {
		if s.QPS == 0 || s.P99 == 0 || s.CPUus == 0 {
			t.Errorf("%s: nothing measured: %+v", s.Server, s)
		}
	}
}

// BenchmarkDNS reports qps on one core for vxnet and dnsmasq side by side
// (dnsperf, 1000 names) and the latency at 20k qps. Run with -benchtime 1x.
func BenchmarkDNS(b *testing.B) {
	needDNSTools(b)
	for i := 0; i < b.N; i++ {
		r, err := RunDNS(context.Background(), DNSConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("\n%s", r)
		for _, s := range r.Servers {
			p := s.Server + "-"
			b.ReportMetric(s.QPS, p+"qps")
			b.ReportMetric(s.PerCore, p+"qps/core")
			b.ReportMetric(s.CPUus, p+"cpu-µs/q")
			b.ReportMetric(float64(s.P50.Microseconds()), p+"p50-µs")
			b.ReportMetric(float64(s.P99.Microseconds()), p+"p99-µs")
		}
	}
}
