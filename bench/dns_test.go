package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain answers RunDNS's command for its DNS server: in the tests,
// os.Executable is this test binary, not vxnet.
func TestMain(m *testing.M) {
	if args := os.Args[1:]; len(args) >= len(dnsChildCommand) && slices.Equal(args[:len(dnsChildCommand)], dnsChildCommand) {
		if err := ServeDNSChild(args[len(dnsChildCommand):], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench dns-child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
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
	r, err := RunDNS(context.Background(), DNSConfig{Names: 100, Duration: time.Second, FixedQPS: 2000, FixedFor: time.Second, Reps: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	for _, s := range r.Servers {
		if s.QPS == 0 || s.P99 == 0 || s.CPUus == 0 || len(s.Runs) != 2 {
			t.Errorf("%s: nothing measured: %+v", s.Server, s)
		}
		if s.P99Min > s.P99 || s.P99 > s.P99Max {
			t.Errorf("%s: p99 %v outside its range %v..%v", s.Server, s.P99, s.P99Min, s.P99Max)
		}
	}
}

var (
	dnsProcs = flag.Int("dns.procs", 0, "BenchmarkDNS: GOMAXPROCS of vxnet's server (DNSConfig.ServerProcs)")
	dnsReps  = flag.Int("dns.reps", 0, "BenchmarkDNS: latency runs per server (DNSConfig.Reps)")
)

// BenchmarkDNS reports qps on one core for vxnet and dnsmasq side by side
// (dnsperf, 1000 names) and the latency at 20k qps: the median of five
// runs per server, alternating servers, and the worst p99. Run with
// -benchtime 1x, on a machine otherwise idle: the quiet-p99 metric counts
// only the runs during which other tasks left both cores alone.
func BenchmarkDNS(b *testing.B) {
	needDNSTools(b)
	for i := 0; i < b.N; i++ {
		r, err := RunDNS(context.Background(), DNSConfig{ServerProcs: *dnsProcs, Reps: *dnsReps})
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
			b.ReportMetric(float64(s.P99Max.Microseconds()), p+"p99max-µs")
			if s.QuietRuns > 0 {
				b.ReportMetric(float64(s.P99Quiet.Microseconds()), p+"quiet-p99-µs")
			}
		}
	}
}

// TestParseDnsperf_perQuery reads a summary and -v lines, and takes the
// percentiles from the latter.
func TestParseDnsperf_perQuery(t *testing.T) {
	var out strings.Builder
	for i := 100; i >= 1; i-- { // 1..100 µs, out of order
		fmt.Fprintf(&out, "> NOERROR host%04d A 0.%06d\n", i, i)
	}
	out.WriteString("  Queries sent:         100\n  Queries completed:    100 (100.00%)\n  Queries lost:         0 (0.00%)\n" +
		"  Run time (s):         1.000374\n  Queries per second:   99.96\n")
	st, err := parseDnsperf(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if st.qps != 99.96 || st.completed != 100 || st.elapsed != 1.000374 || len(st.lat) != 100 {
		t.Errorf("parsed %+v", st)
	}
	if p50, p99 := st.pct(0.5), st.pct(0.99); p50 != 51*time.Microsecond || p99 != 100*time.Microsecond {
		t.Errorf("p50 %v p99 %v, want 51µs 100µs", p50, p99)
	}
}

// TestDNSTarget_result_median takes the median of the runs, not the mean,
// and of the quiet ones apart.
func TestDNSTarget_result_median(t *testing.T) {
	ms := time.Millisecond
	tg := &dnsTarget{name: "x", r: DNSServerResult{Runs: []DNSLatencyRun{
		{P50: 1, P99: 5 * ms, OtherServerCPU: 0.5}, {P50: 3, P99: ms / 2}, {P50: 2, P99: ms, OtherClientCPU: 0.01}}}}
	r := tg.result()
	if r.P50 != 2 || r.P99 != ms || r.P99Min != ms/2 || r.P99Max != 5*ms {
		t.Errorf("got p50 %v p99 %v range %v..%v", r.P50, r.P99, r.P99Min, r.P99Max)
	}
	if r.QuietRuns != 2 || r.P99Quiet != ms {
		t.Errorf("quiet: %d runs, p99 %v; want 2, 1ms", r.QuietRuns, r.P99Quiet)
	}
}
