package lab

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vxnet/vxnet/kvs"
)

func planConfig(seed int64, hosts int, d time.Duration) ChaosConfig {
	return ChaosConfig{Lab: Config{Hosts: hosts}, Seed: seed, Duration: d}.withDefaults()
}

func TestNewPlan_sameSeedSamePlan(t *testing.T) {
	a, b := NewPlan(planConfig(42, 5, 5*time.Minute)), NewPlan(planConfig(42, 5, 5*time.Minute))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans from seed 42 differ")
	}
	if len(a.Ops) == 0 || len(a.Faults) == 0 {
		t.Fatalf("plan of 5 minutes has %d operations and %d faults", len(a.Ops), len(a.Faults))
	}
	if c := NewPlan(planConfig(43, 5, 5*time.Minute)); reflect.DeepEqual(a.Ops, c.Ops) || reflect.DeepEqual(a.Faults, c.Faults) {
		t.Error("seeds 42 and 43 give the same operations or faults")
	}
}

// TestNewPlan_faultsWithinLimits: faults of the allowed kinds, inside the
// campaign, never more than MaxFaulty at once, never two on one host.
func TestNewPlan_faultsWithinLimits(t *testing.T) {
	for _, maxFaulty := range []int{1, 2} {
		for seed := int64(1); seed <= 30; seed++ {
			cfg := planConfig(seed, 4, 4*time.Minute)
			cfg.MaxFaulty, cfg.Faults = maxFaulty, []FaultKind{FaultKill, FaultPartition}
			p := NewPlan(cfg)
			for i, f := range p.Faults {
				if !slices.Contains(cfg.Faults, f.Kind) || f.At+f.For > cfg.Duration || f.For <= 0 || f.Host == "" {
					t.Fatalf("seed %d: fault %+v outside the config", seed, f)
				}
				overlapping := 1
				for j, g := range p.Faults {
					if i == j || !(g.At < f.At+f.For+faultRecovery && f.At < g.At+g.For+faultRecovery) {
						continue
					}
					if g.Host == f.Host {
						t.Fatalf("seed %d: faults %+v and %+v overlap on one host", seed, f, g)
					}
					if g.At <= f.At {
						overlapping++
					}
				}
				if overlapping > maxFaulty {
					t.Fatalf("seed %d: %d faults at once at %v, max %d", seed, overlapping, f.At, maxFaulty)
				}
			}
		}
	}
}

// TestNewPlan_faultDurations: some faults outlast the reap time when the
// campaign has room (fast profile, 5 minutes), none when it has not (1
// minute) or when the profile's reap time is a day (lan); some are within
// the grace time.
func TestNewPlan_faultDurations(t *testing.T) {
	count := func(profile string, d time.Duration, pred func(time.Duration) bool) int {
		n := 0
		for seed := int64(1); seed <= 20; seed++ {
			cfg := planConfig(seed, 5, d)
			cfg.Lab.Profile = profile
			for _, f := range NewPlan(cfg).Faults {
				if pred(f.For) {
					n++
				}
			}
		}
		return n
	}
	reap, grace := timingsOf("fast").Reap, timingsOf("fast").Grace
	if n := count("fast", 5*time.Minute, func(d time.Duration) bool { return d > reap }); n == 0 {
		t.Error("no fault past the reap time in 20 campaigns of 5 minutes")
	}
	if n := count("fast", 5*time.Minute, func(d time.Duration) bool { return d <= grace }); n == 0 {
		t.Error("no fault within the grace time in 20 campaigns of 5 minutes")
	}
	if n := count("fast", time.Minute, func(d time.Duration) bool { return d > reap }); n != 0 {
		t.Errorf("%d faults past the reap time in campaigns of 1 minute", n)
	}
	if n := count("lan", 5*time.Minute, func(d time.Duration) bool { return d > time.Minute }); n != 0 {
		t.Errorf("%d faults over a minute with the lan profile", n)
	}
}

// TestNewPlan_opsFollowTheModel replays each plan's operations on a model:
// a removal names something created and not removed yet, a creation a
// network that exists; the limits hold; every kind shows up.
func TestNewPlan_opsFollowTheModel(t *testing.T) {
	kinds := map[OpKind]int{}
	for seed := int64(1); seed <= 20; seed++ {
		cfg := planConfig(seed, 5, 5*time.Minute)
		p := NewPlan(cfg)
		nets := map[string][]string{}
		var last time.Duration
		for _, op := range p.Ops {
			kinds[op.Kind]++
			if op.At < last || op.At >= cfg.Duration || len(op.Hosts) != 5 {
				t.Fatalf("seed %d: op %+v out of order or of the campaign", seed, op)
			}
			last = op.At
			eps, exists := nets[op.Network]
			switch op.Kind {
			case OpNetworkCreate, OpNetworkCreateTwice:
				if exists {
					t.Fatalf("seed %d: %v of existing network %s", seed, op.Kind, op.Network)
				}
				nets[op.Network] = nil
			case OpNetworkRemove:
				if !exists || len(eps) > 0 {
					t.Fatalf("seed %d: removal of network %s (exists %v, endpoints %v)", seed, op.Network, exists, eps)
				}
				delete(nets, op.Network)
			case OpEndpointCreate, OpEndpointCreateTwice:
				if !exists {
					t.Fatalf("seed %d: endpoint %s on missing network %s", seed, op.Endpoint, op.Network)
				}
				nets[op.Network] = append(eps, op.Endpoint)
			case OpEndpointRemove:
				i := slices.Index(eps, op.Endpoint)
				if i < 0 {
					t.Fatalf("seed %d: removal of missing endpoint %s on %s", seed, op.Endpoint, op.Network)
				}
				nets[op.Network] = slices.Delete(eps, i, i+1)
			}
			total := 0
			for _, e := range nets {
				total += len(e)
			}
			if len(nets) > maxPlanNetworks || total > maxPlanEndpoints {
				t.Fatalf("seed %d: %d networks, %d endpoints", seed, len(nets), total)
			}
		}
	}
	for k := range numOpKinds {
		if kinds[k] == 0 {
			t.Errorf("no %v in 20 plans", k)
		}
	}
}

func TestNewPlan_noFaults(t *testing.T) {
	cfg := planConfig(1, 3, time.Minute)
	cfg.Faults = []FaultKind{}
	if p := NewPlan(cfg); len(p.Faults) != 0 || len(p.Ops) == 0 {
		t.Errorf("no fault kinds: %d faults, %d operations", len(p.Faults), len(p.Ops))
	}
}

// TestTimingsOf_matchKVS: the timings fault durations are drawn against
// are the agent's (kvs.FastTimings for fast, kvs.DefaultConfig for lan).
func TestTimingsOf_matchKVS(t *testing.T) {
	for profile, kc := range map[string]kvs.Config{"fast": kvs.FastTimings(), "lan": kvs.DefaultConfig()} {
		if got := timingsOf(profile); got.Grace != kc.FailedGrace || got.Reap != kc.ReapAfter {
			t.Errorf("timingsOf(%s) = %+v, kvs has grace %v reap %v", profile, got, kc.FailedGrace, kc.ReapAfter)
		}
	}
}

func TestParseFaults(t *testing.T) {
	for in, want := range map[string][]FaultKind{
		"all":              AllFaults(),
		"none":             {},
		"kill":             {FaultKill},
		"pause, kill,kill": {FaultPause, FaultKill},
		"lose-state,term":  {FaultLoseState, FaultTerm},
	} {
		got, err := ParseFaults(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseFaults(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "kil", "kill,,pause", "ALL"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) succeeded", bad)
		}
	}
	if s := faultList([]FaultKind{FaultKill, FaultLoseState}); s != "kill,lose-state" {
		t.Errorf("faultList = %q", s)
	}
}

func TestChaosConfig_validateAndReplay(t *testing.T) {
	ok := planConfig(5, 5, time.Minute)
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ChaosConfig){
		"one host":      func(c *ChaosConfig) { c.Lab.Hosts = 1 },
		"all faulty":    func(c *ChaosConfig) { c.MaxFaulty = 5 },
		"short":         func(c *ChaosConfig) { c.Duration = time.Second },
		"bad profile":   func(c *ChaosConfig) { c.Lab.Profile = "wan" },
		"negative wait": func(c *ChaosConfig) { c.Converge = -time.Second },
	} {
		c := ok
		mod(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate succeeded", name)
		}
	}
	want := "vxnet lab chaos --hosts 5 --seed 5 --duration 1m0s --profile fast --faults kill,term,pause,partition,lose-state --max-faulty 1"
	if got := ok.ReplayCommand(); got != want {
		t.Errorf("ReplayCommand = %q, want %q", got, want)
	}
}
