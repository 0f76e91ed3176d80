package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/lab"
)

const labUsage = `Usage: vxnet lab <command> [flags]

A vxnet cluster on this machine: N hosts in network namespaces joined by an
underlay switch (a Linux bridge in a namespace of its own, addresses in
198.18.0.0/15), one agent per host, and an "outside" namespace on the same
switch that stands for the world beyond the cluster (no agent, no route to
the overlays; the agents forward the DNS names they do not own to it).
Nothing touches the machine's own interfaces. Needs Linux and root.

Commands:
  up       build the hosts, start an agent in each, wait until all see each other
  demo     up (unless already up), an overlay network "demo", 2 containers per
           host, then ping, TCP and DNS between every pair of containers and from
           each to the outside, and the connectivity matrix; then down (unless
           --keep). Exit 1 if a check fails
  status   each host: address, agent, members it sees, endpoints it lists
  restart  restart one host's agent (SIGTERM, or --kill; --lose-state) and wait
           until it is a member again
  chaos    a seeded fault campaign on a lab of its own: kill, pause, partition
           and restart hosts while networks and endpoints come and go, check
           the cluster's invariants, report each violation with its seed.
           Exit 1 on any violation
  down     stop the agents and delete everything the lab made (safe to repeat)

Names, for lab id "vxlab" (--id): hosts are namespaces vxlab-h1 ... vxlab-hN
(agent names h1 ... hN), the switch is br0 in vxlab-bridge, the outside is
vxlab-outside (address .250 of the hosts' /24), demo containers are
namespaces vxlab-h1-c1 ... (endpoints h1c1 ...). State, API sockets, data
and logs are in /run/vxnet-lab/vxlab, so status and down work from any shell.

Examples:
  sudo vxnet lab demo                     the whole tour, nothing left behind
  sudo vxnet lab demo --hosts 5 --keep    keep it afterwards to look around:
  sudo vxnet --socket /run/vxnet-lab/vxlab/h1/api.sock endpoint ls
  sudo ip netns exec vxlab-h1-c1 ping h2c1
  sudo vxnet lab down
  sudo vxnet lab chaos --hosts 5 --duration 5m   a fault campaign; replays with --seed

Run 'vxnet lab <command> --help' for the flags of one command.
`

// labFlags are the flags every lab command shares, and those that build.
type labFlags struct {
	fs  *flag.FlagSet
	cfg lab.Config
}

func newLabFlags(std stdio, name, usage string, build bool) *labFlags {
	f := &labFlags{fs: flag.NewFlagSet("lab "+name, flag.ContinueOnError), cfg: lab.Config{Out: std.stdout}}
	f.fs.SetOutput(usageOut(std))
	f.fs.Usage = func() {
		fmt.Fprint(f.fs.Output(), usage)
		f.fs.PrintDefaults()
	}
	f.fs.StringVar(&f.cfg.ID, "id", lab.DefaultID, "lab `ID`: names its namespaces and directory, so labs can coexist")
	f.fs.StringVar(&f.cfg.Dir, "dir", "", "lab `DIR` for state, sockets, data and logs (default /run/vxnet-lab/ID)")
	if build {
		f.fs.IntVar(&f.cfg.Hosts, "hosts", lab.DefaultHosts, fmt.Sprintf("`N` hosts, 1 to %d", lab.MaxHosts))
		f.fs.StringVar(&f.cfg.Binary, "binary", "", "vxnet `PATH` the agents run (default: this executable)")
		f.fs.StringVar(&f.cfg.Profile, "profile", lab.DefaultProfile, "agents' gossip `PROFILE`: lan or fast")
		f.fs.StringVar(&f.cfg.LogLevel, "log-level", lab.DefaultLogLevel, "agents' log `LEVEL`: debug, info, warn or error")
		f.fs.DurationVar(&f.cfg.ReadyTimeout, "timeout", lab.DefaultReadyTimeout, "bound on each wait (agent ready, cluster converged)")
		f.fs.BoolVar(&f.cfg.GossipKey, "gossip-key", true, "encrypt the agents' gossip with a key the lab makes in its directory (encrypted networks need one); --gossip-key=false for plain gossip")
		f.fs.StringVar(&f.cfg.Store, "store", lab.StoreGossip, "where the agents keep the tables: `STORE` gossip, or etcd (an etcd server in the outside namespace; needs the etcd binary, Debian's etcd-server)")
	}
	return f
}

// parse parses args and returns the exit code to stop with, or -1.
func (f *labFlags) parse(std stdio, args []string) int {
	if err := f.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(std.stderr, "vxnet %s: unexpected argument %q\n", f.fs.Name(), f.fs.Arg(0))
		return 2
	}
	if f.fs.Lookup("hosts") != nil && (f.cfg.Hosts < 1 || f.cfg.Hosts > lab.MaxHosts) {
		fmt.Fprintf(std.stderr, "vxnet %s: --hosts %d: want 1 to %d\n", f.fs.Name(), f.cfg.Hosts, lab.MaxHosts)
		return 2
	}
	if f.fs.Lookup("profile") != nil {
		// A usage error like the others: said before anything is built.
		if err := f.cfg.Check(); err != nil {
			fmt.Fprintf(std.stderr, "vxnet %s: %v\n", f.fs.Name(), err)
			return 2
		}
	}
	return -1
}

func cmdLab(std stdio, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(std.stderr, labUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "up":
		return cmdLabUp(ctx, std, args[1:])
	case "demo":
		return cmdLabDemo(ctx, std, args[1:])
	case "status":
		return cmdLabStatus(ctx, std, args[1:])
	case "down":
		return cmdLabDown(ctx, std, args[1:])
	case "restart":
		return cmdLabRestart(ctx, std, args[1:])
	case "chaos":
		return cmdLabChaos(ctx, std, args[1:])
	case "tcp-echo":
		return cmdLabTCPEcho(ctx, std, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(std.stdout, labUsage)
		return 0
	default:
		fmt.Fprintf(std.stderr, "vxnet lab: unknown command %q\n\n%s", args[0], labUsage)
		return 2
	}
}

// labFail prints err for command name and returns 1.
func labFail(std stdio, name string, err error) int {
	fmt.Fprintf(std.stderr, "vxnet lab %s: %v\n", name, err)
	return 1
}

func cmdLabUp(ctx context.Context, std stdio, args []string) int {
	f := newLabFlags(std, "up", `Usage: vxnet lab up [--hosts N] [--id ID] [--binary PATH] [flags]

Builds N hosts in network namespaces on an underlay switch, starts an agent
in each (h1 first, the others joining it) and waits until every agent lists
every host as a member. If something fails it prints why (with the end of
the agent's log) and takes down what it built. The lab stays up afterwards:
'vxnet lab status', 'vxnet lab down'.

Flags:
`, true)
	if code := f.parse(std, args); code >= 0 {
		return code
	}
	l, err := lab.Up(ctx, f.cfg)
	if err != nil {
		return labFail(std, "up", err)
	}
	s := l.State()
	id := s.ID
	if s.Dir != filepath.Join(lab.DefaultBaseDir, s.ID) {
		id += " --dir " + s.Dir // the other commands find the lab there
	}
	fmt.Fprintf(std.stdout, "try: %s --socket %s cluster members\n     %s lab status --id %s; %s lab down --id %s\n",
		s.Binary, s.Hosts[0].Socket, s.Binary, id, s.Binary, id)
	return 0
}

func cmdLabDemo(ctx context.Context, std stdio, args []string) int {
	f := newLabFlags(std, "demo", `Usage: vxnet lab demo [--hosts N] [--keep] [flags]

Brings the lab up (unless it is up), creates an overlay network and
--per-host containers on every host (namespaces with a vxnet endpoint, named
h1c1, h1c2, h2c1, ...), and checks every ordered pair of containers:

  ping       ping -c1 the destination's address
  tcp        a TCP echo round trip to its address
  ping name  ping -c1 its name (the agent's DNS at 127.0.0.11 answers)
  tcp name   a TCP echo round trip to NAME.NETWORK
  dns        dig NAME and NAME.NETWORK @127.0.0.11 give its address

The same checks go from every container to the outside (the last column of
the matrix), where the demo runs an echo server and a DNS server (dnsmasq)
answering outside.test: out through the container's host by address, and
by that name, which the agents forward to the outside's DNS server.

A check is tried up to --attempts times. Then it prints the matrix (rows:
from, columns: to) and a summary by category: same host, cross host or to
the outside, by address or by name. Unless --keep, it removes everything it
made: the whole lab if it brought it up, else only the network and
containers. Exit status 1 if any check failed.

Flags:
`, true)
	dc := lab.DefaultDemoConfig()
	keep := f.fs.Bool("keep", false, "keep the lab, network and containers afterwards")
	f.fs.StringVar(&dc.Network, "network", dc.Network, "overlay network `NAME`")
	f.fs.StringVar(&dc.Subnet, "subnet", "", "network `CIDR` (default: the agent picks one)")
	f.fs.IntVar(&dc.PerHost, "per-host", dc.PerHost, "containers per host")
	f.fs.IntVar(&dc.Parallel, "parallel", dc.Parallel, "pairs checked at once")
	f.fs.IntVar(&dc.Attempts, "attempts", dc.Attempts, "tries per check before it counts as failed")
	if code := f.parse(std, args); code >= 0 {
		return code
	}
	if dc.Subnet != "" {
		// Said before the lab is built, not by the agent after.
		if p, err := netip.ParsePrefix(dc.Subnet); err != nil || p != p.Masked() {
			fmt.Fprintf(std.stderr, "vxnet lab demo: --subnet %q: want a network address with its prefix length, such as 10.0.9.0/24\n", dc.Subnet)
			return 2
		}
	}
	m, err := lab.RunDemo(ctx, f.cfg, dc, *keep)
	if err != nil {
		return labFail(std, "demo", err)
	}
	if m.Failed() {
		return 1
	}
	return 0
}

func cmdLabStatus(ctx context.Context, std stdio, args []string) int {
	f := newLabFlags(std, "status", `Usage: vxnet lab status [--id ID] [--format table|json]

Shows each host of the lab: namespace, underlay address, agent PID (or "not
running"), the cluster members its agent lists, and the endpoints it lists
(in parentheses: those on this host). Exit status 1 if the lab is not up
or an agent is not running or does not answer.

Flags:
`, false)
	format := f.fs.String("format", "table", "output `FORMAT`: table or json")
	if code := f.parse(std, args); code >= 0 {
		return code
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(std.stderr, "vxnet lab status: --format %q: want table or json\n", *format)
		return 2
	}
	l, err := lab.Open(f.cfg)
	if err != nil {
		return labFail(std, "status", err)
	}
	hosts := l.Status(ctx)
	if *format == "json" {
		enc := json.NewEncoder(std.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(hosts)
	} else {
		s := l.State()
		fmt.Fprintf(std.stdout, "lab %s: underlay %s, directory %s\n", s.ID, s.Subnet, s.Dir)
		if o := s.Outside; o.Netns != "" {
			fmt.Fprintf(std.stdout, "outside: namespace %s, underlay %s (the agents' DNS upstream; lab demo runs a DNS server there)\n", o.Netns, o.Addr)
		}
		if s.Store == lab.StoreEtcd {
			fmt.Fprintf(std.stdout, "store: etcd at %s (in the outside)\n", s.EtcdEndpoint())
		} else {
			fmt.Fprintln(std.stdout, "store: gossip")
		}
		if s.Network != "" {
			fmt.Fprintf(std.stdout, "demo network %s, %d containers\n", s.Network, len(s.Containers))
		}
		lab.RenderStatus(std.stdout, hosts)
	}
	for _, h := range hosts {
		if h.Error != "" {
			return 1
		}
	}
	return 0
}

func cmdLabDown(ctx context.Context, std stdio, args []string) int {
	f := newLabFlags(std, "down", `Usage: vxnet lab down [--id ID]

Stops the lab's agents and demo processes (SIGTERM, then SIGKILL after 10 s;
by PID, checked against its start time), stops anything else still running
in the lab's namespaces, deletes every namespace named after the lab (even
without a state file, e.g. after a crash), their /etc/netns directories and
the lab directory. Taking down a lab that is not there succeeds.

Flags:
`, false)
	if code := f.parse(std, args); code >= 0 {
		return code
	}
	if err := lab.Down(ctx, f.cfg); err != nil {
		return labFail(std, "down", err)
	}
	return 0
}

// cmdLabTCPEcho is the demo's TCP probe (not in the usage): a server the lab
// runs in each container, and the client it runs for each check.
func cmdLabTCPEcho(ctx context.Context, std stdio, args []string) int {
	fs := flag.NewFlagSet("lab tcp-echo", flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: vxnet lab tcp-echo (--listen ADDR | --connect HOST:PORT [--timeout D])\n\n"+
			"The lab demo's TCP probe: a server that echoes each connection, or a client\n"+
			"that checks one echo round trip. Exit status 1 if the round trip fails.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "", "serve echo on `ADDR` (e.g. :7777) until SIGTERM")
	connect := fs.String("connect", "", "check a round trip to `HOST:PORT`")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on the round trip")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if (*listen == "") == (*connect == "") || fs.NArg() > 0 {
		fmt.Fprintln(std.stderr, "vxnet lab tcp-echo: want exactly one of --listen ADDR and --connect HOST:PORT")
		return 2
	}
	if *connect != "" {
		rtt, err := lab.EchoRoundTrip(ctx, *connect, *timeout)
		if err != nil {
			return labFail(std, "tcp-echo", err)
		}
		fmt.Fprintf(std.stdout, "echo from %s in %v\n", *connect, rtt.Round(time.Microsecond))
		return 0
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return labFail(std, "tcp-echo", err)
	}
	fmt.Fprintf(std.stdout, "%s %s\n", lab.EchoReady, ln.Addr())
	if err := lab.ServeEcho(ctx, ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return labFail(std, "tcp-echo", err)
	}
	return 0
}
