package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vxnet/vxnet/bench"
)

const benchUsage = `Usage: vxnet bench <command> [flags]

Measurements, not tests: each prints progress on stderr, a Markdown report on
stdout, and exits 0 whatever the numbers (1 only if it could not measure).

Commands:
  dataplane   vxnet's data plane against the kernel's VXLAN and the bare underlay (Linux, root)
  control     gossip convergence and failover, IPAM first address, DNS against dnsmasq

Run 'vxnet bench <command> --help' for what each number means.
`

const benchDataplaneUsage = `Usage: vxnet bench dataplane [--time 10s] [--reps 3] [--json FILE] [--chart FILE.svg] [--binary PATH]
                            [--no-relay] [--no-ovs] [--no-encrypted] [--no-wireguard] [--wireguard PATH] [--host-cpus N]

Builds a two-host testbed from network namespaces on this machine (nothing
touches its own interfaces, and every namespace and process is removed at the
end, also on failure or ^C), and measures up to eight ways across it,
interleaved (each repetition runs underlay, kernel, vxnet, vip, encrypted,
wireguard, relay, ovs in turn):

  underlay   host 1 to host 2 over a veth pair, MTU 1500: the limit
  kernel     container to container through the kernel's vxlan devices (VNI
             4242, MTU 1450) on the same kind of underlay
  vxnet      container to container through 'vxnet dataplane' (this binary, or
             --binary) on each host: TUN devices, userspace VXLAN, MTU 1450
  vip        the same hosts and container, reached at a service's virtual IP
             (one task: the container): what the flow table and the address
             rewrites cost
  encrypted  vxnet with its network encrypted: every datagram sealed
             (AES-256-GCM where the CPU has AES), keys made for the run, MTU
             1422; --no-encrypted leaves it out
  wireguard  host to host through wireguard-go, the userspace WireGuard, on
             each host (built by make deps at the version go.mod names;
             --wireguard PATH), configured with wg, MTU 1420: the encrypted
             path's peer; left out without wg or wireguard-go
  relay      container to container through socat on each host, copying each
             packet between a TUN device and a UDP socket: the simplest
             userspace data plane, for scale (what the trips through
             userspace alone cost here); left out without socat
  ovs        container to container through Open vSwitch's userspace datapath
             (netdev bridges, userspace VXLAN tunnelling) on each host, with an
             ovsdb-server and ovs-vswitchd of the benchmark's own per host
             (never the machine's own OVS); left out without
             openvswitch-switch, ethtool and nft

Numbers, per path, median over the repetitions with the range (min–max):
  TCP 1 stream     iperf3 -c, one connection, Gbit/s the receiver got
  TCP 4 streams    the same with -P 4
  UDP 64 B         iperf3 -u -l 64 -b 0: 64-byte datagrams per second the
    received       receiver got (the sent rate is in the progress and the JSON;
                   when both are close, iperf3 itself was the limit)
  UDP 64 B         datagrams per second the path put into the receiving
    delivered      socket, read or dropped there for want of room (the server
                   namespace's UDP InDatagrams + RcvbufErrors; not for
                   wireguard-go, whose tunnel shares the namespace): far above
                   "received", the path kept up and the receiver, short of
                   CPU, did not
  ping RTT p50/p99 ping -i 0.01 for --time: percentiles of the round trips
  vxnet CPU        CPU seconds (user + system) both vxnet processes used during
                   each test, and cores busy (seconds per second of test)
  CPU per GB       CPU seconds one GB moved by TCP 1 stream cost: the whole
                   machine's (every core, /proc/stat), on every path, and
                   vxnet's own processes'
Ratios are of the medians: kernel / underlay (what the kernel's VXLAN costs),
vxnet / kernel, and vxnet against the relay and OVS. Targets: vxnet / kernel
TCP 1 stream ≥ 0.5, UDP 64 B ≥ 0.5, ping RTT p50 ≤ 2; vxnet / OVS TCP 1
stream ≥ 5, UDP 64 B ≥ 1.5; vxnet / relay RTT p50 ≤ 1.1; encrypted /
wireguard-go TCP 1 stream ≥ 2, UDP 64 B ≥ 2, RTT p50 ≤ 1; encrypted / vxnet
TCP 1 stream ≥ 0.8. Every endpoint
shares this machine's cores: read ratios, not absolute numbers. The two
simulated hosts share them too, so each vxnet host runs Go code on at most
half of them at once (GOMAXPROCS; --host-cpus), as each of two real hosts
would have its own; the kernel, socat and OVS have no such knob, and on two
CPUs a vxnet host that spreads over both contends with the other host and
both iperf3 processes (--host-cpus -1 measures that). Needs Linux,
root, ip, iperf3, ping; socat for the relay; openvswitch-switch, ethtool and
nft for OVS; wireguard-tools and wireguard-go for WireGuard (make deps
installs them all).

Flags:
`

const benchControlUsage = `Usage: vxnet bench control [--json FILE] [--quick] [--no-dns] [--store gossip|etcd|both]

Runs the control plane's scenarios in this process and reports them together,
for each store of the tables side by side: gossip (the default store) and
etcd (a 3-member etcd cluster on loopback this command starts from the etcd
binary, Debian's etcd-server; gossip then only carries membership):
  convergence  in-process clusters on an in-memory network (LAN profile, 100
             tracked puts, one every 50 ms): time until a put is seen by every
             node, p50/p90/p99/max, and bytes each node sends per second.
             "churn + 1% loss": a tenth of the nodes write and delete a row every
             100 ms throughout, and 1% of packets are dropped
  writes     a tenth of the nodes (at least one) put rows as fast as the store
             takes them for 3 s (at most 1000 each): puts per second, how long
             a put takes, how long after the last put every node showed every
             row, and rows per second visible everywhere
  failover   a node goes silent: time until every other node has withdrawn its
             rows (fast profile; etcd: the node's 3 s lease)
  IPAM       a global network is created on one host: time until each host got
             its first address (the creator; the others' p50/p90/max)
  DNS        vxnet's DNS server and dnsmasq on loopback, 1000 names, dnsperf:
             queries per second on one core, CPU µs per query, and latency at a
             fixed 20k qps (p50, p99; the range of p99 over 5 runs)
Needs dnsperf and dnsmasq for DNS (--no-dns skips it). Takes a few minutes;
--quick runs the small scenarios only.

Flags:
`

func cmdBench(std stdio, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(std.stderr, benchUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "dataplane":
		return cmdBenchDataplane(ctx, std, args[1:])
	case "control":
		return cmdBenchControl(ctx, std, args[1:])
	case "dns-child":
		return cmdBenchDNSChild(std, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(std.stdout, benchUsage)
		return 0
	default:
		fmt.Fprintf(std.stderr, "vxnet bench: unknown command %q\n\n%s", args[0], benchUsage)
		return 2
	}
}

// cmdBenchDNSChild is vxnet's DNS server as the DNS benchmark runs it, in
// a process of its own; not for people, so not in the usage.
func cmdBenchDNSChild(std stdio, args []string) int {
	if err := bench.ServeDNSChild(args, os.Stdin, std.stdout); err != nil {
		fmt.Fprintf(std.stderr, "vxnet bench dns-child: %v\n", err)
		return 1
	}
	return 0
}

// secondsFlag is a duration flag that also takes a plain number of
// seconds ("10" is 10s).
type secondsFlag struct{ d *time.Duration }

func (f secondsFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f secondsFlag) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*f.d = time.Duration(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 10s, or seconds")
	}
	*f.d = d
	return nil
}

func newBenchFlags(std stdio, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseBenchFlags parses args; ok false means return code.
func parseBenchFlags(std stdio, fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(std.stderr, "vxnet %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

func cmdBenchDataplane(ctx context.Context, std stdio, args []string) int {
	cfg := bench.DefaultDataplaneConfig()
	fs := newBenchFlags(std, "dataplane", benchDataplaneUsage)
	fs.Var(secondsFlag{&cfg.Time}, "time", "length of each test `DURATION` (10s; at least 1s)")
	fs.IntVar(&cfg.Reps, "reps", cfg.Reps, "repetitions of every test on every path `N`")
	fs.StringVar(&cfg.Binary, "binary", "", "the vxnet binary the vxnet hosts run `PATH` (default: this one)")
	jsonPath := fs.String("json", "", "also write every sample and the summary as JSON to `FILE`")
	chartPath := fs.String("chart", "", "also draw the comparison as an SVG chart to `FILE`")
	fs.BoolVar(&cfg.NoRelay, "no-relay", false, "leave the socat relay path out (a fifth less time)")
	fs.BoolVar(&cfg.NoOVS, "no-ovs", false, "leave the Open vSwitch path out (a seventh less time)")
	fs.BoolVar(&cfg.NoEncrypted, "no-encrypted", false, "leave the vxnet-encrypted path out")
	fs.BoolVar(&cfg.NoWireGuard, "no-wireguard", false, "leave the wireguard-go path out")
	fs.StringVar(&cfg.WireGuard, "wireguard", "", "the wireguard-go binary `PATH` (default: wireguard-go or wireguard in PATH, or ~/go/bin/wireguard)")
	fs.IntVar(&cfg.HostCPUs, "host-cpus", 0, "the most CPUs each vxnet host runs on at once, its GOMAXPROCS `N` (default: half this machine's, at least 1; -1: all)")
	if code, ok := parseBenchFlags(std, fs, args); !ok {
		return code
	}
	if cfg.Time < time.Second || cfg.Reps < 1 {
		fmt.Fprintf(std.stderr, "vxnet bench dataplane: --time %v --reps %d: want at least 1s and 1\n", cfg.Time, cfg.Reps)
		return 2
	}
	r, err := bench.RunDataplaneContext(ctx, cfg, std.stderr)
	if len(r.Samples) > 0 {
		if err != nil {
			fmt.Fprintln(std.stdout, "Incomplete run: the table holds what was measured before the failure.")
		}
		fmt.Fprintln(std.stdout, r.Markdown())
		fmt.Fprint(std.stdout, r.Verdict())
		werr := writeBenchFile(*jsonPath, func() ([]byte, error) { return json.MarshalIndent(r, "", "  ") })
		if werr == nil {
			werr = writeBenchFile(*chartPath, func() ([]byte, error) { return r.SVG(), nil })
		}
		if werr != nil {
			fmt.Fprintf(std.stderr, "vxnet bench dataplane: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(std.stderr, "vxnet bench dataplane: %v\n", err)
		return 1
	}
	return 0
}

// writeBenchFile writes what gen makes to path, unless path is empty.
func writeBenchFile(path string, gen func() ([]byte, error)) error {
	if path == "" {
		return nil
	}
	b, err := gen()
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// controlReport is `vxnet bench control`'s result; durations are in
// milliseconds.
type controlReport struct {
	Started  time.Time         `json:"started"`
	Gossip   []gossipRow       `json:"gossip"`
	Failover []failoverRow     `json:"failover"`
	Writes   []writesRow       `json:"writes"`
	IPAM     []ipamRow         `json:"ipam"`
	DNS      []dnsRow          `json:"dns,omitempty"`
	Errors   map[string]string `json:"errors,omitempty"` // scenario -> why it could not run
}

type gossipRow struct {
	Store           string  `json:"store"`
	Nodes           int     `json:"nodes"`
	Scenario        string  `json:"scenario"`
	P50ms           float64 `json:"p50ms"`
	P90ms           float64 `json:"p90ms"`
	P99ms           float64 `json:"p99ms"`
	MaxMs           float64 `json:"maxMs"`
	Missing         int     `json:"missing"`
	BytesPerNodeSec float64 `json:"bytesPerNodeSec"`
}

type failoverRow struct {
	Store       string  `json:"store"`
	Nodes       int     `json:"nodes"`
	WithdrawnMs float64 `json:"withdrawnMs"`
}

type ipamRow struct {
	Store     string  `json:"store"`
	Hosts     int     `json:"hosts"`
	CreatorMs float64 `json:"creatorMs"`
	P50ms     float64 `json:"p50ms"`
	P90ms     float64 `json:"p90ms"`
	MaxMs     float64 `json:"maxMs"`
}

type writesRow struct {
	Store     string  `json:"store"`
	Nodes     int     `json:"nodes"`
	Writers   int     `json:"writers"`
	PerSec    float64 `json:"putsPerSec"`
	PutP50ms  float64 `json:"putP50ms"`
	PutP99ms  float64 `json:"putP99ms"`
	VisibleMs float64 `json:"visibleMs"`
	Missing   int     `json:"missing"`
	// Everywhere: rows per second visible on every node, from the first
	// put until the last node showed the last row.
	Everywhere float64 `json:"rowsPerSecEverywhere"`
}

type dnsRow struct {
	Server   string  `json:"server"`
	QPS      float64 `json:"qps"`
	CPUus    float64 `json:"cpuUsPerQuery"`
	P50ms    float64 `json:"p50ms"`
	P99ms    float64 `json:"p99ms"`
	P99MinMs float64 `json:"p99MinMs"`
	P99MaxMs float64 `json:"p99MaxMs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func cmdBenchControl(ctx context.Context, std stdio, args []string) int {
	fs := newBenchFlags(std, "control", benchControlUsage)
	jsonPath := fs.String("json", "", "also write the report as JSON to `FILE`")
	quick := fs.Bool("quick", false, "small scenarios only (10 nodes, 3 hosts, short DNS runs)")
	noDNS := fs.Bool("no-dns", false, "skip the DNS comparison (needs dnsperf and dnsmasq)")
	store := fs.String("store", "both", "the tables' `STORE` to measure: gossip, etcd (a 3-member etcd on loopback, from the etcd binary) or both, side by side")
	if code, ok := parseBenchFlags(std, fs, args); !ok {
		return code
	}
	if *store != "gossip" && *store != "etcd" && *store != "both" {
		fmt.Fprintf(std.stderr, "vxnet bench control: --store %q: want gossip, etcd or both\n", *store)
		return 2
	}
	r := controlReport{Started: time.Now().UTC(), Errors: map[string]string{}}
	say := func(format string, a ...any) { fmt.Fprintf(std.stderr, format+"\n", a...) }
	type backend struct {
		name string
		etcd []string
	}
	var backends []backend
	if *store == "gossip" || *store == "both" {
		backends = append(backends, backend{name: "gossip"})
	}
	if *store == "etcd" || *store == "both" {
		say("etcd: starting a 3-member cluster on loopback…")
		eps, stopEtcd, err := bench.StartEtcd()
		switch {
		case err != nil && *store == "both":
			r.Errors["etcd"] = err.Error() + " (the gossip scenarios ran alone)"
		case err != nil:
			fmt.Fprintf(std.stderr, "vxnet bench control: --store etcd: %v\n", err)
			return 1
		default:
			defer stopEtcd()
			backends = append(backends, backend{name: "etcd", etcd: eps})
		}
	}
	sizes := []int{10, 50}
	if *quick {
		sizes = []int{10}
	}
	for _, n := range sizes {
		for _, churn := range []bool{false, true} {
			for _, be := range backends {
				sc := bench.GossipScenario{Nodes: n, Churn: churn, Etcd: be.etcd}
				if churn {
					sc.Loss = 0.01
				}
				name := map[bool]string{false: "quiet", true: "churn + 1 % loss"}[churn]
				say("convergence, %s: %d nodes, %s…", be.name, n, name)
				g, err := bench.RunGossip(ctx, sc)
				if err != nil {
					r.Errors[fmt.Sprintf("convergence %s %d %s", be.name, n, name)] = err.Error()
					continue
				}
				r.Gossip = append(r.Gossip, gossipRow{be.name, n, name, ms(g.P50), ms(g.P90), ms(g.P99), ms(g.Max), g.Missing, g.BytesPerNodeSec})
			}
		}
	}
	for _, n := range sizes {
		for _, be := range backends {
			writers := max(1, n/10)
			say("writes, %s: %d nodes, %d writers…", be.name, n, writers)
			w, err := bench.RunWrites(ctx, n, writers, 3*time.Second, be.etcd)
			if err != nil {
				r.Errors[fmt.Sprintf("writes %s %d", be.name, n)] = err.Error()
				continue
			}
			r.Writes = append(r.Writes, writesRow{be.name, n, writers, w.PerSec, ms(w.PutP50), ms(w.PutP99), ms(w.Visible), w.Missing, w.Everywhere})
		}
	}
	for _, n := range sizes {
		for _, be := range backends {
			say("failover, %s: %d nodes…", be.name, n)
			d, err := bench.RunFailover(ctx, n, bench.ProfileFast, be.etcd)
			if err != nil {
				r.Errors[fmt.Sprintf("failover %s %d", be.name, n)] = err.Error()
				continue
			}
			r.Failover = append(r.Failover, failoverRow{be.name, n, ms(d)})
		}
	}
	ipamSizes := []int{3, 50}
	if *quick {
		ipamSizes = []int{3}
	}
	for _, n := range ipamSizes {
		for _, be := range backends {
			say("IPAM first address, %s: %d hosts…", be.name, n)
			f, err := bench.RunIPAMFirstAddress(n, be.etcd)
			if err != nil {
				r.Errors[fmt.Sprintf("ipam %s %d", be.name, n)] = err.Error()
				continue
			}
			r.IPAM = append(r.IPAM, ipamRow{be.name, n, ms(f.Creator), ms(f.P50), ms(f.P90), ms(f.Max)})
		}
	}
	if !*noDNS {
		say("DNS: vxnet and dnsmasq, dnsperf…")
		cfg := bench.DNSConfig{}
		if *quick {
			cfg = bench.DNSConfig{Names: 100, Duration: 2 * time.Second, FixedFor: time.Second, Reps: 2}
		}
		d, err := bench.RunDNS(ctx, cfg)
		if err != nil {
			r.Errors["dns"] = err.Error()
		}
		for _, s := range d.Servers {
			r.DNS = append(r.DNS, dnsRow{s.Server, s.QPS, s.CPUus, ms(s.P50), ms(s.P99), ms(s.P99Min), ms(s.P99Max)})
		}
	}
	fmt.Fprint(std.stdout, r.markdown())
	if err := writeBenchFile(*jsonPath, func() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }); err != nil {
		fmt.Fprintf(std.stderr, "vxnet bench control: %v\n", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(std.stderr, "vxnet bench control: interrupted")
		return 1
	}
	return 0
}

// markdown renders the report as one table per scenario family.
func (r controlReport) markdown() string {
	var b strings.Builder
	if len(r.Gossip) > 0 {
		b.WriteString("Convergence (in-process, LAN profile, 100 tracked puts): time until every node saw a put; bytes are gossip's (etcd's own traffic is not counted)\n\n")
		b.WriteString("| store | nodes | scenario | p50 | p90 | p99 | max | missing | bytes/s per node |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, g := range r.Gossip {
			fmt.Fprintf(&b, "| %s | %d | %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d | %.1f k |\n",
				g.Store, g.Nodes, g.Scenario, g.P50ms, g.P90ms, g.P99ms, g.MaxMs, g.Missing, g.BytesPerNodeSec/1000)
		}
		b.WriteString("\n")
	}
	if len(r.Writes) > 0 {
		b.WriteString("Writes: a tenth of the nodes put rows as fast as the store takes them (3 s, at most 1000 rows each); rows/s everywhere counts a row once every node shows it\n\n")
		b.WriteString("| store | nodes | writers | puts/s | put p50 | put p99 | all visible after the last put | rows/s everywhere | missing |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, w := range r.Writes {
			fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.3f ms | %.3f ms | %.0f ms | %.0f | %d |\n", w.Store, w.Nodes, w.Writers, w.PerSec, w.PutP50ms, w.PutP99ms, w.VisibleMs, w.Everywhere, w.Missing)
		}
		b.WriteString("\n")
	}
	if len(r.Failover) > 0 {
		b.WriteString("Failover (fast profile): a node goes silent; time until every other node withdrew its rows\n\n")
		b.WriteString("| store | nodes | withdrawn everywhere |\n|---|---|---|\n")
		for _, f := range r.Failover {
			fmt.Fprintf(&b, "| %s | %d | %.2f s |\n", f.Store, f.Nodes, f.WithdrawnMs/1000)
		}
		b.WriteString("\n")
	}
	if len(r.IPAM) > 0 {
		b.WriteString("IPAM: first address of a fresh global network, from its creation\n\n")
		b.WriteString("| store | hosts | creator | others p50 | others p90 | others max |\n|---|---|---|---|---|---|\n")
		for _, i := range r.IPAM {
			fmt.Fprintf(&b, "| %s | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms |\n", i.Store, i.Hosts, i.CreatorMs, i.P50ms, i.P90ms, i.MaxMs)
		}
		b.WriteString("\n")
	}
	if len(r.DNS) > 0 {
		b.WriteString("DNS on loopback, one server core (dnsperf): full speed, then latency at a fixed rate\n\n")
		b.WriteString("| server | qps | CPU per query | p50 | p99 | p99 range |\n|---|---|---|---|---|---|\n")
		for _, d := range r.DNS {
			fmt.Fprintf(&b, "| %s | %.0fk | %.1f µs | %.2f ms | %.2f ms | %.2f–%.2f ms |\n",
				d.Server, d.QPS/1000, d.CPUus, d.P50ms, d.P99ms, d.P99MinMs, d.P99MaxMs)
		}
		b.WriteString("\n")
	}
	for _, name := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(&b, "**%s failed:** %s\n\n", name, r.Errors[name])
	}
	return b.String()
}
