package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vxnet/vxnet/dataplane/seal"
	"github.com/vxnet/vxnet/dataplane/static"
)

const dataplaneUsage = `Usage: vxnet dataplane --config FILE [--stats-socket PATH] [--log-level LEVEL]
       vxnet dataplane stats --stats-socket PATH    (counters of a running one)
       vxnet dataplane keygen FILE                  (a new private key; prints its public key)
       vxnet dataplane pubkey FILE                  (the public key of a private key file)

Runs the VXLAN switch of one host from a static JSON file: it creates a TUN
device in each endpoint's network namespace, binds the VXLAN socket to the
host's underlay address, and forwards until SIGINT or SIGTERM, when it
removes the devices again. No control plane: every remote endpoint is listed
by hand. Needs root (CAP_NET_ADMIN).

Config file:
  {
    "vtep": "198.18.0.1",              this host's underlay address (required)
    "vxlanPort": 4789,                 UDP port of every VTEP (default 4789)
    "mtu": 1450,                       endpoint MTU (default: a 1500 underlay less VXLAN's
                                       headers, 1450, or 1430 with an IPv6 vtep)
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
      "floodVteps": ["198.18.0.3"],     more VTEPs that get broadcasts (e.g. kernel peers)
      "encrypted": true,                seal every datagram between hosts (see below)
      "services": [{                   virtual IPs: a local endpoint's connection to one
        "name": "api",                 goes to one of the tasks (a consistent hash of the
        "vips": ["10.0.9.100"],        connection, kept for its life), replies come back
        "tasks": ["10.0.9.3"]          from the VIP; tasks are addresses of endpoints or
      }]                               remotes above; one VIP per family
    }],
    "encryption": {                    this host's keys, for encrypted networks
      "hostKey": "/var/lib/vxnet/host.key",      long-term private key (keygen)
      "sessionKey": "/run/vxnet/session.key",    a fresh private key for this start: its
                                       public key is listed in HOSTKEY.sessions-used and
                                       the file destroyed; a listed key is refused
      "cipher": "auto"                 aes-256-gcm, chacha20-poly1305, or auto (AES-GCM;
                                       refused without AES instructions); every host
                                       must name the same
    },
    "peers": [{                        the other hosts of encrypted networks
      "vtep": "198.18.0.2",
      "hostKey": "BASE64",             their public keys, as keygen or pubkey print them
      "sessionKey": "BASE64"
    }]
  }

An encrypted network carries every datagram between hosts sealed
(authenticated and encrypted; the VNI stays in clear): its endpoints' MTU is
28 bytes below "mtu", its remotes must be vxnet hosts listed in "peers", and
a datagram that does not open is dropped and counted (vxnet dataplane stats:
seal_bad_tag, seal_replay, seal_unknown_key, ...; a peer whose keys or cipher
in this file are wrong shows as seal_unknown_key on both sides). Private key
files must be readable by their owner alone (mode 0600). Keep the public key
keygen prints for a session key: the file is destroyed at start. A session
key serves one start, so restarting one host means a new session key for
it and its new public key in every peer's file (and their restart). The
agent does all of this by itself; static mode is for labs and benchmarks.

Flags:
`

func cmdDataplane(std stdio, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "stats":
			return cmdDataplaneStats(std, args[1:])
		case "keygen", "pubkey":
			return cmdDataplaneKey(std, args[0], args[1:])
		}
	}
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
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

// cmdDataplaneKey makes a private key file (keygen) or reads one (pubkey)
// and prints its public key.
func cmdDataplaneKey(std stdio, what string, args []string) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(std.stderr, "Usage: vxnet dataplane %s FILE\n\n", what)
		if what == "keygen" {
			fmt.Fprintln(std.stderr, "Writes a new X25519 private key to FILE (mode 0600; an existing FILE is never\noverwritten) and prints its public key, for the peers' config.")
		} else {
			fmt.Fprintln(std.stderr, "Prints the public key of the X25519 private key in FILE.")
		}
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	var k *seal.KeyPair
	var err error
	if what == "keygen" {
		if k, err = seal.NewKeyPair(); err == nil {
			err = seal.WriteKeyFile(args[0], k)
		}
	} else {
		k, err = seal.LoadKeyFile(args[0])
	}
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet dataplane %s: %v\n", what, err)
		return 1
	}
	fmt.Fprintln(std.stdout, k.Public())
	return 0
}
