package lab

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Check is one kind of connectivity probe from a container to another.
// The order is the order of the symbols in a matrix cell.
type Check int

const (
	PingAddr Check = iota // ping the destination's address
	TCPAddr               // TCP echo round trip to its address
	PingName              // ping its name (resolved by the embedded DNS)
	TCPName               // TCP echo round trip to <name>.<network>
	DNSName               // dig <name> and <name>.<network> @127.0.0.11 give its address
	NumChecks
)

var checkNames = [NumChecks]string{"ping", "tcp", "ping name", "tcp name", "dns"}

func (c Check) String() string {
	if c < 0 || c >= NumChecks {
		return fmt.Sprintf("Check(%d)", int(c))
	}
	return checkNames[c]
}

// ByName reports whether the check finds the destination by its name.
func (c Check) ByName() bool { return c >= PingName }

// Result is the outcome of one check.
type Result struct {
	OK       bool
	Attempts int    // tries made (a check is retried before it fails)
	Err      string // the last failure
}

// Node is one container of a matrix.
type Node struct {
	Name string // endpoint name
	Host string // host it runs on
	Addr string // its address
}

// Matrix holds the results of every check between every ordered pair of
// distinct containers.
type Matrix struct {
	Nodes []Node
	// Results[src][dst][check]; nil when src == dst.
	Results [][][]Result
}

// NewMatrix returns an empty matrix over nodes.
func NewMatrix(nodes []Node) *Matrix {
	m := &Matrix{Nodes: nodes, Results: make([][][]Result, len(nodes))}
	for i := range nodes {
		m.Results[i] = make([][]Result, len(nodes))
		for j := range nodes {
			if i != j {
				m.Results[i][j] = make([]Result, NumChecks)
			}
		}
	}
	return m
}

// Counts tallies the checks that ran: passed and total, and passed on a
// retry.
type Counts struct{ Passed, Total, Retried int }

func (c *Counts) add(r Result) {
	if r.Attempts == 0 {
		return // not run (DemoConfig.Checks left it out, or the run was cut short)
	}
	c.Total++
	if r.OK {
		c.Passed++
		if r.Attempts > 1 {
			c.Retried++
		}
	}
}

// Row tallies the checks from container src.
func (m *Matrix) Row(src int) Counts {
	var c Counts
	for _, cell := range m.Results[src] {
		for _, r := range cell {
			c.add(r)
		}
	}
	return c
}

// Total tallies every check.
func (m *Matrix) Total() Counts {
	var c Counts
	for i := range m.Nodes {
		r := m.Row(i)
		c.Passed, c.Total, c.Retried = c.Passed+r.Passed, c.Total+r.Total, c.Retried+r.Retried
	}
	return c
}

// Failed reports whether any check failed.
func (m *Matrix) Failed() bool {
	t := m.Total()
	return t.Passed != t.Total
}

// Category is one cell of the summary: same or cross host, by address or
// by name.
type Category struct {
	CrossHost, ByName bool
	Pairs             int // ordered pairs of containers
	Counts
}

// Summary tallies checks by category, in the order same host by address,
// same host by name, cross host by address, cross host by name.
func (m *Matrix) Summary() []Category {
	cats := []Category{{}, {ByName: true}, {CrossHost: true}, {CrossHost: true, ByName: true}}
	for i, src := range m.Nodes {
		for j, dst := range m.Nodes {
			if i == j {
				continue
			}
			k := 0
			if src.Host != dst.Host {
				k = 2
			}
			cats[k].Pairs++
			cats[k+1].Pairs++
			for c, r := range m.Results[i][j] {
				if Check(c).ByName() {
					cats[k+1].add(r)
				} else {
					cats[k].add(r)
				}
			}
		}
	}
	return cats
}

// cell renders one cell: a symbol per check, address checks then name
// checks, separated by a space.
func cell(rs []Result) string {
	if rs == nil {
		return "·"
	}
	var b strings.Builder
	for c, r := range rs {
		if Check(c) == PingName {
			b.WriteByte(' ')
		}
		switch {
		case r.Attempts == 0:
			b.WriteString("·")
		case r.OK:
			b.WriteString("✓")
		default:
			b.WriteString("✗")
		}
	}
	return b.String()
}

// pad right-pads s to width runes.
func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

// Render writes the matrix: rows are sources, columns destinations.
func (m *Matrix) Render(w io.Writer) {
	fmt.Fprintln(w, "each cell: ping tcp (by address) ping tcp dns (by name); ✓ passed, ✗ failed")
	colW := utf8.RuneCountInString(cell(make([]Result, NumChecks)))
	label := make([]string, len(m.Nodes))
	labelW := 0
	for i, n := range m.Nodes {
		label[i] = fmt.Sprintf("%s %s %s", n.Name, n.Host, n.Addr)
		labelW = max(labelW, utf8.RuneCountInString(label[i]))
		colW = max(colW, utf8.RuneCountInString(n.Name))
	}
	var b strings.Builder
	b.WriteString(pad("from \\ to", labelW))
	for _, n := range m.Nodes {
		b.WriteString("  " + pad(n.Name, colW))
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	for i := range m.Nodes {
		b.Reset()
		b.WriteString(pad(label[i], labelW))
		for j := range m.Nodes {
			b.WriteString("  " + pad(cell(m.Results[i][j]), colW))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// RenderSummary writes the tally by category and the failures, if any.
func (m *Matrix) RenderSummary(w io.Writer) {
	cats := m.Summary()
	fmt.Fprintf(w, "%-24s %-16s %s\n", "", "by address", "by name")
	for k := 0; k < 4; k += 2 {
		name := "same host"
		if cats[k].CrossHost {
			name = "cross host"
		}
		fmt.Fprintf(w, "%-24s %-16s %s\n", fmt.Sprintf("%s (%d pairs)", name, cats[k].Pairs),
			tally(cats[k].Counts), tally(cats[k+1].Counts))
	}
	t := m.Total()
	switch {
	case t.Passed == t.Total:
		fmt.Fprintf(w, "all %d checks passed", t.Total)
	default:
		fmt.Fprintf(w, "%d of %d checks FAILED", t.Total-t.Passed, t.Total)
	}
	if t.Retried > 0 {
		fmt.Fprintf(w, " (%d passed only on a retry)", t.Retried)
	}
	fmt.Fprintln(w)
	m.renderFailures(w)
}

func tally(c Counts) string {
	if c.Total == 0 {
		return "-"
	}
	mark := "✓"
	if c.Passed != c.Total {
		mark = "✗"
	}
	return fmt.Sprintf("%d/%d %s", c.Passed, c.Total, mark)
}

// renderFailures lists each failed check with its last error.
func (m *Matrix) renderFailures(w io.Writer) {
	for i, src := range m.Nodes {
		for j, dst := range m.Nodes {
			for c, r := range m.Results[i][j] {
				if !r.OK && r.Attempts > 0 {
					fmt.Fprintf(w, "  ✗ %s → %s %s (%d tries): %s\n", src.Name, dst.Name, Check(c), r.Attempts, oneLine(r.Err))
				}
			}
		}
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
