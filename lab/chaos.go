package lab

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sync"
	"time"
)

// Defaults of ChaosConfig.
const (
	DefaultChaosID         = "vxchaos"
	DefaultChaosHosts      = 5
	DefaultChaosDuration   = 5 * time.Minute
	DefaultChaosConverge   = time.Minute
	DefaultChaosCheckEvery = 3 * time.Second
)

// ChaosConfig describes a fault campaign.
type ChaosConfig struct {
	// Lab is the lab the campaign builds and, unless Keep, takes down. It
	// must not be up. Default ID "vxchaos", default Hosts 5 (at least 2).
	Lab Config
	// Seed draws the plan (NewPlan). 0 picks one at random; the report
	// gives it, and the command that replays the run.
	Seed int64
	// Duration is how long faults and operations go on. Default 5 min.
	Duration time.Duration
	// Faults are the kinds of fault to inject. Nil: all of them; empty
	// (not nil): none, the workload alone.
	Faults []FaultKind
	// MaxFaulty is how many hosts may be faulty at once, 1 to Hosts-1.
	// Default 1: the promise under test is that the cluster survives any
	// one host.
	MaxFaulty int
	// Converge bounds the wait, after the faults are healed, for every
	// host to list the same tables. Default 1 min.
	Converge time.Duration
	// CheckEvery spaces the continuous checks. Default 3 s.
	CheckEvery time.Duration
	// Keep leaves the lab up at the end, as the final checks saw it.
	Keep bool
}

func (c ChaosConfig) withDefaults() ChaosConfig {
	if c.Lab.ID == "" {
		c.Lab.ID = DefaultChaosID
	}
	if c.Lab.Hosts == 0 {
		c.Lab.Hosts = DefaultChaosHosts
	}
	c.Lab = c.Lab.withDefaults()
	if c.Duration == 0 {
		c.Duration = DefaultChaosDuration
	}
	if c.Faults == nil {
		c.Faults = AllFaults()
	}
	if c.MaxFaulty == 0 {
		c.MaxFaulty = 1
	}
	if c.Converge == 0 {
		c.Converge = DefaultChaosConverge
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = DefaultChaosCheckEvery
	}
	return c
}

func (c ChaosConfig) validate() error {
	if err := c.Lab.validate(); err != nil {
		return err
	}
	switch {
	case c.Lab.Hosts < 2:
		return fmt.Errorf("hosts %d: a campaign wants at least 2", c.Lab.Hosts)
	case c.MaxFaulty < 1 || c.MaxFaulty >= c.Lab.Hosts:
		return fmt.Errorf("max faulty %d: want 1 to %d (hosts - 1)", c.MaxFaulty, c.Lab.Hosts-1)
	case c.Duration < 10*time.Second:
		return fmt.Errorf("duration %v: want at least 10s", c.Duration)
	case c.Converge <= 0 || c.CheckEvery <= 0:
		return fmt.Errorf("converge %v, check every %v: want positive durations", c.Converge, c.CheckEvery)
	}
	return nil
}

// ReplayCommand is the command line that runs the same campaign again.
func (c ChaosConfig) ReplayCommand() string {
	return fmt.Sprintf("vxnet lab chaos --hosts %d --seed %d --duration %v --profile %s --faults %s --max-faulty %d",
		c.Lab.Hosts, c.Seed, c.Duration, c.Lab.Profile, faultList(c.Faults), c.MaxFaulty)
}

// Chaos runs a fault campaign: it builds a lab of cfg.Lab.Hosts hosts, runs
// the plan drawn from the seed (faults on hosts, a workload of networks
// and endpoints through the hosts' CLI) for cfg.Duration while checking
// the cheap invariants every cfg.CheckEvery, heals every fault, waits for
// the tables to converge, checks every invariant (Invariants), removes
// everything through the API and takes the lab down (unless cfg.Keep).
// Violations are in the report; the error says why the campaign could not
// run or finish (the lab did not come up, ctx ended).
func Chaos(ctx context.Context, cfg ChaosConfig) (Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Seed == 0 {
		cfg.Seed = rand.Int64N(1<<53) + 1 // fits a JSON number exactly
	}
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	if err := chaosTools(cfg.Faults); err != nil {
		return Report{}, err
	}
	c := &campaign{cfg: cfg, plan: NewPlan(cfg), out: cfg.Lab.Out, health: map[string]*hostHealth{}, netLocks: map[string]*sync.Mutex{}}
	c.start = time.Now()
	c.say("plan", "lab %s: %d hosts, profile %s, seed %d, %v; faults %s, at most %d host(s) faulty at once",
		cfg.Lab.ID, cfg.Lab.Hosts, cfg.Lab.Profile, cfg.Seed, cfg.Duration, faultList(cfg.Faults), cfg.MaxFaulty)
	c.say("plan", "%d operations, %d faults; replay with: %s", len(c.plan.Ops), len(c.plan.Faults), cfg.ReplayCommand())
	l, err := Up(ctx, cfg.Lab)
	if err != nil {
		return c.report(), err
	}
	c.l = l
	l.cfg.Out = io.Discard // the campaign tells its own story
	for _, h := range l.State().Hosts {
		c.health[h.Name] = &hostHealth{since: time.Now()}
	}
	c.start = time.Now()
	c.say("start", "lab up; faults and operations for %v", cfg.Duration)
	c.campaign(ctx)
	if ctx.Err() == nil {
		c.final(ctx)
	}
	if c.kept = cfg.Keep && ctx.Err() == nil; c.kept {
		c.sayKept()
	} else {
		cctx, cancel := cleanupContext(ctx)
		c.cleanup(cctx, ctx.Err() == nil)
		cancel()
	}
	r := c.report()
	if ctx.Err() != nil {
		return r, fmt.Errorf("campaign interrupted: %w", ctx.Err())
	}
	return r, nil
}

// chaosTools checks that the commands a campaign runs are installed.
func chaosTools(faults []FaultKind) error {
	tools := map[string]string{"ping": "iputils-ping", "dig": "dnsutils"}
	if slices.Contains(faults, FaultPartition) {
		tools["nft"] = "nftables"
	}
	for _, t := range sortedKeys(tools) {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("a campaign needs %s: install %s (make deps)", t, tools[t])
		}
	}
	return nil
}

// campaign is one run of Chaos.
type campaign struct {
	cfg   ChaosConfig
	plan  Plan
	l     *Lab
	start time.Time
	hist  history

	outMu sync.Mutex
	out   io.Writer

	mu         sync.Mutex
	health     map[string]*hostHealth
	containers []*chaosContainer
	netLocks   map[string]*sync.Mutex
	nContainer int         // changed only under the lab's lock (newContainer)
	finalObs   Observation // what the final checks saw
	converged  RunTime     // when the tables agreed (0: they did not)
	phases     []string    // the phases whose checks ran: final, cleanup, down
	kept       bool        // the lab was left up
}

// hostState is what the nemesis did to a host.
type hostState int

const (
	hostUp          hostState = iota
	hostDown                  // agent stopped (kill, term, lose-state) or restarting
	hostPaused                // agent stopped by SIGSTOP
	hostPartitioned           // agent running, cut off the underlay
)

// hostHealth is one host as the nemesis left it.
type hostHealth struct {
	state   hostState
	since   time.Time // when the state last changed
	claimed bool      // a nemesis lane holds it
}

// chaosContainer is a namespace the workload made for an endpoint.
type chaosContainer struct {
	Netns, Host, Network, Name string
	gone                       bool // its namespace was deleted
}

// now is the time in the run.
func (c *campaign) now() RunTime { return RunTime(time.Since(c.start)) }

// say prints a progress line: time in the run, what, details.
func (c *campaign) say(what, format string, args ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.out, "%8s  %-8s %s\n", c.now(), what, fmt.Sprintf(format, args...))
}

// violate records vs and prints the new ones.
func (c *campaign) violate(phase string, vs ...[]Violation) {
	for _, v := range c.hist.violate(c.now(), phase, slices.Concat(vs...)) {
		c.say("✗ "+v.Invariant, "%s: %s", v.Subject, v.Evidence)
	}
}

// settle is how long a host back from a fault is left out of the
// continuous checks: the cluster's failure detection and table sync take
// a few grace times.
func (c *campaign) settle() time.Duration {
	return 5*time.Second + 3*timingsOf(c.cfg.Lab.Profile).Grace
}

// setHost records what the nemesis did to host.
func (c *campaign) setHost(host string, s hostState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[host]
	h.state, h.since = s, time.Now()
}

// hostsWhere lists the hosts (in order) whose health satisfies ok.
func (c *campaign) hostsWhere(ok func(*hostHealth) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, h := range c.l.State().Hosts {
		if ok(c.health[h.Name]) {
			out = append(out, h.Name)
		}
	}
	return out
}

// settledHosts lists the hosts up, with no fault, for at least settle.
func (c *campaign) settledHosts() []string {
	return c.hostsWhere(func(h *hostHealth) bool { return h.state == hostUp && time.Since(h.since) >= c.settle() })
}

// liveContainers lists the containers whose namespace exists, as views to
// fill.
func (c *campaign) liveContainers() []ContainerView {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ContainerView
	for _, x := range c.containers {
		if !x.gone {
			out = append(out, ContainerView{Netns: x.Netns, Host: x.Host, Network: x.Network, Name: x.Name})
		}
	}
	return out
}

// campaign runs the nemesis lanes, the workload and the continuous checks
// until the campaign's duration is over and every fault is healed.
func (c *campaign) campaign(ctx context.Context) {
	during, cancel := context.WithDeadline(ctx, c.start.Add(c.cfg.Duration))
	defer cancel()
	var wg sync.WaitGroup
	for lane := range c.cfg.MaxFaulty {
		wg.Go(func() { c.nemesis(during, ctx, lane) })
	}
	wg.Go(func() { c.workload(during, ctx) })
	wg.Go(func() { c.watch(during) })
	wg.Wait()
	c.say("end", "faults and operations over")
}

// watch runs the cheap checks every CheckEvery on the settled hosts and
// every container. A candidate counts only if the next check sees it
// again, so a change caught half-way (an address released by one
// container and taken by another between two reads) is not a violation.
func (c *campaign) watch(ctx context.Context) {
	pending := map[string]bool{}
	seen := map[string]bool{} // networks some host other than their creator listed
	for {
		pause(ctx, c.cfg.CheckEvery)
		if ctx.Err() != nil {
			return
		}
		settled := c.settledHosts()
		o := c.l.observe(ctx, settled, c.liveContainers())
		if ctx.Err() != nil || !slices.Equal(settled, c.settledHosts()) {
			continue // a fault began meanwhile: the sample is not clean
		}
		ops, faults, _ := c.hist.snapshot()
		var expected []expectedNetwork
		for _, n := range expectedNetworks(ops) {
			seen[n.Name] = seen[n.Name] || listedElsewhere(o.Hosts, n)
			if established(n, seen[n.Name], faults, c.now()) {
				expected = append(expected, n)
			}
		}
		cands := slices.Concat(checkAddresses(o, false), checkSubnets(o), checkSurvival(expected, o.Hosts, faults))
		next := map[string]bool{}
		var confirmed []Violation
		for _, v := range cands {
			k := v.Invariant + "\x00" + v.Subject
			if pending[k] {
				confirmed = append(confirmed, v)
			}
			next[k] = true
		}
		pending = next
		c.violate(PhaseCampaign, confirmed)
	}
}

// listedElsewhere reports whether a host other than n's creator lists n.
func listedElsewhere(views []HostView, n expectedNetwork) bool {
	return slices.ContainsFunc(answering(views), func(v HostView) bool {
		return v.Host != n.Creator && slices.ContainsFunc(v.Networks, func(r NetworkRow) bool { return r.Name == n.Name })
	})
}

// sayKept tells how to look around a kept lab.
func (c *campaign) sayKept() {
	s := c.l.State()
	c.say("kept", "lab %s is up as the final checks saw it (--keep):", s.ID)
	c.say("kept", "  %s --socket %s endpoint ls", s.Binary, s.Hosts[0].Socket)
	c.say("kept", "  %s", s.statusDownHint())
}

// errText is err's text, or empty.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
