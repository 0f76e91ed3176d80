package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vxnet/vxnet/dataplane/static"
)

const dataplaneUsage = `Usage: vxnet dataplane --config FILE [--stats-socket PATH] [--log-level LEVEL]
       vxnet dataplane stats --stats-socket PATH    (counters of a running one)

Runs the VXLAN switch of one host from a static JSON file: it creates a TUN
device in each endpoint's network namespace, binds the VXLAN socket to the
host's underlay address, and forwards until SIGINT or SIGTERM, when it
removes the devices again. No control plane: every remote endpoint is listed
by hand. Needs root (CAP_NET_ADMIN).

Config file:
  {
    "vtep": "198.18.0.1",              this host's underlay address (required)
    "vxlanPort": 4789,                 UDP port of every VTEP (default 4789)
    "mtu": 1450,                       endpoint MTU (default 1450 for a 1500 underlay)
    "networks": [{
      "vni": 4097,                     VXLAN network identifier, 1-16777215
      "subnets": ["10.0.9.0/24"],      their broadcast addresses are flooded
      "endpoints": [{                  local endpoints (TUN devices)
        "name": "c1",
        "netns": "c1",                 ip netns name, or a path like /proc/PID/ns/net
        "ifname": "eth0",              default vxnet0
        "addresses": ["10.0.9.2/24", "fd00:9::2/64"],
        "mac": "02:42:0a:00:09:02"     default: derived from the first address
      }],
      "remotes": [{                    endpoints on other hosts
        "vtep": "198.18.0.2",
        "addresses": ["10.0.9.3", "fd00:9::3"],
        "mac": "02:42:0a:00:09:03",
        "vxnet": true                  it runs vxnet too: TCP checksums are left for
                                       its switch (less work); omit for a kernel peer
      }],
      "floodVteps": ["198.18.0.3"]      more VTEPs that get broadcasts (e.g. kernel peers)
    }]
  }

Flags:
`

func cmdDataplane(std stdio, args []string) int {
	if len(args) > 0 && args[0] == "stats" {
		return cmdDataplaneStats(std, args[1:])
	}
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(std.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), dataplaneUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "static data-plane config `FILE` (JSON, see above)")
	statsSocket := fs.String("stats-socket", "", "serve counters as JSON at GET /stats on this unix socket `PATH`")
	level := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(std.stderr, "vxnet dataplane: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(std, *level)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane: %v\n", err)
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(std.stderr, "vxnet dataplane: --config FILE is required (see vxnet dataplane --help)")
		return 2
	}
	cfg, err := static.Load(*configPath)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := static.Run(ctx, cfg, static.Options{StatsSocket: *statsSocket, Logger: log}); err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(std stdio, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(std.stderr, &slog.HandlerOptions{Level: l})), nil
}
