package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// RestartOptions says how Restart stops an agent.
type RestartOptions struct {
	// Kill stops the agent with SIGKILL (a crash) instead of SIGTERM (a
	// stop).
	Kill bool
	// LoseState moves the host's data directory away (to data.lost-N
	// beside it) before the agent starts again, as a user whose state file
	// is damaged would: the agent starts with no state of its own.
	LoseState bool
}

// Restart stops host's agent, starts it again and waits until it is a
// cluster member again: every other running agent lists it and it lists
// each of them. It returns how long the agent took to be a member again
// after its start.
func (l *Lab) Restart(ctx context.Context, host string, o RestartOptions) (time.Duration, error) {
	if _, err := l.host(host); err != nil {
		return 0, err
	}
	if err := l.StopAgent(ctx, host, o.Kill); err != nil {
		return 0, err
	}
	if o.LoseState {
		moved, err := l.LoseState(host)
		if err != nil {
			return 0, err
		}
		l.say("  %s: data directory moved to %s", host, moved)
	}
	if err := l.StartAgent(ctx, host); err != nil {
		return 0, err
	}
	start := time.Now()
	var peers []string
	for _, h := range l.State().Hosts {
		if h.Name != host && alive(h.Agent) {
			peers = append(peers, h.Name)
		}
	}
	if err := l.WaitMember(ctx, host, peers); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// LoseState moves host's data directory to the first free data.lost-N
// beside it and returns the new path. The agent must be stopped.
func (l *Lab) LoseState(host string) (string, error) {
	h, err := l.host(host)
	if err != nil {
		return "", err
	}
	if alive(h.Agent) {
		return "", fmt.Errorf("%s: the agent runs (pid %d); stop it before moving its state away", host, h.Agent.PID)
	}
	for n := 1; ; n++ {
		to := h.DataDir + ".lost-" + strconv.Itoa(n)
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(h.DataDir, to); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("%s: moving the data directory away: %w", host, err)
			}
			return to, nil
		}
	}
}

// WaitMember polls until host lists every one of peers as a member and
// each of peers lists host, or the ready timeout passes.
func (l *Lab) WaitMember(ctx context.Context, host string, peers []string) error {
	deadline := time.Now().Add(l.cfg.ReadyTimeout)
	for {
		err := l.memberOf(ctx, host, peers)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not a member again after %v: %w", host, l.cfg.ReadyTimeout, err)
		}
		pause(ctx, pollInterval)
	}
}

// memberOf checks once that host and peers list each other.
func (l *Lab) memberOf(ctx context.Context, host string, peers []string) error {
	for _, h := range append([]string{host}, peers...) {
		want := []string{host}
		if h == host {
			want = peers
		}
		cctx, cancel := context.WithTimeout(ctx, cliTimeout)
		m, err := l.Members(cctx, h)
		cancel()
		if err != nil {
			return err
		}
		if missing := hasAll(memberNames(m), want); len(missing) > 0 {
			return fmt.Errorf("%s does not list %s", h, quoteList(missing))
		}
	}
	return nil
}
