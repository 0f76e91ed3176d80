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
// distinct containers and, with an outside column, from every container to
// the outside.
type Matrix struct {
	Nodes []Node
	// Results[src][dst][check]; nil when src == dst.
	Results [][][]Result
	// Outside[src][check]: from container src to the outside; nil when the
	// matrix has no outside column (see AddOutside).
	Outside [][]Result
}

// outsideLabel names the outside column, and the outside in failures.
const outsideLabel = "outside"

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

// AddOutside gives m an outside column: the checks from every container to
// the outside, none run yet.
func (m *Matrix) AddOutside() {
	m.Outside = make([][]Result, len(m.Nodes))
	for i := range m.Outside {
		m.Outside[i] = make([]Result, NumChecks)
	}
}

// toOutside returns src's checks to the outside; nil without the column.
func (m *Matrix) toOutside(src int) []Result {
	if m.Outside == nil {
		return nil
	}
	return m.Outside[src]
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

func (c *Counts) addAll(rs []Result) {
	for _, r := range rs {
		c.add(r)
	}
}

// Row tallies the checks from container src, the outside's included.
func (m *Matrix) Row(src int) Counts {
	var c Counts
	for _, cell := range m.Results[src] {
		c.addAll(cell)
	}
	c.addAll(m.toOutside(src))
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

// Category is one cell of the summary: same or cross host, or to the
// outside; by address or by name.
type Category struct {
	CrossHost, ByName bool
	Outside           bool // from the containers to the outside
	Pairs             int  // ordered pairs of containers; for Outside, containers
	Counts
}

// Summary tallies checks by category, in the order same host by address,
// same host by name, cross host by address, cross host by name, and, with
// an outside column, outside by address and outside by name.
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
	if m.Outside != nil {
		cats = append(cats, m.outsideSummary()...)
	}
	return cats
}

// outsideSummary tallies the outside column: by address, then by name.
func (m *Matrix) outsideSummary() []Category {
	cats := []Category{{Outside: true, Pairs: len(m.Nodes)}, {Outside: true, ByName: true, Pairs: len(m.Nodes)}}
	for _, rs := range m.Outside {
		for c, r := range rs {
			if Check(c).ByName() {
				cats[1].add(r)
			} else {
				cats[0].add(r)
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

// Render writes the matrix: rows are sources, columns destinations, the
// outside (if the matrix has it) last.
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
	if m.Outside != nil {
		b.WriteString("  " + outsideLabel) // the last column: it needs no padding
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	for i := range m.Nodes {
		b.Reset()
		b.WriteString(pad(label[i], labelW))
		for j := range m.Nodes {
			b.WriteString("  " + pad(cell(m.Results[i][j]), colW))
		}
		if m.Outside != nil {
			b.WriteString("  " + cell(m.Outside[i]))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// RenderSummary writes the tally by category and the failures, if any.
func (m *Matrix) RenderSummary(w io.Writer) {
	cats := m.Summary()
	fmt.Fprintf(w, "%-24s %-16s %s\n", "", "by address", "by name")
	for k := 0; k < len(cats); k += 2 {
		fmt.Fprintf(w, "%-24s %-16s %s\n", cats[k].label(), tally(cats[k].Counts), tally(cats[k+1].Counts))
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

// label names a category's line in the summary.
func (c Category) label() string {
	switch {
	case c.Outside:
		return fmt.Sprintf("%s (%d containers)", outsideLabel, c.Pairs)
	case c.CrossHost:
		return fmt.Sprintf("cross host (%d pairs)", c.Pairs)
	default:
		return fmt.Sprintf("same host (%d pairs)", c.Pairs)
	}
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

// renderFailures lists each failed check with its last error, source by
// source, the outside after the containers.
func (m *Matrix) renderFailures(w io.Writer) {
	for i, src := range m.Nodes {
		for j, dst := range m.Nodes {
			renderFailed(w, src.Name, dst.Name, m.Results[i][j])
		}
		renderFailed(w, src.Name, outsideLabel, m.toOutside(i))
	}
}

// renderFailed lists the failed checks of one cell.
func renderFailed(w io.Writer, src, dst string, rs []Result) {
	for c, r := range rs {
		if !r.OK && r.Attempts > 0 {
			fmt.Fprintf(w, "  ✗ %s → %s %s (%d tries): %s\n", src, dst, Check(c), r.Attempts, oneLine(r.Err))
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
