package bench

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// iperf3 3.12 -J output, cut to what the parsers read (and a little more).
const (
	iperfTCPSample = `{"start": {"version": "iperf 3.12"}, "end": {
 "sum_sent": {"start": 0, "end": 2.000675, "seconds": 2.000675, "bytes": 1484390400, "bits_per_second": 5935558349.057193, "retransmits": 100, "sender": true},
 "sum_received": {"start": 0, "end": 2.003653, "seconds": 2.003653, "bytes": 1483079680, "bits_per_second": 5921503094.597717, "sender": true}}}`
	iperfUDPSample = `{"end": {
 "sum": {"seconds": 2.000812, "bytes": 9773440, "bits_per_second": 39080121.03775783, "jitter_ms": 0.25, "lost_packets": 20846, "packets": 152710, "lost_percent": 13.65, "sender": true},
 "sum_sent": {"seconds": 2.000698, "bytes": 9773440, "bits_per_second": 39080121.03775783, "lost_packets": 0, "packets": 152710, "sender": true},
 "sum_received": {"seconds": 2.000812, "bytes": 8439296, "bits_per_second": 33743484.14543696, "lost_packets": 20846, "packets": 152710, "sender": false}}}`
	iperfUDPOldSample = `{"end": {"sum": {"seconds": 2, "packets": 1000, "lost_packets": 100}}}`
	iperfErrorSample  = `{"start": {"connected": [], "version": "iperf 3.12"}, "intervals": [], "end": {},
 "error": "unable to connect to server: Network is unreachable"}`
)

func TestParseIperfTCP_receiverSide(t *testing.T) {
	bps, err := parseIperfTCP([]byte(iperfTCPSample))
	if err != nil {
		t.Fatal(err)
	}
	if bps != 5921503094.597717 {
		t.Errorf("got %v bit/s, want the receiver's 5921503094.597717", bps)
	}
}

func TestParseIperf_errors(t *testing.T) {
	for name, tc := range map[string]struct {
		out  string
		udp  bool
		want string
	}{
		"iperf3 error":         {iperfErrorSample, false, "Network is unreachable"},
		"iperf3 error, udp":    {iperfErrorSample, true, "Network is unreachable"},
		"not json":             {"iperf3: error - the server is busy", false, "-J output"},
		"no sum_received":      {`{"end": {"sum_sent": {"seconds": 1, "bits_per_second": 1}}}`, false, "no end.sum_received"},
		"udp without packets":  {`{"end": {"sum": {"seconds": 1}}}`, true, "with packets"},
		"udp without any sums": {`{"end": {}}`, true, "no end.sum_received"},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			if tc.udp {
				_, err = parseIperfUDP([]byte(tc.out))
			} else {
				_, err = parseIperfTCP([]byte(tc.out))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func TestParseIperfUDP_receivedAndSent(t *testing.T) {
	for name, tc := range map[string]struct {
		out                 string
		recv, sent, seconds float64
	}{
		"3.12 with sum_received": {iperfUDPSample, (152710 - 20846) / 2.000812, 152710 / 2.000698, 2.000812},
		"only end.sum":           {iperfUDPOldSample, 450, 500, 2},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := parseIperfUDP([]byte(tc.out))
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(u.received-tc.recv) > 1e-6 || math.Abs(u.sent-tc.sent) > 1e-6 || u.seconds != tc.seconds {
				t.Errorf("got %v received, %v sent per second over %v s; want %v, %v, %v", u.received, u.sent, u.seconds, tc.recv, tc.sent, tc.seconds)
			}
		})
	}
}

// snmpSample is /proc/net/snmp's UDP part (Linux 6.x), UdpLite after it.
const snmpSample = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1000
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 711577 2 507314 0 507314 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 5 0 0 0 9 0 0 0 0
`

func TestParseSNMPUDP(t *testing.T) {
	c, err := parseSNMPUDP(snmpSample)
	if err != nil {
		t.Fatal(err)
	}
	if c != (udpCounters{inDatagrams: 711577, rcvbufErrors: 507314}) {
		t.Errorf("got %+v, want Udp's InDatagrams 711577 and RcvbufErrors 507314 (not UdpLite's)", c)
	}
	later := udpCounters{inDatagrams: 711677, rcvbufErrors: 507324}
	if got, ok := c.delivered(later); got != 110 || !ok {
		t.Errorf("delivered %d, %v, want 100 kept + 10 dropped", got, ok)
	}
	if got, ok := later.delivered(c); ok {
		t.Errorf("counters that went back: delivered %d, want none", got)
	}
	for name, tc := range map[string]struct{ text, want string }{
		"empty":          {"", "no Udp names and values"},
		"names only":     {"Udp: InDatagrams RcvbufErrors\n", "no Udp names and values"},
		"short values":   {"Udp: InDatagrams RcvbufErrors\nUdp: 1\n", "2 names and 1 values"},
		"not a number":   {"Udp: InDatagrams RcvbufErrors\nUdp: 1 x\n", `RcvbufErrors "x"`},
		"negative":       {"Udp: InDatagrams RcvbufErrors\nUdp: -1 0\n", `InDatagrams "-1"`},
		"no RcvbufError": {"Udp: InDatagrams NoPorts\nUdp: 1 2\n", "no InDatagrams or no RcvbufErrors"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSNMPUDP(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func FuzzParseSNMPUDP(f *testing.F) {
	f.Add(snmpSample)
	f.Add("Udp: InDatagrams RcvbufErrors\nUdp: 1 x\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parseSNMPUDP(text)
		if err != nil {
			if c != (udpCounters{}) {
				t.Errorf("error %v with counters %+v", err, c)
			}
			return
		}
		if !strings.Contains(text, "InDatagrams") || !strings.Contains(text, "RcvbufErrors") {
			t.Errorf("counters %+v from text without both names", c)
		}
	})
}

// pingSample is iputils ping's output with one reply missing.
const pingSample = `PING 10.200.1.2 (10.200.1.2) 56(84) bytes of data.
64 bytes from 10.200.1.2: icmp_seq=1 ttl=64 time=0.102 ms
64 bytes from 10.200.1.2: icmp_seq=2 ttl=64 time=0.052 ms
64 bytes from 10.200.1.2: icmp_seq=4 ttl=64 time=1.25 ms

--- 10.200.1.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 31ms
rtt min/avg/max/mdev = 0.052/0.468/1.250/0.553 ms
`

func TestParsePing_repliesAndLoss(t *testing.T) {
	st, err := parsePing(pingSample)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{102 * time.Microsecond, 52 * time.Microsecond, 1250 * time.Microsecond}
	if fmt.Sprint(st.rtts) != fmt.Sprint(want) || st.transmitted != 4 || st.received != 3 {
		t.Errorf("got %v, %d sent, %d received; want %v, 4, 3", st.rtts, st.transmitted, st.received, want)
	}
}

func TestParsePing_errors(t *testing.T) {
	for name, tc := range map[string]struct{ out, want string }{
		"no summary":  {"ping: connect: Network is unreachable\n", "no \"packets transmitted\""},
		"all lost":    {"5 packets transmitted, 0 received, 100% packet loss, time 40ms\n", "no replies (5 sent)"},
		"bad time":    {"64 bytes from 1.2.3.4: icmp_seq=1 ttl=64 time=x ms\n1 packets transmitted, 1 received\n", "reply time"},
		"empty input": {"", "no \"packets transmitted\""},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parsePing(tc.out); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func TestPercentile_nearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 µs, out of order
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 1: 100, 0.001: 1} {
		if got := percentile(d, q); got != want*time.Microsecond {
			t.Errorf("p%g = %v, want %v", q*100, got, want*time.Microsecond)
		}
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("one value: %v", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("no values: %v", got)
	}
}

func TestSummarize_medianAndRange(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []float64
		want Stat
	}{
		"odd":      {[]float64{3, 1, 2}, Stat{Median: 2, Min: 1, Max: 3, N: 3}},
		"even":     {[]float64{4, 1, 3, 2}, Stat{Median: 2.5, Min: 1, Max: 4, N: 4}},
		"one":      {[]float64{5}, Stat{Median: 5, Min: 5, Max: 5, N: 1}},
		"none":     {nil, Stat{}},
		"skip NaN": {[]float64{math.NaN(), 1, 3}, Stat{Median: 2, Min: 1, Max: 3, N: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if fmt.Sprint(in) != fmt.Sprint(tc.in) {
				t.Errorf("summarize reordered its input: %v", tc.in)
			}
		})
	}
}

// sampleReport is three repetitions of made-up but plausible numbers.
func sampleReport() DataplaneReport {
	r := DataplaneReport{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Machine: "linux 6.18, 2 CPUs, iperf 3.12",
		TestSeconds: 10, Reps: 3}
	for rep := 1; rep <= 3; rep++ {
		f := 1 + 0.05*float64(rep-2) // 0.95, 1, 1.05
		r.Samples = append(r.Samples,
			DataplaneSample{Rep: rep, Path: PathUnderlay, TCP1Gbps: 12.7 * f, TCP4Gbps: 19 * f, UDP64PPS: 182e3 * f, RTTP50us: 33 * f, RTTP99us: 60 * f,
				MachineCPUSeconds: map[string]float64{TestTCP1: 12.7 * 10 / 8 * 0.5}},
			DataplaneSample{Rep: rep, Path: PathKernel, TCP1Gbps: 11.6 * f, TCP4Gbps: 11.8 * f, UDP64PPS: 95e3 * f, RTTP50us: 76 * f, RTTP99us: 140 * f},
			DataplaneSample{Rep: rep, Path: PathVxnet, TCP1Gbps: 6.2 * f, TCP4Gbps: 5 * f, UDP64PPS: 40e3 * f, RTTP50us: 140 * f, RTTP99us: 900 * f,
				CPUSeconds:        map[string]float64{TestTCP1: 15 * f, TestTCP4: 16 * f, TestUDP64: 14 * f, TestPing: 0.5 * f},
				MachineCPUSeconds: map[string]float64{TestTCP1: 19.5}},
		)
	}
	r.summarize()
	return r
}

// The delivered rate is measured where the server's namespace carries no
// UDP of the path's own: a path without it shows "—", not 0, and a report
// from before the metric has no row for it.
func TestDataplaneReport_deliveredIsOptional(t *testing.T) {
	if r := sampleReport(); r.metric("udp64Delivered") != nil || strings.Contains(r.Markdown(), "delivered") {
		t.Error("a report without delivered rates has a delivered row")
	}
	r := sampleReport()
	for i := range r.Samples {
		if r.Samples[i].Path != PathUnderlay { // as wireguard-go: not measured
			r.Samples[i].UDP64DeliveredPPS = 2 * r.Samples[i].UDP64PPS
		}
	}
	r.summarize()
	m := r.metric("udp64Delivered")
	if m == nil {
		t.Fatal("no delivered row")
	}
	if m.Underlay.N != 0 || m.Kernel.N != 3 || m.Vxnet.Median != 80e3 || m.Pass != nil {
		t.Errorf("delivered: underlay %+v, kernel %+v, vxnet %+v, pass %v; want none, 3 samples, 80k, no target", m.Underlay, m.Kernel, m.Vxnet, m.Pass)
	}
	if md := r.Markdown(); !strings.Contains(md, "| UDP 64 B delivered | — | 190k pps (180k–200k) | 80k pps (76k–84k) |") {
		t.Errorf("markdown lacks the delivered row:\n%s", md)
	}
}

func TestDataplaneReport_summarize_ratiosAndTargets(t *testing.T) {
	r := sampleReport()
	byKey := map[string]MetricSummary{}
	for _, m := range r.Metrics {
		byKey[m.Key] = m
	}
	for key, tc := range map[string]struct {
		vxnetVsKernel float64
		pass          *bool
	}{
		"tcp1":   {6.2 / 11.6, ptr(true)},
		"tcp4":   {5 / 11.8, nil},
		"udp64":  {40e3 / 95e3, ptr(false)},
		"rttP50": {140.0 / 76, ptr(true)},
		"rttP99": {900.0 / 140, nil},
	} {
		m, ok := byKey[key]
		if !ok {
			t.Errorf("%s: missing", key)
			continue
		}
		if math.Abs(m.VxnetVsKernel-tc.vxnetVsKernel) > 1e-9 {
			t.Errorf("%s: vxnet/kernel %v, want %v", key, m.VxnetVsKernel, tc.vxnetVsKernel)
		}
		if (m.Pass == nil) != (tc.pass == nil) || (m.Pass != nil && *m.Pass != *tc.pass) {
			t.Errorf("%s: pass %v, want %v", key, deref(m.Pass), deref(tc.pass))
		}
	}
	if m := byKey["tcp1"]; m.Kernel.Median != 11.6 || m.Kernel.Min != 11.6*0.95 || m.Kernel.N != 3 {
		t.Errorf("kernel TCP 1 stream: %+v", m.Kernel)
	}
	if len(r.CPU) != 4 || r.CPU[0].Test != TestTCP1 || r.CPU[0].Seconds.Median != 15 || r.CPU[0].Cores != 1.5 {
		t.Errorf("CPU: %+v", r.CPU)
	}
}

func ptr(b bool) *bool { return &b }

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func TestDataplaneReport_Markdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"| metric | underlay, host to host | kernel VXLAN | vxnet | kernel / underlay | vxnet / kernel | target (vxnet / kernel) |",
		"| TCP 1 stream | 12.70 Gbit/s (12.06–13.33) | 11.60 Gbit/s (11.02–12.18) | 6.20 Gbit/s (5.89–6.51) | 0.91× | 0.53× | ≥ 0.5 pass |",
		"| UDP 64 B received | 182k pps (173k–191k) | 95k pps (90k–100k) | 40k pps (38k–42k) | 0.52× | 0.42× | ≥ 0.5 **FAIL** |",
		"| ping RTT p50 | 33 µs (31–35) | 76 µs (72–80) | 140 µs (133–147) | 2.30× | 1.84× | ≤ 2 pass |",
		"| TCP 4 streams |", "| ping RTT p99 |",
		"| TCP 1 stream | 15.00 s (14.25–15.75) | 1.50 |",
		"| underlay, host to host | 0.50 s (0.48–0.53) | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if rows := strings.Count(md, "\n|"); rows != 2+5+2+2+2+4 { // header and rule, 5 metrics; CPU per GB: header and rule, 2 paths; header and rule, 4 tests
		t.Errorf("%d table rows:\n%s", rows, md)
	}
	v := sampleReport().Verdict()
	if strings.Count(v, "\n") != 3 || !strings.Contains(v, "UDP 64 B received: vxnet / kernel = 0.42×") || !strings.Contains(v, "FAIL") {
		t.Errorf("Verdict:\n%s", v)
	}
}

var svgOut = flag.String("svg.out", "", "TestDataplaneReport_SVG: also write the sample chart to this file, to look at it")

func TestDataplaneReport_SVG(t *testing.T) {
	svg := sampleReport().SVG()
	if *svgOut != "" {
		if err := os.WriteFile(*svgOut, svg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Well-formed XML, with an svg root.
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	var root string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("root element %q", root)
	}
	s := string(svg)
	// 5 metrics × 3 paths bars, labelled with their normalised values;
	// RTT is kernel ÷ path: 76/140 = 0.54.
	for _, want := range []string{">0.53×<", ">1.00×<", ">0.54×<", ">6.2 Gb/s<", ">40k pps<", ">140 µs<",
		"✓ target met", "✗ target missed", "stroke-dasharray", "TCP 1 stream", "ping RTT p99"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if n := strings.Count(s, "<rect ") - 1 - 3; n != 15 { // background, 3 legend swatches
		t.Errorf("%d bars, want 15", n)
	}
	if n := strings.Count(s, "✓ target met") + strings.Count(s, "✗ target missed"); n != 3 {
		t.Errorf("%d verdicts, want 3", n)
	}
}

// TestDataplaneReport_peers: with the socat relay and Open vSwitch
// measured, the report adds their table (vxnet / relay, vxnet / OVS) and
// the targets against them, and a bar per metric each with its legend;
// the kernel targets still judge vxnet alone.
func TestDataplaneReport_peers(t *testing.T) {
	r := sampleReport()
	for rep := 1; rep <= 3; rep++ {
		r.Samples = append(r.Samples,
			DataplaneSample{Rep: rep, Path: PathRelay, TCP1Gbps: 0.25, TCP4Gbps: 0.3, UDP64PPS: 12e3, RTTP50us: 380, RTTP99us: 700},
			DataplaneSample{Rep: rep, Path: PathOVS, TCP1Gbps: 1, TCP4Gbps: 1.1, UDP64PPS: 30e3, RTTP50us: 540, RTTP99us: 1200,
				MachineCPUSeconds: map[string]float64{TestTCP1: 2.5}})
	}
	r.summarize()
	md := r.Markdown()
	for _, want := range []string{
		"| metric | socat relay | Open vSwitch | vxnet / relay | vxnet / OVS |",
		"| TCP 1 stream | 250 Mbit/s (250–250) | 1.00 Gbit/s (1.00–1.00) | 24.80× | 6.20× |",
		"| ping RTT p50 | 380 µs (380–380) | 540 µs (540–540) | 0.37× | 0.26× |",
		"| vxnet / OVS, TCP 1 stream | 6.20× | ≥ 5 | pass |",
		"| vxnet / OVS, UDP 64 B | 1.33× | ≥ 1.5 | **FAIL** |",
		"| vxnet / relay, RTT p50 | 0.37× | ≤ 1.1 | pass |",
		"| Open vSwitch | 2.00 s (2.00–2.00) | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(sampleReport().Markdown(), "socat relay") || strings.Contains(sampleReport().Markdown(), "Open vSwitch") {
		t.Error("a report without relay or OVS samples mentions them")
	}
	if v := r.Verdict(); strings.Count(v, "\n") != 6 || !strings.Contains(v, "vxnet / OVS, UDP 64 B:") {
		t.Errorf("Verdict:\n%s", v)
	}
	s := string(r.SVG())
	if n := strings.Count(s, "<rect ") - 1 - 5; n != 25 { // background, 5 legend swatches
		t.Errorf("%d bars, want 25", n)
	}
	if !strings.Contains(s, "socat relay (simplest userspace)") || !strings.Contains(s, ">0.20×<") || !strings.Contains(s, "Open vSwitch (userspace)") {
		t.Error("SVG lacks the relay's or OVS's legend, or the relay's RTT bar")
	}
}

func TestDataplaneReport_JSON_roundTrip(t *testing.T) {
	r := sampleReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back DataplaneReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Samples) != 9 || len(back.Metrics) != 5 || back.Metrics[0].Pass == nil || back.CPU[3].Test != TestPing {
		t.Errorf("round trip lost something: %s", b)
	}
	for _, key := range []string{`"tcp1Gbps"`, `"vxnetVsKernel"`, `"cpuSeconds"`, `"vxnetCpu"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestDataplaneConfig_defaults(t *testing.T) {
	c := DataplaneConfig{Binary: "/bin/true"}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Time != 10*time.Second || c.Reps != 3 || c.PingInterval != 10*time.Millisecond || c.Prefix != fmt.Sprintf("vxb%d-", os.Getpid()) {
		t.Errorf("defaults: %+v", c)
	}
	for name, bad := range map[string]DataplaneConfig{
		"short time": {Binary: "x", Time: time.Millisecond},
		"no reps":    {Binary: "x", Reps: -1},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
