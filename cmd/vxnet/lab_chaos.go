package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vxnet/vxnet/lab"
)

const labChaosUsage = `Usage: vxnet lab chaos [--hosts N] [--seed S] [--duration D] [--faults LIST] [flags]

Runs a fault campaign on a lab of its own: it builds N hosts, then for
--duration it injects faults into hosts and runs a workload through the
hosts' CLI, both drawn from --seed, while it checks the cheap invariants
every few seconds; then it heals every fault, waits for the cluster to
converge, checks every invariant, removes everything through the API and
takes the lab down. Exit status 1 if any invariant was violated.

Faults (--faults, at most --max-faulty hosts at once; some last longer than
the profile's grace and reap times when the campaign is long enough):
  kill        kill -9 the agent, restart it later
  term        SIGTERM the agent (a stop), restart it later
  pause       SIGSTOP the agent, SIGCONT it later
  partition   drop everything in and out of the host's underlay link
              (nftables rules in the host's namespace), then heal
  lose-state  kill -9, move the data directory away, start afresh later
Clocks are never changed.

Workload, on random hosts that are up (a partitioned host counts): create
and remove overlay networks (half with a fixed --subnet) and endpoints
(containers: namespaces the campaign makes; some in a service), and the
same network or endpoint name from two hosts at once, sometimes across a
partition.

Invariants (continuously: unique-address, in-subnet, disjoint-subnets,
networks-survive; the others at the end):
%s
Each violation names its invariant, its evidence (hosts, addresses, names),
the time in the run and the seed; the report ends with the command that
replays the run. Progress lines: time in the run, what (op, fault, a
violation), the step of the plan (#N), the host, details.

Example:
  sudo vxnet lab chaos --hosts 5 --duration 5m --profile fast
  sudo vxnet lab chaos --seed 42 --faults kill,partition --json > report.json
  sudo vxnet lab chaos --seed 42 --keep     # then look around; vxnet lab down --id vxchaos

Flags:
`

func cmdLabChaos(ctx context.Context, std stdio, args []string) int {
	var invs strings.Builder
	for _, inv := range lab.Invariants {
		fmt.Fprintf(&invs, "  %-17s %s\n", inv.Name, wrap(inv.What, 58, strings.Repeat(" ", 20)))
	}
	f := newLabFlags(std, "chaos", fmt.Sprintf(labChaosUsage, invs.String()), true)
	f.fs.Lookup("id").DefValue, f.cfg.ID = lab.DefaultChaosID, lab.DefaultChaosID
	f.fs.Lookup("hosts").DefValue, f.cfg.Hosts = fmt.Sprint(lab.DefaultChaosHosts), lab.DefaultChaosHosts
	cc := lab.ChaosConfig{Duration: lab.DefaultChaosDuration, Converge: lab.DefaultChaosConverge}
	f.fs.Int64Var(&cc.Seed, "seed", 0, "`S` seeds the plan of faults and operations (0: pick one at random; printed)")
	f.fs.DurationVar(&cc.Duration, "duration", cc.Duration, "how long faults and operations go on")
	faults := f.fs.String("faults", "all", "fault kinds, a comma-separated `LIST` of kill, term, pause, partition, lose-state; or all, or none")
	f.fs.IntVar(&cc.MaxFaulty, "max-faulty", 1, "at most `N` hosts faulty at once, 1 to hosts-1")
	f.fs.DurationVar(&cc.Converge, "converge", cc.Converge, "bound on the wait for the tables to agree after the faults")
	f.fs.BoolVar(&cc.Keep, "keep", false, "leave the lab up at the end, as the final checks saw it")
	asJSON := f.fs.Bool("json", false, "write the report as JSON on stdout (progress goes to stderr)")
	if code := f.parse(std, args); code >= 0 {
		return code
	}
	var err error
	if cc.Faults, err = lab.ParseFaults(*faults); err != nil {
		fmt.Fprintf(std.stderr, "vxnet lab chaos: --faults: %v\n", err)
		return 2
	}
	cc.Lab = f.cfg
	if *asJSON {
		cc.Lab.Out = std.stderr
	}
	r, err := lab.Chaos(ctx, cc)
	if *asJSON {
		enc := json.NewEncoder(std.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else if r.Seed != 0 {
		lab.RenderReport(std.stdout, r)
	}
	if err != nil {
		return labFail(std, "chaos", err)
	}
	if !r.OK() {
		return 1
	}
	return 0
}

// wrap breaks s into lines of at most width characters, the lines after
// the first starting with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
