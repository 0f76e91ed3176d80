package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/agent"
	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/join"
	"github.com/vxnet/vxnet/plugin/docker"
)

const agentUsage = `Usage: vxnet agent --advertise-addr IP [--join HOST:PORT,...] [flags]

Runs this host's vxnet agent in the foreground: it joins the cluster (gossip
on IP:7946), replicates the tables of networks, endpoints and address blocks,
runs the VXLAN switch (IP:4789) and the embedded DNS server, and serves the
API on a unix socket for the vxnet CLI. One agent per host; needs root.

Gossip is encrypted with a key shared by every host: put it in a file only
root can read and pass --gossip-key-file (or set VXNET_GOSSIP_KEY); a key
given with --gossip-key shows in every user's ps.

SIGTERM or SIGINT stops the agent: the host is down, not gone (a restart, an
upgrade), so the other hosts keep its endpoints' names and addresses for it,
as after a crash. After a stop or kill -9 and a restart with the same
--data-dir, the host's endpoints come back in the same namespaces with the
same addresses.
Networks are the cluster's: they stay when the host that created them goes.
If the state file is damaged or lost, restart with --recover: the host takes
its endpoints back from the cluster instead of starting afresh.

The tables live in the agents themselves (--store gossip, the default: no
other service needed). A cluster that already runs etcd can keep them there
instead (--store etcd --etcd-endpoints URL,...): every agent of the cluster
then uses the same etcd and prefix, gossip only tells who is alive, and a
host's endpoints and address blocks are attached to its etcd lease (they go
--etcd-lease-ttl after it dies). A cluster keeps its tables in one store at
a time; an agent started with the other one says so and exits.

Example:
  vxnet agent --advertise-addr 198.18.0.1
  vxnet agent --advertise-addr 198.18.0.2 --join 198.18.0.1:7946
  head -c32 /dev/urandom | base64 > /etc/vxnet/gossip.key; chmod 600 /etc/vxnet/gossip.key
  vxnet agent --advertise-addr 198.18.0.1 --gossip-key-file /etc/vxnet/gossip.key
  vxnet agent --advertise-addr 198.18.0.2 --join 198.18.0.1:7946 --store etcd \
      --etcd-endpoints https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \
      --etcd-ca /etc/vxnet/etcd-ca.pem --etcd-cert /etc/vxnet/etcd.pem --etcd-key /etc/vxnet/etcd-key.pem

Flags:
`

func cmdAgent(std stdio, args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), agentUsage)
		fs.PrintDefaults()
	}
	var cfg config.Config
	fs.StringVar(&cfg.Name, "name", "", "this host's `NAME` in the cluster (default: the hostname)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "this host's underlay `IP`: gossip and VXLAN bind to it (required)")
	joinTo := fs.String("join", "", "`HOST:PORT` of agents to join, comma-separated (none: start a cluster)")
	fs.IntVar(&cfg.GossipPort, "gossip-port", config.DefaultGossipPort, "gossip `PORT` (TCP and UDP)")
	fs.IntVar(&cfg.VXLANPort, "vxlan-port", config.DefaultVXLANPort, "VXLAN UDP `PORT`, the same on every host")
	fs.StringVar(&cfg.DataDir, "data-dir", config.DefaultDataDir, "`DIR` for this host's own state (endpoints, leases, clock)")
	fs.StringVar(&cfg.APISocket, "api-socket", api.DefaultSocket, "unix socket `PATH` of the API (mode 0600)")
	dockerSock := fs.String("docker-plugin", defaultDockerPlugin, "serve Docker's network and IPAM plugin \"vxnet\" on unix socket `PATH`, where Docker finds it (docker network create -d vxnet --ipam-driver vxnet ...); \"off\" serves none")
	fs.StringVar(&cfg.SysctlDir, "sysctl-dir", "/proc/sys", "`DIR` where the agent writes the host's sysctls (IP forwarding): in a container whose /proc/sys is read-only (the managed Docker plugin), the host's seen from it (/host/proc/sys)")
	dockerRoot := fs.String("docker-netns-root", "", "`DIR` where dockerd's root directory is seen from the agent, when the agent runs in a container of its own (a managed plugin: /host); empty when both share the host's")
	dockerScope := fs.String("docker-scope", "local", "the plugin's `SCOPE` in Docker: \"local\" (Docker without swarm) or \"global\" (a managed plugin in a swarm: swarm-scoped and --attachable networks; Docker refuses a global driver's networks outside a swarm)")
	dockerHost := fs.String("docker-host", "unix:///var/run/docker.sock", "`URL` of Docker's API, which the plugin reads network and container names from (unix:///PATH or tcp://HOST:PORT)")
	fs.StringVar(&cfg.GossipKey, "gossip-key", "", "encrypt gossip with this `KEY`: base64 of 16, 24 or 32 bytes, the same on every host. Every user of the host sees a command line (ps): prefer --gossip-key-file, or VXNET_GOSSIP_KEY")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key-file", "", "read the gossip key from the first line of `FILE` (the preferred way; refused if its group or others can read it: chmod 600 FILE); further lines hold keys still accepted from other hosts, as during a key rotation")
	fs.StringVar(&cfg.JoinCert, "join-cert", "", "the cluster's join certificate, a PEM `FILE` (vxnet cluster init makes it, vxnet cluster join brings it): with --join-key, serve the join service, where new hosts trade a join token for the gossip keys")
	fs.StringVar(&cfg.JoinKey, "join-key", "", "the join certificate's key, a PEM `FILE` (mode 0600)")
	fs.IntVar(&cfg.JoinPort, "join-port", join.DefaultPort, "the join service's TCP `PORT` on --advertise-addr")
	fs.StringVar(&cfg.JoinTokenSeed, "join-token-seed", "", "a `FILE` of join tokens that vxnet cluster init wrote before any agent ran: added to the cluster's tokens at start, then removed")
	fs.IntVar(&cfg.MTU, "mtu", 0, "containers' `MTU` (default: the MTU of the interface holding --advertise-addr less 50 bytes of VXLAN, 70 over IPv6; 1450 when unknown)")
	fs.IntVar(&cfg.RxQueues, "rx-queues", 0, "VXLAN receive sockets sharing the port, each with its own loop (`N`, 1-64; default one per four cores, up to 4)")
	fs.BoolVar(&cfg.Recover, "recover", false, "rebuild this host's state from the cluster: when the state file under --data-dir is damaged or missing, set it aside and take this host's endpoints, leases and address blocks back from the other hosts (needs --join); nothing is deleted from the cluster")
	fs.StringVar(&cfg.Profile, "profile", "lan", "gossip timings, `PROFILE`: lan, or fast (small clusters: failures seen in about a second)")
	upstreams := fs.String("dns-upstream", "", "DNS servers for names vxnet does not own, `IP[:PORT],...` (default: the host's resolv.conf; \"none\": answer SERVFAIL)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "serve Go's profiler at http://`HOST:PORT`/debug/pprof/ (speed work; keep it on loopback)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics (packets, drops by reason, members, table sizes, DNS queries by result)")
	fs.DurationVar(&cfg.KeyRotation, "key-rotation", time.Hour, "how often this host replaces the keys of its encrypted networks' traffic with every other host, without a packet lost (`DURATION`; 0: only at restarts and on vxnet cluster rotate-keys)")
	fs.DurationVar(&cfg.BindTimeout, "bind-timeout", config.DefaultBindTimeout, "how long to retry binding an address in use (gossip, VXLAN, the API socket, metrics, DNS), as when the agent this one replaces is still shutting down; then exit with an error (`DURATION`; 0: no retry)")
	fs.StringVar(&cfg.Store, "store", config.StoreGossip, "where the replicated tables live, `STORE`: gossip (in the agents) or etcd (in the etcd cluster --etcd-endpoints names); the same on every host")
	etcdEndpoints := fs.String("etcd-endpoints", "", "etcd's client `URLS`, comma-separated (with --store etcd): http://HOST:2379 or https://HOST:2379")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "", "the key `PATH` under which the tables live in etcd, the same on every host (default /vxnet; another prefix keeps another cluster apart)")
	fs.StringVar(&cfg.EtcdCA, "etcd-ca", "", "PEM `FILE` of the CA that signed etcd's certificates (as etcdctl's --cacert)")
	fs.StringVar(&cfg.EtcdCert, "etcd-cert", "", "PEM `FILE` of this host's client certificate for etcd (with --etcd-key; as etcdctl's --cert)")
	fs.StringVar(&cfg.EtcdKey, "etcd-key", "", "PEM `FILE` of the client certificate's key (as etcdctl's --key)")
	fs.DurationVar(&cfg.EtcdLeaseTTL, "etcd-lease-ttl", 10*time.Second, "how long a host's endpoints and address blocks stay in etcd after it stops renewing its lease: it died, or lost etcd (`DURATION`, 2s to 1h)")
	level := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `FORMAT`: text (key=value) or json")
	configFile := fs.String("config", "", "read settings from a JSON `FILE` first: keys are the flag names, e.g. {\"advertise-addr\": \"198.18.0.1\", \"join\": \"198.18.0.2:7946\"}; flags given on the command line win")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *configFile != "" {
		if err := applyConfigFile(fs, *configFile); err != nil {
			fmt.Fprintf(std.stderr, "vxnet agent: %v\n", err)
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(std.stderr, "vxnet agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *joinTo != "" {
		cfg.Join = strings.Split(*joinTo, ",")
	}
	if *etcdEndpoints != "" {
		cfg.EtcdEndpoints = strings.Split(*etcdEndpoints, ",")
	}
	if cfg.Store != config.StoreEtcd {
		if flagSet(fs, "etcd-lease-ttl") {
			fmt.Fprintln(std.stderr, "vxnet agent: --etcd-lease-ttl needs --store etcd (the tables are in gossip unless told)")
			return 2
		}
		cfg.EtcdLeaseTTL = 0 // its default means nothing without etcd
	}
	if cfg.BindTimeout == 0 {
		cfg.BindTimeout = -1 // no retry (the library's 0 is the default)
	}
	if cfg.GossipKey == "" && cfg.GossipKeyFile == "" {
		cfg.GossipKey = os.Getenv("VXNET_GOSSIP_KEY")
	}
	switch *upstreams {
	case "":
	case "none":
		cfg.DNSUpstreams = []netip.AddrPort{}
	default:
		for _, s := range strings.Split(*upstreams, ",") {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					fmt.Fprintf(std.stderr, "vxnet agent: --dns-upstream %q: want IP or IP:PORT\n", s)
					return 2
				}
				ap = netip.AddrPortFrom(a, 53)
			}
			cfg.DNSUpstreams = append(cfg.DNSUpstreams, ap)
		}
	}
	if cfg.AdvertiseAddr == "" {
		fmt.Fprintln(std.stderr, "vxnet agent: --advertise-addr IP is required (see vxnet agent --help)")
		return 2
	}
	switch {
	case *dockerScope != "local" && *dockerScope != "global":
		fmt.Fprintf(std.stderr, "vxnet agent: --docker-scope %q: want \"local\" or \"global\"\n", *dockerScope)
		return 2
	case *dockerScope == "global" && (cfg.GossipPort == config.DefaultGossipPort || cfg.GossipPort == 0):
		fmt.Fprintf(std.stderr, "vxnet agent: --docker-scope global: Docker swarm gossips on TCP and UDP port %d of every host itself; give vxnet another with --gossip-port (for example 7947, on every host and in --join)\n", config.DefaultGossipPort)
		return 2
	}
	log, err := newLogger(std, *level)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet agent: %v\n", err)
		return 2
	}
	switch *logFormat {
	case "text":
	case "json":
		var l slog.Level
		l.UnmarshalText([]byte(*level))
		log = slog.New(slog.NewJSONHandler(std.stderr, &slog.HandlerOptions{Level: l}))
	default:
		fmt.Fprintf(std.stderr, "vxnet agent: --log-format %q: want text or json\n", *logFormat)
		return 2
	}
	cfg.Logger, cfg.Version = log, version
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet agent: %v\n", err)
		var ce *config.Error
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if runtime.GOOS == "windows" && *dockerSock != "off" && *dockerSock != "" {
		fmt.Fprintln(std.stderr, "vxnet agent: --docker-plugin: Docker's plugin is served on Linux only (Docker on Windows looks for plugins on named pipes, and its containers attach to HNS endpoints)")
		return 2
	}
	if *dockerSock != "off" && *dockerSock != "" {
		if *dockerScope == "global" && (cfg.VXLANPort == config.DefaultVXLANPort || cfg.VXLANPort == 0) {
			log.Warn("Docker swarm's own overlay networks use UDP 4789 too unless the swarm was made with docker swarm init --data-path-port PORT; vxnet needs its VXLAN port to itself (or give it another with --vxlan-port)")
		}
		eng, err := docker.NewHTTPEngine(*dockerHost)
		if err != nil {
			fmt.Fprintf(std.stderr, "vxnet agent: --docker-host: %v\n", err)
			return 2
		}
		// Served before the agent joins its cluster: Docker finds the
		// plugin at once, and its calls wait until the agent is ready.
		p := docker.New(docker.Config{Backend: a, Engine: eng, Ready: a.Ready(), Stopping: ctx.Done(), Scope: *dockerScope, MTU: a.MTU(), NetworkMTU: a.NetworkMTU, NetnsRoot: *dockerRoot, Logger: log})
		stopPlugin, err := p.Serve(*dockerSock)
		switch {
		case err != nil && flagSet(fs, "docker-plugin"):
			fmt.Fprintf(std.stderr, "vxnet agent: --docker-plugin: %v\n", err)
			return 1
		case err != nil: // the default: the agent runs on without it
			log.Warn("not serving Docker's plugin (--docker-plugin off to say so)", "error", err)
		default:
			defer stopPlugin()
			log.Info("serving Docker's plugin", "pluginSocket", *dockerSock, "dockerHost", *dockerHost)
		}
	}
	err = a.Run(ctx)
	stop() // the plugin refuses calls from here on, whatever ended Run
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet agent: %v\n", err)
		return 1
	}
	return 0
}

// flagSet reports whether flag name was given (on the command line or in
// the config file).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// duplicateKey finds a key given twice in the JSON object b (already
// known to decode).
func duplicateKey(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		k, ok := tok.(string)
		if err != nil || !ok {
			return "", false
		}
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// applyConfigFile sets, from a JSON object of flag names to values, every
// flag the command line did not set. Unknown keys are errors naming them.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("--config %s: not a JSON object of flag names to values: %v", path, err)
	}
	if k, dup := duplicateKey(b); dup {
		return fmt.Errorf("--config %s: setting %q is given twice (JSON keeps only one: which did you mean?)", path, k)
	}
	if _, secret := m["gossip-key"]; secret {
		if err := config.CheckSecretFile("config", path); err != nil {
			return fmt.Errorf("--config %s holds gossip-key, but %v (or move the key to a gossip-key-file)", path, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("--config %s: unknown setting %q (the keys are the flag names of vxnet agent --help)", path, k)
		}
		if set[k] {
			continue
		}
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			v = strings.Join(parts, ",")
		default:
			return fmt.Errorf("--config %s: setting %q: want a string, number, boolean or list", path, k)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("--config %s: setting %q = %q: %v%s", path, k, v, err, wantOf(fs.Lookup(k)))
		}
	}
	return nil
}

// wantOf says what kind of value a flag takes, for an error: "; want a
// whole number", say.
func wantOf(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case bool:
		return "; want true or false"
	case int, int64, uint, uint64:
		return "; want a whole number"
	case time.Duration:
		return "; want a duration such as 30s or 1h"
	}
	return ""
}
