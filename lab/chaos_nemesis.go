package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// nemesis runs the faults of one lane, each at its planned time (later if
// the host is still held by another lane). A fault is held until its
// planned end or the end of the campaign (during), whichever is first;
// it is always healed, on ctx.
func (c *campaign) nemesis(during, ctx context.Context, lane int) {
	for i, f := range c.plan.Faults {
		if f.Lane != lane {
			continue
		}
		pause(during, time.Until(c.start.Add(f.At))) // the schedule, not a synchronisation
		if during.Err() != nil || !c.claim(during, f.Host) {
			return
		}
		c.runFault(during, ctx, i, f)
		c.release(f.Host)
	}
}

// claim waits until no other lane holds host, then holds it.
func (c *campaign) claim(ctx context.Context, host string) bool {
	for ctx.Err() == nil {
		c.mu.Lock()
		h := c.health[host]
		if !h.claimed {
			h.claimed = true
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		pause(ctx, pollInterval)
	}
	return false
}

func (c *campaign) release(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.health[host].claimed = false
}

// faultVerb describes a fault kind in progress lines.
var faultVerb = [numFaultKinds]string{"kill -9", "SIGTERM", "SIGSTOP", "partition", "lose-state"}

// runFault injects f, holds it, undoes it and waits until the host is a
// member again.
func (c *campaign) runFault(during, ctx context.Context, step int, f FaultStep) {
	start := c.now()
	i := c.hist.startFault(FaultRecord{Step: step, Kind: f.Kind, Host: f.Host, Start: start})
	c.say("fault", "#%-3d %s %s for %.1fs", step, faultVerb[f.Kind], f.Host, f.For.Seconds())
	err := c.inject(ctx, f)
	if err == nil {
		pause(during, f.For) // the fault's duration
	}
	healed, healing := c.now(), time.Now()
	err = errors.Join(err, c.undo(ctx, f))
	var back RunTime
	if err == nil {
		if err = c.l.WaitMember(ctx, f.Host, c.peersOf(f.Host)); err == nil {
			back = c.now()
			c.say("fault", "#%-3d %s %s, a member again %.1fs later", step, f.Host, healVerb[f.Kind], time.Since(healing).Seconds())
		}
	}
	if err != nil && ctx.Err() == nil {
		c.violate(PhaseCampaign, []Violation{{Invariant: InvClusterHeals, Subject: "host " + f.Host,
			Evidence: fmt.Sprintf("after %s at %s: %s", faultVerb[f.Kind], start, oneLine(err.Error())), Hosts: []string{f.Host}}})
	}
	c.hist.endFault(i, healed, back, errText(err))
	c.setHost(f.Host, hostUp)
}

// healVerb says how a fault kind ends.
var healVerb = [numFaultKinds]string{"restarted", "restarted", "resumed", "reconnected", "restarted afresh"}

// inject starts fault f: the host's state is set first, so the workload
// stops sending it operations.
func (c *campaign) inject(ctx context.Context, f FaultStep) error {
	switch f.Kind {
	case FaultKill, FaultTerm:
		c.setHost(f.Host, hostDown)
		return c.l.StopAgent(ctx, f.Host, f.Kind == FaultKill)
	case FaultLoseState:
		c.setHost(f.Host, hostDown)
		if err := c.l.StopAgent(ctx, f.Host, true); err != nil {
			return err
		}
		moved, err := c.l.LoseState(f.Host)
		if err == nil {
			c.say("fault", "     %s: data directory moved to %s", f.Host, moved)
		}
		return err
	case FaultPause:
		c.setHost(f.Host, hostPaused)
		return c.l.Pause(f.Host)
	case FaultPartition:
		c.setHost(f.Host, hostPartitioned)
		return c.l.Partition(ctx, f.Host)
	}
	return fmt.Errorf("unknown fault %v", f.Kind)
}

// undo ends fault f.
func (c *campaign) undo(ctx context.Context, f FaultStep) error {
	switch f.Kind {
	case FaultPause:
		return c.l.Resume(f.Host)
	case FaultPartition:
		return c.l.Heal(ctx, f.Host)
	}
	if h, err := c.l.host(f.Host); err == nil && alive(h.Agent) {
		return nil // the stop failed: nothing to start
	}
	return c.l.StartAgent(ctx, f.Host)
}

// peersOf lists the hosts host must see again after a fault: every other
// host whose agent runs, connected and not paused.
func (c *campaign) peersOf(host string) []string {
	return slices.DeleteFunc(c.hostsWhere(func(h *hostHealth) bool { return h.state == hostUp }),
		func(h string) bool { return h == host })
}

// healAll makes sure no fault is left: every partition healed, every
// paused agent resumed, every stopped agent started. A host whose agent
// cannot start is a violation.
func (c *campaign) healAll(ctx context.Context) {
	for _, h := range c.l.State().Hosts {
		c.l.Resume(h.Name)
		if ns := h.Netns; ns != "" {
			c.l.run.run(ctx, inNetns(ns, "nft", "delete table inet "+partitionTable)...) // fails when there is none
		}
		if !alive(h.Agent) {
			c.say("heal", "starting %s's agent, which is not running", h.Name)
			if err := c.l.StartAgent(ctx, h.Name); err != nil {
				c.violate(PhaseFinal, []Violation{{Invariant: InvClusterHeals, Subject: "host " + h.Name,
					Evidence: "its agent does not start: " + oneLine(err.Error()), Hosts: []string{h.Name}}})
			}
		}
		c.setHost(h.Name, hostUp)
	}
}
