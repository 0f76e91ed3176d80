package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/vxnet/vxnet/lab"
)

const labRestartUsage = `Usage: vxnet lab restart [--id ID] [--kill] [--lose-state] HOST

Restarts HOST's agent (h1, h2, ...): SIGTERM (a stop) by default,
kill -9 with --kill (a crash); with --lose-state the host's data directory is
moved away first (to data.lost-N beside it), as a user whose state file is
damaged would, so the agent starts with no state of its own. Then it waits
until HOST is a cluster member again (it and every other running agent list
each other) and says how long that took.

Example:
  sudo vxnet lab up --hosts 3 && sudo vxnet lab restart h2 --kill

Flags:
`

func cmdLabRestart(ctx context.Context, std stdio, args []string) int {
	f := newLabFlags(std, "restart", labRestartUsage, false)
	var o lab.RestartOptions
	f.fs.BoolVar(&o.Kill, "kill", false, "kill -9 instead of SIGTERM")
	f.fs.BoolVar(&o.LoseState, "lose-state", false, "move the host's data directory away before the start")
	host, code := parseWithHost(f, std, args)
	if code >= 0 {
		return code
	}
	l, err := lab.Open(f.cfg)
	if err != nil {
		return labFail(std, "restart", err)
	}
	took, err := l.Restart(ctx, host, o)
	if err != nil {
		return labFail(std, "restart", err)
	}
	fmt.Fprintf(std.stdout, "%s restarted: a member again %.1fs after its agent started\n", host, took.Seconds())
	return 0
}

// parseWithHost parses flags around one HOST argument and returns it, or
// the exit code to stop with.
func parseWithHost(f *labFlags, std stdio, args []string) (string, int) {
	var pos []string
	for {
		if code := parseFlagsOnly(f.fs, args); code >= 0 {
			return "", code
		}
		if f.fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, f.fs.Arg(0)), f.fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(std.stderr, "vxnet %s: want exactly one HOST (h1, h2, ...)\n", f.fs.Name())
		return "", 2
	}
	return pos[0], -1
}

// parseFlagsOnly parses args and returns the exit code to stop with, or -1.
func parseFlagsOnly(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	return -1
}
