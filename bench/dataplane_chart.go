package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartBaseWidth = 1000 // five paths; wider with more (SVG)
	chartHeight    = 560
	chartLeft      = 70
	chartRight     = 20
	chartTop       = 170
	chartBottom    = 90
	chartBarWidth  = 48
	chartBarGap    = 6
	chartFontStack = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
)

// chartPaths are the bars of a group, in order, with their legend, colour
// and figures.
var chartPaths = []struct {
	key, label, color string
	stat              func(MetricSummary) Stat
}{
	{PathUnderlay, "veth underlay, host to host", "#9aa5b1", func(m MetricSummary) Stat { return m.Underlay }},
	{PathKernel, "kernel VXLAN", "#3b6fb6", func(m MetricSummary) Stat { return m.Kernel }},
	{PathVxnet, "vxnet", "#e8853d", func(m MetricSummary) Stat { return m.Vxnet }},
	{PathVIP, "vxnet to a VIP", "#f5b27a", func(m MetricSummary) Stat { return m.VIP }},
	{PathSealed, "vxnet encrypted", "#b45309", func(m MetricSummary) Stat { return m.Sealed }},
	{PathWireGuard, "wireguard-go (encrypted)", "#88171a", func(m MetricSummary) Stat { return m.WireGuard }},
	{PathRelay, "socat relay (simplest userspace)", "#b4a7d6", func(m MetricSummary) Stat { return m.Relay }},
	{PathOVS, "Open vSwitch (userspace)", "#6aa84f", func(m MetricSummary) Stat { return m.OVS }},
}

// chartBar is one path's bar in a metric's group.
type chartBar struct {
	path, color   string
	norm, lo, hi  float64 // median, min and max, normalised to the kernel's median
	label, ration string
}

// SVG draws the report as grouped bars, one group per metric and one bar
// per path, normalised so that the kernel's VXLAN is 1.0 and higher is
// better everywhere: throughput bars are path ÷ kernel, latency bars
// kernel ÷ path. Whiskers span the repetitions' range; a dashed line
// marks the targets (0.5 of the kernel; an RTT of at most twice
// the kernel's is a bar of at least 0.5 too), with pass or fail above.
func (r DataplaneReport) SVG() []byte {
	groups := make([][]chartBar, len(r.Metrics))
	top := 1.2
	for i, m := range r.Metrics {
		groups[i] = chartGroup(m)
		for _, b := range groups[i] {
			top = max(top, b.hi, b.norm)
		}
	}
	top = math.Ceil(top*1.12*2) / 2 // room for the labels, on a 0.5 grid
	// Wider with more than five paths, so that bars keep their width.
	present := 0
	for _, p := range chartPaths {
		if r.has(p.key) {
			present++
		}
	}
	chartWidth := chartBaseWidth + max(0, present-5)*len(r.Metrics)*30

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight, chartFontStack)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartWidth, chartHeight)
	text(&b, chartLeft, 30, 20, "start", "bold", "#1f2328", "vxnet data plane vs the Linux kernel's VXLAN")
	text(&b, chartLeft, 52, 13, "start", "normal", "#57606a", fmt.Sprintf("%s · %d × %g s per test · medians, whiskers min–max · %s",
		r.Machine, r.Reps, r.TestSeconds, r.Started.Format("2006-01-02 15:04 MST")))
	text(&b, chartLeft, 72, 13, "start", "normal", "#57606a",
		"kernel VXLAN = 1.0, higher is better: throughput is path ÷ kernel, latency is kernel ÷ path")
	legend(&b, r, chartLeft, 96, float64(chartWidth-chartRight))

	plotH := float64(chartHeight - chartTop - chartBottom)
	y := func(v float64) float64 { return float64(chartTop) + plotH*(1-v/top) }
	plotR := float64(chartWidth - chartRight)
	for v := 0.0; v <= top+1e-9; v += 0.5 {
		color, width := "#d0d7de", 1.0
		if v == 1 {
			color, width = "#3b6fb6", 1.5
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-width="%g"/>`+"\n", chartLeft, y(v), plotR, y(v), color, width)
		text(&b, chartLeft-8, y(v)+4, 12, "end", "normal", "#57606a", fmt.Sprintf("%.1f×", v))
	}
	groupW := (plotR - chartLeft) / float64(max(1, len(groups)))
	for i, g := range groups {
		x0 := chartLeft + groupW*float64(i)
		cx := x0 + groupW/2
		drawGroup(&b, r.Metrics[i], g, cx, groupW, y, y(top))
		text(&b, cx, float64(chartHeight-chartBottom)+22, 14, "middle", "bold", "#1f2328", r.Metrics[i].Name)
		sub := "path ÷ kernel"
		if dataplaneMetrics[metricIndex(r.Metrics[i].Key)].lowerIsBetter {
			sub = "kernel ÷ path"
		}
		text(&b, cx, float64(chartHeight-chartBottom)+40, 11, "middle", "normal", "#57606a", sub)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#1f2328"/>`+"\n", chartLeft, y(0), plotR, y(0))
	text(&b, chartLeft, chartHeight-16, 12, "start", "normal", "#57606a",
		"Targets: TCP 1 stream ≥ 0.5× kernel, UDP 64 B pps ≥ 0.5× kernel, RTT p50 ≤ 2× kernel. Produced by vxnet bench dataplane.")
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func metricIndex(key string) int {
	for i, m := range dataplaneMetrics {
		if m.key == key {
			return i
		}
	}
	return 0
}

// chartGroup normalises one metric's three paths to the kernel's median.
func chartGroup(m MetricSummary) []chartBar {
	k := m.Kernel.Median
	if k <= 0 {
		return nil
	}
	lower := dataplaneMetrics[metricIndex(m.Key)].lowerIsBetter
	norm := func(v float64) float64 {
		if !lower {
			return v / k
		}
		if v <= 0 {
			return 0
		}
		return k / v
	}
	var bars []chartBar
	for _, p := range chartPaths {
		st := p.stat(m)
		if st.N == 0 {
			continue
		}
		lo, hi := norm(st.Min), norm(st.Max)
		bars = append(bars, chartBar{path: p.key, color: p.color, norm: norm(st.Median), lo: min(lo, hi), hi: max(lo, hi),
			label: chartValue(st.Median, m.Unit), ration: fmt.Sprintf("%.2f×", norm(st.Median))})
	}
	return bars
}

// chartValue is a value short enough to sit above a bar.
func chartValue(v float64, unit string) string {
	if unit == "Gbit/s" && v >= 1 {
		return fmt.Sprintf("%.3g Gb/s", v)
	}
	return strings.Replace(formatValue(v, unit), "bit/s", "b/s", 1)
}

func drawGroup(b *bytes.Buffer, m MetricSummary, bars []chartBar, cx, groupW float64, y func(float64) float64, yTop float64) {
	n := float64(len(bars))
	// Bars narrow to fit five to a group.
	barW := min(float64(chartBarWidth), (groupW-24-(n-1)*chartBarGap)/max(n, 1))
	left := cx - (n*barW+(n-1)*chartBarGap)/2
	if m.Pass != nil && len(bars) > 0 {
		// The target line spans the group, under the bars' labels.
		tx0, tx1 := left-8, left+n*barW+(n-1)*chartBarGap+8
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#cf222e" stroke-width="2" stroke-dasharray="6 4"/>`+"\n",
			tx0, y(0.5), tx1, y(0.5))
	}
	for j, bar := range bars {
		x := left + float64(j)*(barW+chartBarGap)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s (%s)</title></rect>`+"\n",
			x, y(bar.norm), barW, y(0)-y(bar.norm), bar.color, esc(bar.path), esc(bar.label), esc(bar.ration))
		if bar.hi > bar.lo {
			mx := x + barW/2
			fmt.Fprintf(b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fh12M%.1f %.1fh12" stroke="#1f2328" stroke-width="1.2" fill="none"/>`+"\n",
				mx, y(bar.lo), y(bar.hi), mx-6, y(bar.lo), mx-6, y(bar.hi))
		}
		ly := min(y(bar.norm), y(bar.hi)) - 6
		haloText(b, x+barW/2, ly, 12, "bold", "#1f2328", bar.ration)
		haloText(b, x+barW/2, ly-14, 10, "normal", "#57606a", bar.label)
	}
	if m.Pass == nil || len(bars) == 0 {
		return
	}
	verdict, color := "✗ target missed", "#cf222e"
	if *m.Pass {
		verdict, color = "✓ target met", "#1a7f37"
	}
	what := "vxnet"
	if dataplaneMetrics[metricIndex(m.Key)].lowerIsBetter {
		what = "RTT"
	}
	text(b, cx, yTop-28, 13, "middle", "bold", color, verdict)
	text(b, cx, yTop-12, 11, "middle", "normal", color, fmt.Sprintf("%s %s kernel (want %s)", what, formatRatio(m.VxnetVsKernel), m.Target))
}

// legend names the paths the run measured, in rows that fit before right.
func legend(b *bytes.Buffer, r DataplaneReport, x, y, right float64) {
	left := x
	for _, p := range chartPaths {
		if !r.has(p.key) {
			continue
		}
		w := 20 + float64(len([]rune(p.label)))*7.5 + 24
		if x > left && x+w > right {
			x, y = left, y+20
		}
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="14" height="14" fill="%s"/>`+"\n", x, y-11, p.color)
		text(b, x+20, y, 13, "start", "normal", "#1f2328", p.label)
		x += w
	}
	if x+140 > right {
		x, y = left, y+20
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#cf222e" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", x, y-4, x+28, y-4)
	text(b, x+34, y, 13, "start", "normal", "#1f2328", "target: 0.5")
}

func text(b *bytes.Buffer, x, y float64, size int, anchor, weight, color, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" font-weight="%s" fill="%s">%s</text>`+"\n",
		x, y, size, anchor, weight, color, esc(s))
}

// haloText is text with a white outline, legible over grid and target lines.
func haloText(b *bytes.Buffer, x, y float64, size int, weight, color, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="middle" font-weight="%s" fill="%s" stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n",
		x, y, size, weight, color, esc(s))
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
