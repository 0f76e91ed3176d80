package lab

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RunTime is a moment of a campaign: the time since it started. It prints
// as "12.3s" and is seconds in JSON.
type RunTime time.Duration

func (t RunTime) String() string { return fmt.Sprintf("%.1fs", time.Duration(t).Seconds()) }

// MarshalJSON writes seconds, to the millisecond.
func (t RunTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(t).Seconds(), 'f', 3, 64), nil
}

// MarshalText implements encoding.TextMarshaler.
func (k FaultKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText implements encoding.TextMarshaler.
func (k OpKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Outcome is how an operation ended, as Jepsen's ok, fail and info.
type Outcome string

const (
	OutcomeOK      Outcome = "ok"      // it happened
	OutcomeFail    Outcome = "fail"    // it did not happen: the agent refused, or no agent was there
	OutcomeUnknown Outcome = "unknown" // it may have happened: the call timed out or the connection broke
	OutcomeSkipped Outcome = "skipped" // not tried: no host was up to run it
)

// OpRecord is one operation as it ran: a ×2 operation gives two, one per
// host, with the same Step.
type OpRecord struct {
	Step     int     `json:"step"` // index in Plan.Ops
	Kind     OpKind  `json:"kind"`
	Host     string  `json:"host,omitempty"`
	Network  string  `json:"network"`
	Endpoint string  `json:"endpoint,omitempty"`
	Subnet   string  `json:"subnet,omitempty"` // asked for (network creation)
	Service  string  `json:"service,omitempty"`
	Netns    string  `json:"netns,omitempty"` // the container (endpoint operations)
	Start    RunTime `json:"start"`
	End      RunTime `json:"end"`
	Outcome  Outcome `json:"outcome"`
	Result   string  `json:"result,omitempty"` // the address or subnet given, when ok
	Error    string  `json:"error,omitempty"`
}

// FaultRecord is one fault as it ran.
type FaultRecord struct {
	Step   int       `json:"step"` // index in Plan.Faults
	Kind   FaultKind `json:"kind"`
	Host   string    `json:"host"`
	Start  RunTime   `json:"start"`
	Healed RunTime   `json:"healed"` // restarted, resumed or reconnected (0: not yet)
	Back   RunTime   `json:"back"`   // a member of the cluster again (0: not, or not yet)
	Error  string    `json:"error,omitempty"`
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	// Subject names what broke it (a network, an address, a name, a
	// table); a violation seen again with the same subject counts in Seen.
	Subject  string   `json:"subject"`
	Evidence string   `json:"evidence"`
	Hosts    []string `json:"hosts,omitempty"`
	At       RunTime  `json:"at"`    // first seen
	Phase    string   `json:"phase"` // campaign, final or cleanup
	Seen     int      `json:"seen"`
}

// Phases of a campaign, as violations name them.
const (
	PhaseCampaign = "campaign" // faults and operations going on: continuous checks
	PhaseFinal    = "final"    // faults healed, cluster converged: every check
	PhaseCleanup  = "cleanup"  // everything removed through the API, the lab taken down
)

// history is what a campaign did and found, safe for concurrent use.
type history struct {
	mu     sync.Mutex
	ops    []OpRecord
	faults []FaultRecord
	viol   []Violation
}

func (h *history) addOp(r OpRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, r)
}

// startFault records a fault as it begins and returns its index for
// endFault.
func (h *history) startFault(r FaultRecord) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, r)
	return len(h.faults) - 1
}

// endFault records how fault i ended.
func (h *history) endFault(i int, healed, back RunTime, err string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[i].Healed, h.faults[i].Back, h.faults[i].Error = healed, back, err
}

// violate records vs (stamped with at and phase) and returns those not
// seen before.
func (h *history) violate(at RunTime, phase string, vs []Violation) []Violation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var fresh []Violation
	for _, v := range vs {
		i := slices.IndexFunc(h.viol, func(o Violation) bool { return o.Invariant == v.Invariant && o.Subject == v.Subject })
		if i >= 0 {
			h.viol[i].Seen++
			continue
		}
		v.At, v.Phase, v.Seen = at, phase, 1
		h.viol = append(h.viol, v)
		fresh = append(fresh, v)
	}
	return fresh
}

// snapshot returns copies of the records.
func (h *history) snapshot() ([]OpRecord, []FaultRecord, []Violation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops), slices.Clone(h.faults), slices.Clone(h.viol)
}

// classify tells an operation's outcome from the CLI's output and error:
// success; a refusal by the agent, or no agent on the socket, did nothing;
// a timeout or a broken connection may have done it.
func classify(out string, err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	switch {
	case strings.Contains(out, "connection refused"), strings.Contains(out, "no such file or directory"):
		return OutcomeFail // the agent was not there: the request never reached it
	case strings.Contains(out, "deadline exceeded"), strings.Contains(out, "EOF"),
		strings.Contains(out, "connection reset"), strings.Contains(out, "broken pipe"):
		return OutcomeUnknown
	}
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(ce.Err.Error(), "signal") {
		return OutcomeUnknown // the call was cut off by its timeout
	}
	return OutcomeFail
}
