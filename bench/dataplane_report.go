package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// DataplaneReport is a RunDataplane run: every sample, and per metric the
// three paths side by side with their ratios and the target.
type DataplaneReport struct {
	Started     time.Time         `json:"started"`
	Machine     string            `json:"machine"`     // OS, kernel, CPUs, iperf3
	TestSeconds float64           `json:"testSeconds"` // length of each test
	Reps        int               `json:"reps"`
	HostCPUs    int               `json:"hostCpus"` // each vxnet host's GOMAXPROCS; 0: every CPU
	Samples     []DataplaneSample `json:"samples"`
	Metrics     []MetricSummary   `json:"metrics"`
	CPU         []CPUSummary      `json:"vxnetCpu"`
	// CPUPerGB is, per path, the CPU time one GB moved by the TCP 1 stream
	// test cost: the whole machine's, and the data plane's own processes'
	// where the benchmark runs them (vxnet).
	CPUPerGB []CPUPerGB `json:"cpuPerGB,omitempty"`
	// PeerTargets judge vxnet against the other userspace data planes of
	// the run (Open vSwitch, the socat relay), when they were measured.
	PeerTargets []PeerTarget `json:"peerTargets,omitempty"`
}

// CPUPerGB is one path's CPU seconds per GB moved, over the repetitions.
type CPUPerGB struct {
	Path    string `json:"path"`
	Machine Stat   `json:"machine"`
	Own     Stat   `json:"own"` // N 0 where the benchmark has no process of the path's own to measure
}

// PeerTarget is one goal of vxnet against another userspace data plane:
// the ratio of medians (vxnet / peer), the bound and whether the run met
// it.
type PeerTarget struct {
	Name   string  `json:"name"`
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"`
	Pass   bool    `json:"pass"`
}

// MetricSummary is one row of the report: a metric over the repetitions
// on each path, and the ratios of the medians. Relay is empty (N 0) when
// the run left the socat relay out.
type MetricSummary struct {
	Key      string `json:"key"`  // tcp1, tcp4, udp64, udp64Delivered, rttP50, rttP99
	Name     string `json:"name"` // as the table prints it
	Unit     string `json:"unit"` // Gbit/s, pps, µs
	Underlay Stat   `json:"underlay"`
	Kernel   Stat   `json:"kernel"`
	Vxnet    Stat   `json:"vxnet"`
	Relay    Stat   `json:"relay"`
	OVS      Stat   `json:"ovs"` // empty (N 0) when the run left Open vSwitch out
	// Sealed is vxnet with the network encrypted, WireGuard wireguard-go;
	// empty (N 0) when the run left them out.
	Sealed    Stat `json:"vxnetEncrypted"`
	WireGuard Stat `json:"wireguardGo"`
	// VIP is vxnet to the same server at a service's VIP (one task).
	VIP Stat `json:"vxnetVIP"`
	// KernelVsUnderlay, VxnetVsKernel, RelayVsKernel and OVSVsKernel are
	// ratios of medians (kernel/underlay, vxnet/kernel, relay/kernel,
	// ovs/kernel); 0 when the divisor is 0.
	KernelVsUnderlay float64 `json:"kernelVsUnderlay"`
	VxnetVsKernel    float64 `json:"vxnetVsKernel"`
	RelayVsKernel    float64 `json:"relayVsKernel,omitempty"`
	OVSVsKernel      float64 `json:"ovsVsKernel,omitempty"`
	// Target is the project's goal for VxnetVsKernel ("≥ 0.5", "≤ 2"), empty
	// when the metric has none; Pass says whether the run met it.
	Target string `json:"target,omitempty"`
	Pass   *bool  `json:"pass,omitempty"`
}

// CPUSummary is the CPU time both vxnet processes used during one test,
// over the repetitions: seconds, and cores (seconds per second of test).
type CPUSummary struct {
	Test    string  `json:"test"`
	Name    string  `json:"name"`
	Seconds Stat    `json:"seconds"`
	Cores   float64 `json:"cores"` // median seconds / test length
}

// metric describes one measured figure: how to read it from a sample,
// print it, and judge it against the kernel.
type metric struct {
	key, name, unit string
	lowerIsBetter   bool
	// optional: a sample's 0 means not measured on its path.
	optional bool
	get      func(DataplaneSample) float64
	// target is the bound on vxnet/kernel: a minimum, or for
	// lowerIsBetter a maximum; 0 for none.
	target float64
}

var dataplaneMetrics = []metric{
	{key: "tcp1", name: "TCP 1 stream", unit: "Gbit/s", get: func(s DataplaneSample) float64 { return s.TCP1Gbps }, target: 0.5},
	{key: "tcp4", name: "TCP 4 streams", unit: "Gbit/s", get: func(s DataplaneSample) float64 { return s.TCP4Gbps }},
	{key: "udp64", name: "UDP 64 B received", unit: "pps", get: func(s DataplaneSample) float64 { return s.UDP64PPS }, target: 0.5},
	{key: "udp64Delivered", name: "UDP 64 B delivered", unit: "pps", optional: true, get: func(s DataplaneSample) float64 { return s.UDP64DeliveredPPS }},
	{key: "rttP50", name: "ping RTT p50", unit: "µs", lowerIsBetter: true, get: func(s DataplaneSample) float64 { return s.RTTP50us }, target: 2},
	{key: "rttP99", name: "ping RTT p99", unit: "µs", lowerIsBetter: true, get: func(s DataplaneSample) float64 { return s.RTTP99us }},
}

var cpuTests = []struct{ key, name string }{
	{TestTCP1, "TCP 1 stream"}, {TestTCP4, "TCP 4 streams"}, {TestUDP64, "UDP 64 B"}, {TestPing, "ping"},
}

// summarize fills Metrics and CPU from Samples.
func (r *DataplaneReport) summarize() {
	r.Metrics, r.CPU = nil, nil
	for _, m := range dataplaneMetrics {
		per := map[string][]float64{}
		for _, s := range r.Samples {
			if v := m.get(s); v != 0 || !m.optional {
				per[s.Path] = append(per[s.Path], v)
			}
		}
		if len(per) == 0 {
			continue // an optional metric no path measured (a report from before it)
		}
		ms := MetricSummary{Key: m.key, Name: m.name, Unit: m.unit,
			Underlay: summarize(per[PathUnderlay]), Kernel: summarize(per[PathKernel]), Vxnet: summarize(per[PathVxnet]),
			Relay: summarize(per[PathRelay]), OVS: summarize(per[PathOVS]),
			Sealed: summarize(per[PathSealed]), WireGuard: summarize(per[PathWireGuard]), VIP: summarize(per[PathVIP])}
		ms.KernelVsUnderlay = ratio(ms.Kernel.Median, ms.Underlay.Median)
		ms.VxnetVsKernel = ratio(ms.Vxnet.Median, ms.Kernel.Median)
		ms.RelayVsKernel = ratio(ms.Relay.Median, ms.Kernel.Median)
		ms.OVSVsKernel = ratio(ms.OVS.Median, ms.Kernel.Median)
		if m.target > 0 && ms.Vxnet.N > 0 && ms.Kernel.N > 0 {
			pass := ms.VxnetVsKernel >= m.target
			ms.Target = fmt.Sprintf("≥ %g", m.target)
			if m.lowerIsBetter {
				pass = ms.VxnetVsKernel > 0 && ms.VxnetVsKernel <= m.target
				ms.Target = fmt.Sprintf("≤ %g", m.target)
			}
			ms.Pass = &pass
		}
		r.Metrics = append(r.Metrics, ms)
	}
	for _, t := range cpuTests {
		var v []float64
		for _, s := range r.Samples {
			if sec, ok := s.CPUSeconds[t.key]; ok && s.Path == PathVxnet {
				v = append(v, sec)
			}
		}
		if len(v) == 0 {
			continue
		}
		st := summarize(v)
		r.CPU = append(r.CPU, CPUSummary{Test: t.key, Name: t.name, Seconds: st, Cores: ratio(st.Median, r.TestSeconds)})
	}
	r.CPUPerGB = nil
	for _, path := range []string{PathUnderlay, PathKernel, PathVxnet, PathVIP, PathSealed, PathWireGuard, PathRelay, PathOVS} {
		var machine, own []float64
		for _, s := range r.Samples {
			gb := s.TCP1Gbps * r.TestSeconds / 8
			if s.Path != path || gb <= 0 {
				continue
			}
			if sec, ok := s.MachineCPUSeconds[TestTCP1]; ok {
				machine = append(machine, sec/gb)
			}
			if sec, ok := s.CPUSeconds[TestTCP1]; ok {
				own = append(own, sec/gb)
			}
		}
		if len(machine) > 0 || len(own) > 0 {
			r.CPUPerGB = append(r.CPUPerGB, CPUPerGB{Path: path, Machine: summarize(machine), Own: summarize(own)})
		}
	}
	r.PeerTargets = nil
	for _, pt := range peerTargets {
		m := r.metric(pt.metric)
		if m == nil {
			continue
		}
		subject, peer := m.path(pt.subject), m.path(pt.peer)
		if subject.N == 0 || peer.N == 0 {
			continue
		}
		x := ratio(subject.Median, peer.Median)
		pass := x >= pt.bound
		target := fmt.Sprintf("≥ %g", pt.bound)
		if pt.atMost {
			pass, target = x > 0 && x <= pt.bound, fmt.Sprintf("≤ %g", pt.bound)
		}
		r.PeerTargets = append(r.PeerTargets, PeerTarget{Name: pt.name, Ratio: x, Target: target, Pass: pass})
	}
}

// peerTargets are vxnet's goals against the other userspace data planes,
// and the encrypted network's against wireguard-go and plain vxnet.
var peerTargets = []struct {
	name, metric, subject, peer string
	bound                       float64
	atMost                      bool
}{
	{"vxnet / OVS, TCP 1 stream", "tcp1", PathVxnet, PathOVS, 5, false},
	{"vxnet / OVS, UDP 64 B", "udp64", PathVxnet, PathOVS, 1.5, false},
	{"vxnet / relay, RTT p50", "rttP50", PathVxnet, PathRelay, 1.1, true},
	{"encrypted / wireguard-go, TCP 1 stream", "tcp1", PathSealed, PathWireGuard, 2, false},
	{"encrypted / vxnet, TCP 1 stream", "tcp1", PathSealed, PathVxnet, 0.8, false},
	{"encrypted / wireguard-go, UDP 64 B", "udp64", PathSealed, PathWireGuard, 2, false},
	{"encrypted / wireguard-go, RTT p50", "rttP50", PathSealed, PathWireGuard, 1, true},
	{"VIP / vxnet, TCP 1 stream", "tcp1", PathVIP, PathVxnet, 0.9, false},
}

// path is the metric's figures on one path.
func (m *MetricSummary) path(key string) Stat {
	switch key {
	case PathUnderlay:
		return m.Underlay
	case PathKernel:
		return m.Kernel
	case PathVxnet:
		return m.Vxnet
	case PathSealed:
		return m.Sealed
	case PathVIP:
		return m.VIP
	case PathWireGuard:
		return m.WireGuard
	case PathRelay:
		return m.Relay
	case PathOVS:
		return m.OVS
	}
	return Stat{}
}

// metric returns the summary of the metric with key, or nil.
func (r *DataplaneReport) metric(key string) *MetricSummary {
	for i := range r.Metrics {
		if r.Metrics[i].Key == key {
			return &r.Metrics[i]
		}
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// formatValue prints a value in a metric's unit, with 3 significant
// figures or so.
func formatValue(v float64, unit string) string {
	switch unit {
	case "Gbit/s":
		if v < 1 {
			return fmt.Sprintf("%.0f Mbit/s", v*1000)
		}
		return fmt.Sprintf("%.2f Gbit/s", v)
	case "pps":
		if v >= 1e6 {
			return fmt.Sprintf("%.2fM pps", v/1e6)
		}
		return fmt.Sprintf("%.0fk pps", v/1e3)
	case "µs":
		if v >= 1000 {
			return fmt.Sprintf("%.2f ms", v/1000)
		}
		return fmt.Sprintf("%.0f µs", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

// formatStat prints a median and, with more than one repetition, the
// range beside it: "11.6 Gbit/s (11.2–11.9)".
func formatStat(s Stat, unit string) string {
	if s.N == 0 {
		return "—"
	}
	med := formatValue(s.Median, unit)
	if s.N == 1 {
		return med
	}
	lo, hi := formatValue(s.Min, unit), formatValue(s.Max, unit)
	// The range repeats no unit: "11.6 Gbit/s (11.2–11.9)", "95k pps (90k–99k)".
	if u := unitSuffix(lo); u != "" && u == unitSuffix(hi) && u == unitSuffix(med) {
		lo, hi = strings.TrimSuffix(lo, u), strings.TrimSuffix(hi, u)
	}
	return fmt.Sprintf("%s (%s–%s)", med, lo, hi)
}

// unitSuffix is the unit of a formatted value, from the space on: " µs",
// " pps" (of "95k pps"), ...
func unitSuffix(s string) string {
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return ""
	}
	return s[i:]
}

func formatRatio(x float64) string {
	if x == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x)
}

// Markdown renders the report: the comparison table (medians, ranges
// over the repetitions, ratios, targets) and vxnet's CPU time.
func (r DataplaneReport) Markdown() string {
	var b strings.Builder
	cpus := "every CPU"
	if r.HostCPUs > 0 {
		cpus = fmt.Sprintf("%d CPU%s", r.HostCPUs, map[bool]string{true: "s"}[r.HostCPUs > 1])
	}
	fmt.Fprintf(&b, "%d × %g s per test, medians (min–max), %s; iperf3 receiver side; each vxnet host runs on %s at once (GOMAXPROCS).\n\n", r.Reps, r.TestSeconds, r.Machine, cpus)
	b.WriteString("| metric | underlay, host to host | kernel VXLAN | vxnet | kernel / underlay | vxnet / kernel | target (vxnet / kernel) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, m := range r.Metrics {
		target := "—"
		if m.Pass != nil {
			verdict := "**FAIL**"
			if *m.Pass {
				verdict = "pass"
			}
			target = m.Target + " " + verdict
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", m.Name, formatStat(m.Underlay, m.Unit),
			formatStat(m.Kernel, m.Unit), formatStat(m.Vxnet, m.Unit), formatRatio(m.KernelVsUnderlay),
			formatRatio(m.VxnetVsKernel), target)
	}
	if r.hasRelay() || r.hasOVS() {
		b.WriteString("\nThe other userspace data planes, each on a pair of hosts of its own in the same testbed: " +
			"socat copying each packet between a TUN device and a UDP socket (one per wakeup, no VXLAN, no offloads: " +
			"the floor of any userspace path), and Open vSwitch's userspace datapath with its VXLAN tunnelling:\n\n")
		b.WriteString("| metric | socat relay | Open vSwitch | vxnet / relay | vxnet / OVS |\n|---|---|---|---|---|\n")
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.Name, formatStat(m.Relay, m.Unit), formatStat(m.OVS, m.Unit),
				formatRatio(ratio(m.Vxnet.Median, m.Relay.Median)), formatRatio(ratio(m.Vxnet.Median, m.OVS.Median)))
		}
	}
	if r.has(PathSealed) || r.has(PathWireGuard) {
		b.WriteString("\nEncrypted: vxnet with the network encrypted (every datagram sealed, AES-256-GCM or ChaCha20-Poly1305), " +
			"and wireguard-go, the userspace WireGuard, between the two hosts of a pair of its own:\n\n")
		b.WriteString("| metric | vxnet encrypted | wireguard-go | encrypted / wireguard-go | encrypted / vxnet |\n|---|---|---|---|---|\n")
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.Name, formatStat(m.Sealed, m.Unit), formatStat(m.WireGuard, m.Unit),
				formatRatio(ratio(m.Sealed.Median, m.WireGuard.Median)), formatRatio(ratio(m.Sealed.Median, m.Vxnet.Median)))
		}
	}
	if r.has(PathVIP) {
		b.WriteString("\nServices: vxnet to the same container at a service's VIP (one task): the flow table, the " +
			"destination rewritten on the way and the source on the way back, checksums mended:\n\n")
		b.WriteString("| metric | vxnet | vxnet to a VIP | VIP / vxnet |\n|---|---|---|---|\n")
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", m.Name, formatStat(m.Vxnet, m.Unit), formatStat(m.VIP, m.Unit),
				formatRatio(ratio(m.VIP.Median, m.Vxnet.Median)))
		}
	}
	if len(r.PeerTargets) > 0 {
		b.WriteString("\n| target | measured | want | |\n|---|---|---|---|\n")
		for _, t := range r.PeerTargets {
			verdict := "**FAIL**"
			if t.Pass {
				verdict = "pass"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, formatRatio(t.Ratio), t.Target, verdict)
		}
	}
	if len(r.CPUPerGB) > 0 {
		b.WriteString("\nCPU seconds per GB moved (TCP 1 stream): the whole machine, every core, from /proc/stat " +
			"(the kernel's work included), and the data plane's own processes where the benchmark runs them:\n\n")
		b.WriteString("| path | machine | data plane's own |\n|---|---|---|\n")
		for _, c := range r.CPUPerGB {
			own := "—"
			if c.Own.N > 0 {
				own = formatCPUPerGB(c.Own)
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", pathLabel(c.Path), formatCPUPerGB(c.Machine), own)
		}
	}
	if len(r.CPU) > 0 {
		b.WriteString("\nvxnet CPU time during each test, both hosts' processes together (user + system):\n\n")
		b.WriteString("| test | CPU seconds | cores busy |\n|---|---|---|\n")
		for _, c := range r.CPU {
			fmt.Fprintf(&b, "| %s | %s | %.2f |\n", c.Name, formatCPU(c.Seconds), c.Cores)
		}
	}
	return b.String()
}

// has reports whether the run measured path.
func (r DataplaneReport) has(path string) bool {
	for i := range r.Metrics {
		if r.Metrics[i].path(path).N > 0 {
			return true
		}
	}
	return false
}

// hasOVS reports whether the run measured Open vSwitch.
func (r DataplaneReport) hasOVS() bool {
	for _, m := range r.Metrics {
		if m.OVS.N > 0 {
			return true
		}
	}
	return false
}

// pathLabel names a path in tables.
func pathLabel(path string) string {
	switch path {
	case PathUnderlay:
		return "underlay, host to host"
	case PathKernel:
		return "kernel VXLAN"
	case PathRelay:
		return "socat relay"
	case PathOVS:
		return "Open vSwitch"
	case PathSealed:
		return "vxnet encrypted"
	case PathVIP:
		return "vxnet to a VIP"
	}
	return path
}

func formatCPUPerGB(s Stat) string {
	if s.N == 0 {
		return "—"
	}
	if s.N > 1 {
		return fmt.Sprintf("%.2f s (%.2f–%.2f)", s.Median, s.Min, s.Max)
	}
	return fmt.Sprintf("%.2f s", s.Median)
}

// hasRelay reports whether the run measured the socat relay.
func (r DataplaneReport) hasRelay() bool {
	for _, m := range r.Metrics {
		if m.Relay.N > 0 {
			return true
		}
	}
	return false
}

func formatCPU(s Stat) string {
	if s.N > 1 {
		return fmt.Sprintf("%.2f s (%.2f–%.2f)", s.Median, s.Min, s.Max)
	}
	return fmt.Sprintf("%.2f s", s.Median)
}

// Verdict is one line per target: what the run measured against it.
func (r DataplaneReport) Verdict() string {
	var b strings.Builder
	for _, m := range r.Metrics {
		if m.Pass == nil {
			continue
		}
		verdict := "FAIL"
		if *m.Pass {
			verdict = "pass"
		}
		fmt.Fprintf(&b, "target %-18s vxnet / kernel = %-6s (want %s)  %s\n", m.Name+":", formatRatio(m.VxnetVsKernel), m.Target, verdict)
	}
	for _, t := range r.PeerTargets {
		verdict := "FAIL"
		if t.Pass {
			verdict = "pass"
		}
		fmt.Fprintf(&b, "target %-40s = %-6s (want %s)  %s\n", t.Name+":", formatRatio(t.Ratio), t.Target, verdict)
	}
	return b.String()
}
