package lab

import (
	"bytes"
	"strings"
	"testing"
)

func testMatrix() *Matrix {
	m := NewMatrix([]Node{
		{Name: "h1c1", Host: "h1", Addr: "10.0.0.2"},
		{Name: "h1c2", Host: "h1", Addr: "10.0.0.3"},
		{Name: "h2c1", Host: "h2", Addr: "10.0.0.10"},
	})
	for i := range m.Nodes {
		for j := range m.Nodes {
			for c := range m.Results[i][j] {
				m.Results[i][j][c] = Result{OK: true, Attempts: 1}
			}
		}
	}
	return m
}

func TestMatrix_render_allPass(t *testing.T) {
	m := testMatrix()
	m.Results[2][0][PingAddr].Attempts = 2
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	want := `each cell: ping tcp (by address) ping tcp dns (by name); ✓ passed, ✗ failed
from \ to          h1c1    h1c2    h2c1
h1c1 h1 10.0.0.2   ·       ✓✓ ✓✓✓  ✓✓ ✓✓✓
h1c2 h1 10.0.0.3   ✓✓ ✓✓✓  ·       ✓✓ ✓✓✓
h2c1 h2 10.0.0.10  ✓✓ ✓✓✓  ✓✓ ✓✓✓  ·
                         by address       by name
same host (2 pairs)      4/4 ✓            6/6 ✓
cross host (4 pairs)     8/8 ✓            12/12 ✓
all 30 checks passed (1 passed only on a retry)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if m.Failed() {
		t.Error("Failed() with every check passed")
	}
}

func TestMatrix_render_failures(t *testing.T) {
	m := testMatrix()
	m.Results[0][2][DNSName] = Result{Attempts: 3, Err: "dig h2c1: answer \"\", want 10.0.0.10"}
	m.Results[1][0][TCPAddr] = Result{Attempts: 3, Err: "dial tcp:\n connection refused"}
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	out := b.String()
	for _, want := range []string{
		"h1c1 h1 10.0.0.2   ·       ✓✓ ✓✓✓  ✓✓ ✓✓✗",
		"h1c2 h1 10.0.0.3   ✓✗ ✓✓✓  ·       ✓✓ ✓✓✓",
		"same host (2 pairs)      3/4 ✗            6/6 ✓",
		"cross host (4 pairs)     8/8 ✓            11/12 ✗",
		"2 of 30 checks FAILED",
		"✗ h1c1 → h2c1 dns (3 tries): dig h2c1: answer \"\", want 10.0.0.10",
		"✗ h1c2 → h1c1 tcp (3 tries): dial tcp: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !m.Failed() {
		t.Error("Failed() false with failed checks")
	}
	if r := m.Row(1); r.Passed != 9 || r.Total != 10 {
		t.Errorf("Row(1) = %+v", r)
	}
}

func TestMatrix_oneContainer(t *testing.T) {
	m := NewMatrix([]Node{{Name: "h1c1", Host: "h1", Addr: "10.0.0.2"}})
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	if m.Failed() || !strings.Contains(b.String(), "all 0 checks passed") {
		t.Errorf("one container:\n%s", b.String())
	}
}

func TestCheck_String(t *testing.T) {
	for c := range NumChecks {
		if strings.HasPrefix(c.String(), "Check(") {
			t.Errorf("check %d has no name", c)
		}
	}
	if NumChecks.String() != "Check(5)" || !PingName.ByName() || TCPAddr.ByName() {
		t.Error("String or ByName")
	}
}

// TestMatrix_notRun: a check left out (DemoConfig.Checks) shows · and
// counts neither as passed nor as failed.
func TestMatrix_notRun(t *testing.T) {
	m := testMatrix()
	for i := range m.Nodes {
		for j := range m.Nodes {
			if i != j {
				m.Results[i][j][DNSName] = Result{}
			}
		}
	}
	if tot := m.Total(); tot.Total != 24 || tot.Passed != 24 || m.Failed() {
		t.Errorf("Total = %+v, Failed = %v; want 24 of 24 run checks passed", tot, m.Failed())
	}
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	if out := b.String(); !strings.Contains(out, "h1c1 h1 10.0.0.2   ·       ✓✓ ✓✓·") || strings.Count(out, "✗") != 1 { // the legend's only
		t.Errorf("render:\n%s", out)
	}
}

// testMatrixOutside is testMatrix with an outside column, every check
// to the outside passed.
func testMatrixOutside() *Matrix {
	m := testMatrix()
	m.AddOutside()
	for i := range m.Outside {
		for c := range m.Outside[i] {
			m.Outside[i][c] = Result{OK: true, Attempts: 1}
		}
	}
	return m
}

// The outside is the last column; the container columns and the pair
// lines of the summary read as they do without it.
func TestMatrix_render_outside(t *testing.T) {
	m := testMatrixOutside()
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	want := `each cell: ping tcp (by address) ping tcp dns (by name); ✓ passed, ✗ failed
from \ to          h1c1    h1c2    h2c1    outside
h1c1 h1 10.0.0.2   ·       ✓✓ ✓✓✓  ✓✓ ✓✓✓  ✓✓ ✓✓✓
h1c2 h1 10.0.0.3   ✓✓ ✓✓✓  ·       ✓✓ ✓✓✓  ✓✓ ✓✓✓
h2c1 h2 10.0.0.10  ✓✓ ✓✓✓  ✓✓ ✓✓✓  ·       ✓✓ ✓✓✓
                         by address       by name
same host (2 pairs)      4/4 ✓            6/6 ✓
cross host (4 pairs)     8/8 ✓            12/12 ✓
outside (3 containers)   6/6 ✓            9/9 ✓
all 45 checks passed
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// Without the column, the same results render as before it existed.
	var plain, with bytes.Buffer
	testMatrix().Render(&plain)
	m.Render(&with)
	for i, line := range strings.Split(plain.String(), "\n") {
		if got := strings.Split(with.String(), "\n")[i]; !strings.HasPrefix(got, line) {
			t.Errorf("line %d: %q does not extend %q", i, got, line)
		}
	}
}

func TestMatrix_outside_countsAndFailures(t *testing.T) {
	m := testMatrixOutside()
	m.Outside[1][TCPAddr] = Result{Attempts: 3, Err: "dial tcp 198.18.7.250:7777:\n i/o timeout"}
	m.Outside[2][DNSName] = Result{Attempts: 3, Err: `dig outside.test: answers "", want 198.18.7.250 for each`}
	m.Outside[0][PingName] = Result{Attempts: 0} // not run
	if r := m.Row(1); r.Passed != 14 || r.Total != 15 {
		t.Errorf("Row(1) = %+v, want 14 of 15 (10 to containers, 5 to the outside)", r)
	}
	if tot := m.Total(); tot.Passed != 42 || tot.Total != 44 || !m.Failed() {
		t.Errorf("Total = %+v, Failed = %v; want 42 of 44", tot, m.Failed())
	}
	cats := m.Summary()
	if len(cats) != 6 || !cats[4].Outside || cats[4].ByName || cats[4].Pairs != 3 || !cats[5].ByName {
		t.Fatalf("Summary() = %+v", cats)
	}
	if cats[4].Counts != (Counts{Passed: 5, Total: 6}) || cats[5].Counts != (Counts{Passed: 7, Total: 8}) {
		t.Errorf("outside by address %+v, by name %+v", cats[4].Counts, cats[5].Counts)
	}
	var b bytes.Buffer
	m.Render(&b)
	m.RenderSummary(&b)
	out := b.String()
	for _, want := range []string{
		"h1c1 h1 10.0.0.2   ·       ✓✓ ✓✓✓  ✓✓ ✓✓✓  ✓✓ ·✓✓",
		"h1c2 h1 10.0.0.3   ✓✓ ✓✓✓  ·       ✓✓ ✓✓✓  ✓✗ ✓✓✓",
		"h2c1 h2 10.0.0.10  ✓✓ ✓✓✓  ✓✓ ✓✓✓  ·       ✓✓ ✓✓✗",
		"outside (3 containers)   5/6 ✗            7/8 ✗",
		"2 of 44 checks FAILED",
		"✗ h1c2 → outside tcp (3 tries): dial tcp 198.18.7.250:7777: i/o timeout",
		`✗ h2c1 → outside dns (3 tries): dig outside.test: answers "", want 198.18.7.250 for each`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Without an outside column, the summary has the four pair categories only.
func TestMatrix_noOutside_summary(t *testing.T) {
	m := testMatrix()
	if cats := m.Summary(); len(cats) != 4 || m.Outside != nil {
		t.Errorf("Summary() = %+v", cats)
	}
	var b bytes.Buffer
	m.RenderSummary(&b)
	if strings.Contains(b.String(), "outside") {
		t.Errorf("summary mentions the outside:\n%s", b.String())
	}
}
