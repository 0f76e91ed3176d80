package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is what a campaign did and found.
type Report struct {
	ID         string `json:"id"`
	Seed       int64  `json:"seed"`
	Hosts      int    `json:"hosts"`
	Profile    string `json:"profile"`
	Duration   string `json:"duration"`
	FaultKinds string `json:"faultKinds"`
	MaxFaulty  int    `json:"maxFaulty"`
	// Replay is the command that runs the same campaign again.
	Replay        string            `json:"replay"`
	PlannedOps    int               `json:"plannedOps"`
	PlannedFaults int               `json:"plannedFaults"`
	Elapsed       RunTime           `json:"elapsed"`
	ConvergedAt   RunTime           `json:"convergedAt"` // when the tables agreed after the faults; 0: they did not
	Kept          bool              `json:"kept"`        // the lab was left up
	Invariants    []InvariantResult `json:"invariants"`
	Violations    []Violation       `json:"violations"`
	Ops           []OpRecord        `json:"ops"`
	Faults        []FaultRecord     `json:"faults"`
}

// InvariantResult says whether an invariant was checked and how many
// violations it has.
type InvariantResult struct {
	Name       string `json:"name"`
	Checked    bool   `json:"checked"`
	Violations int    `json:"violations"`
}

// OK reports whether the campaign found no violation.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// checkedIn says in which phase's checks an invariant runs: those of the
// campaign phase run from the start.
var checkedIn = map[string]string{
	InvTablesAgree: PhaseFinal, InvUniqueNames: PhaseFinal, InvReachable: PhaseFinal, InvDNS: PhaseFinal,
	InvLeases: PhaseFinal, InvDevices: PhaseFinal, InvCleanRemoval: PhaseCleanup, InvNamespaces: "down",
}

// report builds the report.
func (c *campaign) report() Report {
	ops, faults, viol := c.hist.snapshot()
	cfg := c.cfg
	r := Report{ID: cfg.Lab.ID, Seed: cfg.Seed, Hosts: cfg.Lab.Hosts, Profile: cfg.Lab.Profile, Duration: cfg.Duration.String(),
		FaultKinds: faultList(cfg.Faults), MaxFaulty: cfg.MaxFaulty, Replay: cfg.ReplayCommand(),
		PlannedOps: len(c.plan.Ops), PlannedFaults: len(c.plan.Faults), Elapsed: c.now(), ConvergedAt: c.converged,
		Kept: c.kept, Violations: viol, Ops: ops, Faults: faults}
	for _, inv := range Invariants {
		p, ok := checkedIn[inv.Name]
		res := InvariantResult{Name: inv.Name, Checked: c.l != nil && (!ok || slices.Contains(c.phases, p))}
		for _, v := range viol {
			if v.Invariant == inv.Name {
				res.Violations++
			}
		}
		r.Invariants = append(r.Invariants, res)
	}
	return r
}

// RenderReport writes the report for a person: what ran, each invariant,
// each violation with its evidence, the seed and the command to replay.
func RenderReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "\nchaos report: lab %s, %d hosts, profile %s, seed %d, %s, faults %s (at most %d at once), %s in all\n",
		r.ID, r.Hosts, r.Profile, r.Seed, r.Duration, r.FaultKinds, r.MaxFaulty, r.Elapsed)
	fmt.Fprintf(w, "  operations: %s\n", tallyOps(r.Ops))
	fmt.Fprintf(w, "  faults: %s\n", tallyFaults(r.Faults))
	if r.ConvergedAt > 0 {
		fmt.Fprintf(w, "  after the faults, the tables agreed at %s\n", r.ConvergedAt)
	} else {
		fmt.Fprintf(w, "  after the faults, the tables did not agree\n")
	}
	fmt.Fprintln(w, "invariants:")
	for _, inv := range r.Invariants {
		switch {
		case !inv.Checked:
			fmt.Fprintf(w, "  -  %-18s not checked\n", inv.Name)
		case inv.Violations == 0:
			fmt.Fprintf(w, "  ✓  %-18s\n", inv.Name)
		default:
			fmt.Fprintf(w, "  ✗  %-18s %d violation(s)\n", inv.Name, inv.Violations)
		}
	}
	for i, v := range r.Violations {
		if i == 0 {
			fmt.Fprintln(w, "violations:")
		}
		seen := ""
		if v.Seen > 1 {
			seen = fmt.Sprintf(", seen %d times", v.Seen)
		}
		fmt.Fprintf(w, "  %d. [%s] %s — at %s (%s%s), seed %d\n", i+1, v.Invariant, v.Subject, v.At, v.Phase, seen, r.Seed)
		fmt.Fprintf(w, "     %s\n", v.Evidence)
		if len(v.Hosts) > 0 {
			fmt.Fprintf(w, "     hosts: %s\n", strings.Join(v.Hosts, " "))
		}
	}
	if r.OK() {
		fmt.Fprintf(w, "PASSED: no violation (seed %d)\n", r.Seed)
	} else {
		fmt.Fprintf(w, "FAILED: %d violation(s), seed %d; replay: %s\n", len(r.Violations), r.Seed, r.Replay)
	}
}

// tallyOps counts operations by outcome.
func tallyOps(ops []OpRecord) string {
	n := map[Outcome]int{}
	for _, o := range ops {
		n[o.Outcome]++
	}
	return fmt.Sprintf("%d (ok %d, fail %d, unknown %d, skipped %d)", len(ops),
		n[OutcomeOK], n[OutcomeFail], n[OutcomeUnknown], n[OutcomeSkipped])
}

// tallyFaults counts faults by kind.
func tallyFaults(fs []FaultRecord) string {
	if len(fs) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range AllFaults() {
		n := 0
		for _, f := range fs {
			if f.Kind == k {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return fmt.Sprintf("%d (%s)", len(fs), strings.Join(parts, ", "))
}
