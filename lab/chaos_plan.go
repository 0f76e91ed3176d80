package lab

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Plan is a campaign's schedule, drawn from its seed and its config alone
// (NewPlan): the same seed and config give the same plan, so a run
// replays. What each step finds when it runs (which hosts are up, whether
// an operation succeeds) is the run's, and goes to the history.
type Plan struct {
	Seed   int64
	Faults []FaultStep // by start time within each lane
	Ops    []OpStep    // by start time
}

// FaultStep is one planned fault.
type FaultStep struct {
	At   time.Duration // planned start, from the campaign's start
	For  time.Duration // how long the host stays faulty
	Kind FaultKind
	Host string
	// Lane is the nemesis lane that runs it: lanes run side by side (as
	// many as ChaosConfig.MaxFaulty), the steps of one lane one after the
	// other.
	Lane int
}

// OpKind is a kind of workload operation.
type OpKind int

const (
	OpNetworkCreate       OpKind = iota // network create on one host
	OpNetworkCreateTwice                // the same network name from two hosts at once
	OpNetworkRemove                     // network rm on the host that created it
	OpEndpointCreate                    // a container and its endpoint on one host
	OpEndpointCreateTwice               // the same endpoint name from two hosts at once
	OpEndpointRemove                    // endpoint rm, then the container goes
	numOpKinds
)

var opNames = [numOpKinds]string{"network create", "network create ×2", "network rm", "endpoint create", "endpoint create ×2", "endpoint rm"}

func (k OpKind) String() string {
	if k < 0 || k >= numOpKinds {
		return fmt.Sprintf("OpKind(%d)", int(k))
	}
	return opNames[k]
}

// twice reports whether the operation runs from two hosts at once.
func (k OpKind) twice() bool { return k == OpNetworkCreateTwice || k == OpEndpointCreateTwice }

// OpStep is one planned operation of the workload.
type OpStep struct {
	At       time.Duration // planned start, from the campaign's start
	Kind     OpKind
	Network  string
	Subnet   string // a fixed --subnet for a network creation; empty: automatic
	Endpoint string // endpoint name (endpoint operations)
	Service  string // --service of an endpoint creation, or empty
	// Hosts is the order in which hosts are tried: the operation runs on
	// the first that is up when it starts (the first two for the ×2
	// kinds). Removals run where the thing was created instead.
	Hosts []string
	// Split puts a partitioned host first, when there is one, so that the
	// two sides of a ×2 operation (or a creation) straddle the partition.
	Split bool
}

// Plan limits: enough load to exercise every path, little enough for a
// 2-core machine to check every pair of endpoints at the end.
const (
	maxPlanNetworks  = 4  // networks the workload keeps at most
	maxPlanEndpoints = 14 // endpoints the workload keeps at most
	faultRecovery    = 5 * time.Second
	fixedSubnetBase  = "172.20" // fixed subnets: 172.20.K.0/24, outside the 10.0.0.0/8 default pools
)

// NewPlan draws the schedule of a campaign from cfg.Seed (cfg with its
// defaults). Faults: lanes of faults (cfg.MaxFaulty of them), each fault
// a kind of cfg.Faults on a host no other lane holds at the time, lasting
// from under the profile's grace time to, when the campaign is long
// enough, past its reap time. Operations: every 0.3 to 3.5 s, weighted by
// what the workload holds (networks, endpoints), so that it keeps
// creating and removing.
func NewPlan(cfg ChaosConfig) Plan {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15))
	hosts := make([]string, cfg.Lab.Hosts)
	for i := range hosts {
		hosts[i] = HostName(i + 1)
	}
	p := Plan{Seed: cfg.Seed}
	if len(cfg.Faults) > 0 {
		p.Faults = planFaults(r, cfg, hosts)
	}
	g := &opGen{r: r, hosts: hosts}
	for t := time.Second; ; {
		t += between(r, 300*time.Millisecond, 3500*time.Millisecond)
		if t >= cfg.Duration-2*time.Second {
			break
		}
		p.Ops = append(p.Ops, g.next(t))
	}
	return p
}

// between draws a duration in [lo, hi).
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// planFaults lays out cfg.MaxFaulty lanes of faults.
func planFaults(r *rand.Rand, cfg ChaosConfig, hosts []string) []FaultStep {
	tm := timingsOf(cfg.Lab.Profile)
	var out []FaultStep
	for lane := range cfg.MaxFaulty {
		t := between(r, 3*time.Second, 8*time.Second)
		for {
			room := cfg.Duration - t - faultRecovery
			if room < time.Second {
				break
			}
			f := FaultStep{At: t, Kind: cfg.Faults[r.IntN(len(cfg.Faults))], For: faultDuration(r, tm, room), Lane: lane}
			free := freeHosts(hosts, out, f.At, f.At+f.For+faultRecovery)
			if len(free) > 0 {
				f.Host = free[r.IntN(len(free))]
				out = append(out, f)
			}
			t += f.For + faultRecovery + between(r, 3*time.Second, 15*time.Second)
		}
	}
	return out
}

// faultDuration draws how long a fault lasts: within the grace time (the
// cluster may not even notice), between grace and reap, or past the reap
// time when room allows (the cluster forgets the host's rows and hands its
// address blocks to an heir).
func faultDuration(r *rand.Rand, tm profileTimings, room time.Duration) time.Duration {
	x := r.Float64()
	var d time.Duration
	switch {
	case x < 0.25:
		d = between(r, max(tm.Grace/2, 200*time.Millisecond), max(tm.Grace, 400*time.Millisecond))
	case x < 0.45 && tm.Reap+25*time.Second <= room:
		d = between(r, tm.Reap+5*time.Second, tm.Reap+25*time.Second)
	default:
		d = between(r, max(2*tm.Grace, 2*time.Second), 20*time.Second)
	}
	return min(d, room)
}

// freeHosts lists the hosts no planned fault holds during [from, to).
func freeHosts(hosts []string, planned []FaultStep, from, to time.Duration) []string {
	var free []string
	for _, h := range hosts {
		busy := slices.ContainsFunc(planned, func(f FaultStep) bool {
			return f.Host == h && f.At < to && from < f.At+f.For+faultRecovery
		})
		if !busy {
			free = append(free, h)
		}
	}
	return free
}

// opGen draws operations from a model of what the workload holds: its
// networks and their endpoints (as planned; whether each operation then
// succeeds is the run's business).
type opGen struct {
	r      *rand.Rand
	hosts  []string
	nets   []*genNet
	nNet   int // networks named so far
	nEp    int // endpoints named so far
	nFixed int // fixed subnets handed out so far
}

type genNet struct {
	name     string
	eps      []string
	draining bool // endpoint removals go here first; no new endpoints
}

func (g *opGen) endpoints() int {
	n := 0
	for _, nt := range g.nets {
		n += len(nt.eps)
	}
	return n
}

// next draws the operation planned at t.
func (g *opGen) next(t time.Duration) OpStep {
	op := OpStep{At: t, Hosts: g.hostOrder()}
	switch op.Kind = g.pickKind(); op.Kind {
	case OpNetworkCreate, OpNetworkCreateTwice:
		g.nNet++
		op.Network = fmt.Sprintf("n%d", g.nNet)
		if g.r.IntN(2) == 0 {
			op.Subnet = fmt.Sprintf("%s.%d.0/24", fixedSubnetBase, g.nFixed%256)
			g.nFixed++
		}
		op.Split = op.Kind.twice() && g.r.IntN(2) == 0
		g.nets = append(g.nets, &genNet{name: op.Network})
	case OpNetworkRemove:
		i := slices.IndexFunc(g.nets, func(n *genNet) bool { return len(n.eps) == 0 })
		op.Network = g.nets[i].name
		g.nets = slices.Delete(g.nets, i, i+1)
	case OpEndpointCreate, OpEndpointCreateTwice:
		nt := g.pickNet(func(n *genNet) bool { return !n.draining })
		g.nEp++
		op.Network, op.Endpoint = nt.name, fmt.Sprintf("e%d", g.nEp)
		if g.r.IntN(5) < 2 {
			op.Service = []string{"sa", "sb"}[g.r.IntN(2)]
		}
		op.Split = op.Kind.twice() && g.r.IntN(2) == 0
		nt.eps = append(nt.eps, op.Endpoint)
	case OpEndpointRemove:
		nt := g.pickNet(func(n *genNet) bool { return n.draining && len(n.eps) > 0 })
		if nt == nil {
			nt = g.pickNet(func(n *genNet) bool { return len(n.eps) > 0 })
		}
		i := g.r.IntN(len(nt.eps))
		op.Network, op.Endpoint = nt.name, nt.eps[i]
		nt.eps = slices.Delete(nt.eps, i, i+1)
	}
	g.maybeDrain()
	return op
}

// pickKind draws a kind, weighted by what the model holds.
func (g *opGen) pickKind() OpKind {
	eps, open := g.endpoints(), 0
	empty := false
	for _, n := range g.nets {
		if !n.draining {
			open++
		}
		empty = empty || len(n.eps) == 0
	}
	var w [numOpKinds]float64
	switch {
	case len(g.nets) < 2:
		w[OpNetworkCreate] = 6
	case len(g.nets) < maxPlanNetworks:
		w[OpNetworkCreate], w[OpNetworkCreateTwice] = 2, 0.7
	}
	if empty && len(g.nets) > 1 {
		w[OpNetworkRemove] = 1.5
	}
	if open > 0 && eps < maxPlanEndpoints {
		w[OpEndpointCreate], w[OpEndpointCreateTwice] = 7, 1
	}
	if eps > 0 {
		w[OpEndpointRemove] = 2 + float64(eps)/3
	}
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := g.r.Float64() * total
	for k, wk := range w {
		if x < wk {
			return OpKind(k)
		}
		x -= wk
	}
	return OpNetworkCreate // unreachable: some weight is always set
}

// pickNet draws one of the networks that satisfy ok, or nil.
func (g *opGen) pickNet(ok func(*genNet) bool) *genNet {
	var c []*genNet
	for _, n := range g.nets {
		if ok(n) {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[g.r.IntN(len(c))]
}

// maybeDrain now and then marks a network to be emptied, so that networks
// get removed too.
func (g *opGen) maybeDrain() {
	if len(g.nets) < 3 || g.r.IntN(12) != 0 {
		return
	}
	for _, n := range g.nets {
		if n.draining {
			return
		}
	}
	g.nets[g.r.IntN(len(g.nets))].draining = true
}

// hostOrder draws the order in which an operation tries the hosts.
func (g *opGen) hostOrder() []string {
	out := make([]string, len(g.hosts))
	for i, j := range g.r.Perm(len(g.hosts)) {
		out[i] = g.hosts[j]
	}
	return out
}

// profileTimings are the failure timings of an agent profile that fault
// durations are measured against: Grace, how long a failed host's rows
// stay visible; Reap, how long they are kept (hidden) before the cluster
// forgets them and passes the host's address blocks to an heir. They
// mirror kvs.FastTimings and kvs.DefaultConfig (FailedGrace, ReapAfter),
// which a test checks.
type profileTimings struct{ Grace, Reap time.Duration }

func timingsOf(profile string) profileTimings {
	if profile == "lan" {
		return profileTimings{Grace: 5 * time.Second, Reap: 24 * time.Hour}
	}
	return profileTimings{Grace: 500 * time.Millisecond, Reap: time.Minute}
}
