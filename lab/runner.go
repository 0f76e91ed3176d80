package lab

import (
	"context"
	"os/exec"
	"time"
)

// pollInterval is how often the lab checks a condition it waits for.
const pollInterval = 50 * time.Millisecond

// runner runs one command to completion and returns its combined output.
// A failure is a *CmdError. Tests swap in a recorder.
type runner interface {
	run(ctx context.Context, argv ...string) (string, error)
}

// execRunner runs commands for real.
type execRunner struct{}

func (execRunner) run(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), &CmdError{Argv: argv, Output: string(out), Err: err}
	}
	return string(out), nil
}

// pause waits d or until ctx ends, whichever comes first. It spaces the
// polls of a wait that has its own deadline; it never stands in for one.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// inNetns prefixes argv to run inside namespace ns.
func inNetns(ns string, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}
