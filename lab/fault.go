package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// FaultKind is one kind of fault a chaos campaign injects into a host.
type FaultKind int

const (
	FaultKill      FaultKind = iota // kill -9 the agent, restart it later
	FaultTerm                       // SIGTERM (a stop), restart it later
	FaultPause                      // SIGSTOP the agent, SIGCONT it later
	FaultPartition                  // drop all traffic of the host's underlay link, both ways, then heal
	FaultLoseState                  // kill -9, move the data directory away, start afresh later
	numFaultKinds
)

var faultNames = [numFaultKinds]string{"kill", "term", "pause", "partition", "lose-state"}

func (k FaultKind) String() string {
	if k < 0 || k >= numFaultKinds {
		return fmt.Sprintf("FaultKind(%d)", int(k))
	}
	return faultNames[k]
}

// AllFaults lists every fault kind, in order.
func AllFaults() []FaultKind {
	out := make([]FaultKind, numFaultKinds)
	for i := range out {
		out[i] = FaultKind(i)
	}
	return out
}

// ParseFaults parses a comma-separated list of fault kinds ("kill,pause"),
// "all", or "none" (no faults: the workload alone).
func ParseFaults(s string) ([]FaultKind, error) {
	switch strings.TrimSpace(s) {
	case "all":
		return AllFaults(), nil
	case "none":
		return []FaultKind{}, nil
	}
	var out []FaultKind
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		i := slices.Index(faultNames[:], f)
		if i < 0 {
			return nil, fmt.Errorf("fault %q: want %s, all or none", f, strings.Join(faultNames[:], ", "))
		}
		if !slices.Contains(out, FaultKind(i)) {
			out = append(out, FaultKind(i))
		}
	}
	return out, nil
}

// faultList formats kinds as ParseFaults reads them.
func faultList(kinds []FaultKind) string {
	if len(kinds) == 0 {
		return "none"
	}
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.String()
	}
	return strings.Join(s, ",")
}

// partitionTable is the nftables table that cuts a host off; it lives in
// the host's namespace only, so deleting the table (or the namespace)
// heals the partition.
const partitionTable = "vxnet-lab-partition"

// partitionScript is the nft script that drops every packet in and out of
// the host's underlay link.
func partitionScript() string {
	t := "inet " + partitionTable
	return strings.Join([]string{
		"add table " + t,
		"add chain " + t + " in { type filter hook input priority -100; policy accept; }",
		"add chain " + t + " out { type filter hook output priority -100; policy accept; }",
		"add rule " + t + " in iifname " + underlayDev + " drop",
		"add rule " + t + " out oifname " + underlayDev + " drop",
	}, "; ")
}

// Partition cuts host off the underlay: nftables rules in the host's own
// namespace drop everything in and out of its underlay link. Its agent
// keeps running and its API answers; it sees no other host, and no other
// host sees it, until Heal.
func (l *Lab) Partition(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if _, err := l.run.run(ctx, inNetns(h.Netns, "nft", partitionScript())...); err != nil {
		return fmt.Errorf("partitioning %s: %w", host, err)
	}
	return nil
}

// Heal undoes Partition.
func (l *Lab) Heal(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if _, err := l.run.run(ctx, inNetns(h.Netns, "nft", "delete table inet "+partitionTable)...); err != nil {
		return fmt.Errorf("healing %s: %w", host, err)
	}
	return nil
}

// Pause stops host's agent with SIGSTOP: it holds its sockets but answers
// nothing (gossip, API, DNS, switch), as a hung host, until Resume.
func (l *Lab) Pause(host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if !alive(h.Agent) {
		return fmt.Errorf("pausing %s: its agent is not running", host)
	}
	return pauseProc(h.Agent)
}

// Resume continues host's agent after Pause.
func (l *Lab) Resume(host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	return resumeProc(h.Agent)
}

// host returns a copy of host's state.
func (l *Lab) host(name string) (HostState, error) {
	s := l.State()
	h, ok := s.Host(name)
	if !ok {
		return HostState{}, fmt.Errorf("no host %q in lab %s", name, s.ID)
	}
	return *h, nil
}
