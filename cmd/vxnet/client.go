package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/driver"
)

// socketPath is the API socket the client commands use: --socket, else
// VXNET_SOCKET, else the default.
var socketPath = api.DefaultSocket

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func client() *api.Client { return api.NewClient(socketPath) }

// requestTimeout bounds one command's requests to the agent.
const requestTimeout = 2 * time.Minute

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), requestTimeout)
}

// fail prints an API or connection error and returns the exit code: 1.
func fail(std stdio, cmd string, err error) int {
	var e *api.Error
	switch {
	case errors.As(err, &e) && e.Field != "":
		fmt.Fprintf(std.stderr, "vxnet %s: %s (%s)\n", cmd, e.Message, fieldText(cmd, e.Field))
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(std.stderr, "vxnet %s: the agent at %s did not answer within %v: is it stopped (SIGSTOP) or hung? Its log says more\n", cmd, socketPath, requestTimeout)
	default:
		fmt.Fprintf(std.stderr, "vxnet %s: %v\n", cmd, err)
	}
	return 1
}

// flagOfField is, per command, the flag or argument that gives each
// field of its API request, so that an error names what the user typed
// (an IPv6 gateway is --gateway on the command line, gateway6 in the API).
var flagOfField = map[string]map[string]string{
	"network create": {"name": "NAME", "driver": "-d", "subnet": "--subnet", "subnet6": "--subnet", "gateway": "--gateway", "gateway6": "--gateway",
		"ipRange": "--ip-range", "ipRange6": "--ip-range", "auxAddresses": "--aux-address", "options": "-o", "internal": "--internal"},
	"endpoint create": {"network": "--network", "name": "--name", "ip": "--ip", "ip6": "--ip6", "mac": "--mac", "aliases": "--alias", "netns": "--netns",
		"ifname": "--ifname", "publish": "--publish", "srvPorts": "--srv-port", "service": "--service"},
	"run":                  {"network": "--network", "name": "--name", "ip": "--ip", "aliases": "--alias", "service": "--service"},
	"service create":       {"network": "--network", "name": "--name", "vip": "--vip", "vip6": "--vip6", "publish": "--publish", "endpointMode": "--endpoint-mode"},
	"service rm":           {"network": "--network", "name": "NAME"},
	"endpoint rm":          {"network": "--network", "name": "NAME"},
	"network rm":           {"name": "NAME"},
	"network inspect":      {"name": "NAME"},
	"endpoint inspect":     {"network": "--network", "name": "NAME"},
	"service inspect":      {"network": "--network", "name": "NAME"},
	"cluster token revoke": {"id": "ID"},
	"store import":         {"format": "FILE"},
	"cluster forget":       {"name": "HOST"},
	"cluster token create": {"ttl": "--ttl"},
	"cluster token rotate": {"ttl": "--ttl"},
}

// fieldText names field of cmd's request: its flag or argument, else the
// API's field.
func fieldText(cmd, field string) string {
	if f, ok := flagOfField[cmd][field]; ok {
		return f
	}
	return "field " + field
}

func newFlags(std stdio, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut(std))
	fs.Usage = func() {
		text := usage
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		switch trimmed := strings.TrimRight(text, "\n"); {
		case n == 0: // no "Flags:" heading over nothing
			text = strings.TrimRight(strings.TrimSuffix(trimmed, "Flags:"), "\n") + "\n"
		case !strings.HasSuffix(trimmed, "Flags:"):
			text = trimmed + "\n\nFlags:\n"
		}
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// talksToAgent: command cmd sends requests to the agent's API socket.
func talksToAgent(cmd string) bool {
	group, _, _ := strings.Cut(cmd, " ")
	return slices.Contains([]string{"network", "endpoint", "service", "cluster", "run", "stats"}, group)
}

// helpAsked: the command's arguments ask for --help (-h, -help), whose
// text then goes to standard output; a usage error's goes to standard
// error. run sets it.
var helpAsked bool

// asksHelp: args, up to a "--", hold -h, -help or --help.
func asksHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// usageOut is where a usage text goes: standard output when asked for,
// standard error after a mistake.
func usageOut(std stdio) io.Writer {
	if helpAsked {
		return std.stdout
	}
	return std.stderr
}

// parse parses flags; interspersed positional arguments are allowed
// (`network create NAME --subnet X`, as Docker's CLI).
func parse(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	if talksToAgent(fs.Name()) && fs.Lookup("socket") == nil {
		// As before the command: `vxnet network ls --socket PATH` too.
		fs.Func("socket", "the agent's API socket `PATH` (same as before the command)", func(v string) error { socketPath = v; return nil })
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, 0, false
			}
			return nil, 2, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func printJSON(std stdio, v any) int {
	enc := json.NewEncoder(std.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return 0
}

func checkFormat(std stdio, cmd, format string) bool {
	return checkFormatIn(std, cmd, format, "table", "json")
}

// checkFormatIn is checkFormat for a command whose formats are others.
func checkFormatIn(std stdio, cmd, format string, formats ...string) bool {
	if !slices.Contains(formats, format) {
		fmt.Fprintf(std.stderr, "vxnet %s: --format %q: want %s\n", cmd, format, strings.Join(formats, " or "))
		return false
	}
	return true
}

const networkUsage = `Usage: vxnet network COMMAND

Commands:
  create   create a network:  vxnet network create [-d overlay] [--subnet CIDR] [--gateway IP] [--ip-range CIDR] [--internal] [-o KEY=VALUE] NAME
  ls       list networks
  inspect  show one network as JSON
  rm       remove a network, from any host, once no endpoint uses it (networks are the cluster's:
           they stay when the host that created them goes)
`

func cmdNetwork(std stdio, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(std.stdout, networkUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "create":
		return cmdNetworkCreate(std, args[1:])
	case "ls", "list":
		return cmdNetworkLs(std, args[1:])
	case "inspect":
		return cmdNetworkInspect(std, args[1:])
	case "rm", "remove":
		return cmdNetworkRm(std, args[1:])
	}
	fmt.Fprintf(std.stderr, "vxnet network: unknown command %q\n\n%s", args[0], networkUsage)
	return 2
}

// networkCreateUsage has the drivers' help put in (driverHelp).
const networkCreateUsage = `Usage: vxnet network create [flags] NAME

Creates a network every host of the cluster sees (a nat network is used only
on the host that created it). Without --subnet it gets a free /24 of
10.0.0.0/8 (the place to start looking depends on the name, so that hosts
creating networks at once rarely pick the same), stepping around this
host's own networks, which its routes would shadow (those of its
interfaces and routes: a LAN, a VPN, another runtime's bridge) and the
hosts' underlay addresses; subnets never overlap across the cluster. One --subnet makes an IPv4 or an IPv6 network; two, an
IPv4 and an IPv6 one, a dual-stack overlay network. Each host hands out
addresses from blocks of the subnet it holds. Subnets containers cannot use
are refused: loopback, link-local, multicast, 0.0.0.0/8, 240.0.0.0/4, :: and
IPv4-mapped addresses; so is a gateway on the network or broadcast address.

NAME: 1-64 letters, digits, '_', '.' and '-', starting with a letter or digit,
each part between dots 1-63 characters (endpoints resolve as ENDPOINT.NAME in
DNS). DNS ignores case: a name that differs from another network's only in
case is refused.

Drivers:
%s
Examples:
  vxnet network create -d overlay --subnet 10.0.9.0/24 web
  vxnet network create --subnet 10.0.10.0/24 --subnet fd00:10::/64 dual
  vxnet network create -d nat --subnet 172.30.0.0/24 local
  vxnet network create -d l2tunnel -o policy-host=198.18.0.3 -o policy-deny=10.0.5.0/24:22/tcp guarded
  vxnet network create -d transparent -o uplink=eth0 --subnet 192.168.1.0/24 \
      --gateway 192.168.1.1 --ip-range 192.168.1.192/27 lan

Flags:
`

// driverHelp lists the drivers as each describes itself.
func driverHelp() string {
	var b strings.Builder
	for _, d := range driver.All() {
		for i, line := range strings.Split(d.Help(), "\n") {
			name := ""
			if i == 0 {
				name = d.Name()
			}
			fmt.Fprintf(&b, "  %-12s %s\n", name, line)
		}
	}
	return b.String()
}

func cmdNetworkCreate(std stdio, args []string) int {
	fs := newFlags(std, "network create", fmt.Sprintf(networkCreateUsage, driverHelp()))
	var req api.NetworkCreate
	fs.StringVar(&req.Driver, "d", driver.Default, "`DRIVER`: "+strings.Join(driver.Names(), ", ")+" (see above)")
	fs.StringVar(&req.Driver, "driver", driver.Default, "same as -d")
	var subnets, gateways, ranges multiFlag
	fs.Var(&subnets, "subnet", "`CIDR` of the network, IPv4 or IPv6 (default: a free /24 of 10.0.0.0/8, as above); twice, an IPv4 and an IPv6 one, for a dual-stack overlay network")
	fs.Var(&gateways, "gateway", "gateway `IP`, never handed out (default: the subnet's first address); one per family")
	fs.Var(&ranges, "ip-range", "hand out addresses only from this sub-`CIDR`; one per family")
	fs.BoolVar(&req.Internal, "internal", false, "no outside connectivity: DNS never forwards")
	var aux, opts multiFlag
	fs.Var(&aux, "aux-address", "reserve an address: `NAME=IP` (repeatable)")
	fs.Var(&opts, "o", "driver or IPAM option `KEY=VALUE` (repeatable; KEY alone is KEY=true): block-size=PREFIXLEN (of the IPv4 subnet's blocks; IPv6 blocks keep the default, 64 addresses, a /122); mss-clamp=true|MSS (lower TCP SYNs' MSS to what the MTU carries; an MSS given is IPv4's, IPv6's is 20 less); encrypted (overlay, l2tunnel: seal every datagram between hosts, MTU 28 bytes lower; docs/ENCRYPTION.md); l2tunnel: policy-host, policy-allow, policy-deny, policy-default; transparent: uplink, dhcp; l2bridge: uplink")
	fs.Var(&opts, "opt", "same as -o")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.stderr, "vxnet network create: want exactly one NAME (see --help)")
		return 2
	}
	req.Name = pos[0]
	if err := splitFamilies(&req, subnets, gateways, ranges); err != nil {
		fmt.Fprintf(std.stderr, "vxnet network create: %v\n", err)
		return 2
	}
	for _, a := range aux {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			fmt.Fprintf(std.stderr, "vxnet network create: --aux-address %q: want NAME=IP\n", a)
			return 2
		}
		if req.AuxAddresses == nil {
			req.AuxAddresses = map[string]string{}
		}
		if old, dup := req.AuxAddresses[k]; dup {
			fmt.Fprintf(std.stderr, "vxnet network create: --aux-address %q: %s is given twice (also %s=%s)\n", a, k, k, old)
			return 2
		}
		req.AuxAddresses[k] = v
	}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if k == "" {
			fmt.Fprintf(std.stderr, "vxnet network create: -o %q: want KEY=VALUE\n", o)
			return 2
		}
		if !ok {
			v = "true" // -o encrypted, as Docker takes it
		}
		if req.Options == nil {
			req.Options = map[string]string{}
		}
		req.Options[k] = v
	}
	c, cancel := ctx()
	defer cancel()
	n, err := client().CreateNetwork(c, req)
	if err != nil {
		return fail(std, "network create", err)
	}
	fmt.Fprintf(std.stdout, "%s\t%s\tvni %d\n", n.Name, subnetsText(n), n.VNI)
	return 0
}

func cmdNetworkLs(std stdio, args []string) int {
	fs := newFlags(std, "network ls", "Usage: vxnet network ls [--format table|json]\n\nFlags:\n")
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(std, "network ls", pos) {
		return 2
	}
	if !checkFormat(std, "network ls", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	ns, err := client().Networks(c)
	if err != nil {
		return fail(std, "network ls", err)
	}
	if *format == "json" {
		return printJSON(std, ns)
	}
	tw := tabwriter.NewWriter(std.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDRIVER\tSCOPE\tSUBNET\tVNI\tCREATED BY\tEGRESS\tENCRYPTED")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, n.Driver, n.Scope, subnetsText(n), n.VNI, n.Creator, yesNo(n.Egress), yesNo(driver.Encrypted(n.Options)))
	}
	tw.Flush()
	return 0
}

func cmdNetworkInspect(std stdio, args []string) int {
	fs := newFlags(std, "network inspect", "Usage: vxnet network inspect NAME...\n\nShows each network whole, as JSON, with the address blocks hosts hold\n(blocks: each host gives addresses, --ip ones too, from its own blocks\nonly) and how many blocks no host has taken yet (otherBlocks).\n")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(std.stderr, "vxnet network inspect: want a NAME")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	var out []api.Network
	for _, name := range pos {
		n, err := client().InspectNetwork(c, name)
		if err != nil {
			return fail(std, "network inspect", err)
		}
		out = append(out, n)
	}
	return printJSON(std, out)
}

func cmdNetworkRm(std stdio, args []string) int {
	fs := newFlags(std, "network rm", "Usage: vxnet network rm NAME...\n")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(std.stderr, "vxnet network rm: want a NAME")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	for _, name := range pos {
		if err := client().RemoveNetwork(c, name); err != nil {
			return fail(std, "network rm", err)
		}
		fmt.Fprintln(std.stdout, name)
	}
	return 0
}

const endpointUsage = `Usage: vxnet endpoint COMMAND

Commands:
  create   attach a network namespace of this host to a network:
           vxnet endpoint create --network NET --name NAME --netns NS [--ip IP] [--alias A] [--service S] [--srv-port NAME=PORT] [-p HOSTPORT:CONTAINERPORT]
  ls       list the endpoints of every host
  inspect  show endpoints whole, as JSON: vxnet endpoint inspect [--network NET] NAME...
  rm       detach an endpoint of this host: vxnet endpoint rm --network NET NAME
`

func cmdEndpoint(std stdio, args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(std.stdout, endpointUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "create":
		return cmdEndpointCreate(std, args[1:])
	case "ls", "list":
		return cmdEndpointLs(std, args[1:])
	case "rm", "remove":
		return cmdEndpointRm(std, args[1:])
	case "inspect":
		return cmdEndpointInspect(std, args[1:])
	}
	fmt.Fprintf(std.stderr, "vxnet endpoint: unknown command %q\n\n%s", args[0], endpointUsage)
	return 2
}

const endpointInspectUsage = `Usage: vxnet endpoint inspect [--network NET] NAME...

Shows each endpoint named, as JSON: its host, VTEP, MAC, addresses,
aliases, service, namespace, published ports, labels, and for one that is
down its state and why. A name on several networks shows each, unless
--network picks one. Endpoints of hosts that are down are shown too.

Flags:
`

func cmdEndpointInspect(std stdio, args []string) int {
	fs := newFlags(std, "endpoint inspect", endpointInspectUsage)
	network := fs.String("network", "", "only the endpoints of `NETWORK`")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(std.stderr, "vxnet endpoint inspect: want a NAME")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	eps, err := client().AllEndpoints(c)
	if err != nil {
		return fail(std, "endpoint inspect", err)
	}
	var out []api.Endpoint
	for _, name := range pos {
		var found bool
		for _, e := range eps {
			if strings.EqualFold(e.Name, name) && (*network == "" || strings.EqualFold(e.Network, *network)) {
				out, found = append(out, e), true
			}
		}
		if !found {
			where := ""
			if *network != "" {
				where = fmt.Sprintf(" on network %q", *network)
			}
			fmt.Fprintf(std.stderr, "vxnet endpoint inspect: no endpoint %q%s (vxnet endpoint ls lists them)\n", name, where)
			return 1
		}
	}
	return printJSON(std, out)
}

const endpointCreateUsage = `Usage: vxnet endpoint create --network NET --name NAME --netns NS [flags]

Attaches a container's network namespace to a network: a TUN device (eth0 by
default) appears in it with the endpoint's address and MTU, and the
namespace's resolver points at vxnet's DNS on 127.0.0.11, where NAME, its
aliases and its service resolve from every container on the network, and
its --srv-port ports as SRV records.

NAME, aliases and services are DNS labels: 1-63 letters, digits or '-',
starting with a letter or digit. DNS ignores case, so on one network an
endpoint named like another but for case (Web, web) is refused; names are
kept as given.

An endpoint whose namespace is an ip netns name is removed by the agent
when that namespace is deleted; one given as a path (/proc/PID/ns/net, a
runtime's) stays until endpoint rm, which its runtime runs.

Example:
  ip netns add c1
  vxnet endpoint create --network web --name api --netns c1

  # on a nat network (or an overlay network that is not --internal): port
  # 8080 of this host (any of its addresses, 127.0.0.1 too) goes to port 80
  # of the container
  vxnet network create -d nat --subnet 172.30.0.0/24 local
  vxnet endpoint create --network local --name www --netns c2 -p 8080:80

  # SRV: dig SRV _http._tcp.front answers 0 0 8080 web1.web.
  vxnet endpoint create --network web --name web1 --service front --srv-port http=8080 --netns c3

Flags:
`

func cmdEndpointCreate(std stdio, args []string) int {
	fs := newFlags(std, "endpoint create", endpointCreateUsage)
	var req api.EndpointCreate
	fs.StringVar(&req.Network, "network", "", "`NETWORK` to attach to (required)")
	fs.StringVar(&req.Name, "name", "", "endpoint `NAME`, resolvable in DNS (required)")
	fs.StringVar(&req.Netns, "netns", "", "the container's network namespace: a `NAME` from `ip netns`, or a path like /proc/PID/ns/net (required on Linux; on Windows leave it out: the container attaches to the HNS endpoint vxnet-NETWORK-NAME)")
	fs.StringVar(&req.Ifname, "ifname", "", "interface `NAME` in the namespace (default eth0)")
	fs.StringVar(&req.IP, "ip", "", "a static `IP` instead of the next free one")
	fs.StringVar(&req.IP6, "ip6", "", "a static IPv6 `IP` on a dual-stack network, instead of the next free one")
	fs.StringVar(&req.MAC, "mac", "", "the endpoint's `MAC` on the overlay, as kernel VXLAN peers see it (default: derived from its address)")
	fs.StringVar(&req.Service, "service", "", "`SERVICE` this endpoint joins: its VIP spreads connections over its endpoints (vxnet service create), or, with none created, SERVICE answers with every endpoint round robin; tasks.SERVICE lists them")
	var aliases, publish, srvPorts multiFlag
	fs.Var(&aliases, "alias", "another DNS `NAME` (repeatable)")
	fs.Var(&srvPorts, "srv-port", "a port the endpoint serves, in DNS as an SRV record: `NAME=PORT[/tcp|udp]` (repeatable; tcp by default): _NAME._PROTO.SERVICE answers \"0 0 PORT ENDPOINT.NETWORK.\" for every endpoint of the service (--service, else --name)")
	fs.Var(&publish, "p", "publish a port, `HOSTPORT:CONTAINERPORT[/tcp|udp]` (repeatable; nat networks, and overlay networks that are not --internal); -p PORT is PORT:PORT (Docker would pick a host port)")
	fs.Var(&publish, "publish", "same as -p")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet endpoint create: unexpected argument %q (the name goes in --name)\n", pos[0])
		return 2
	}
	// --netns is checked by the agent: on Windows (HNS) an endpoint has none.
	for _, f := range []struct{ flag, v string }{{"--network", req.Network}, {"--name", req.Name}} {
		if f.v == "" {
			fmt.Fprintf(std.stderr, "vxnet endpoint create: %s is required (see --help)\n", f.flag)
			return 2
		}
	}
	req.Aliases = aliases
	req.Publish = publish
	req.SRVPorts = srvPorts
	c, cancel := ctx()
	defer cancel()
	ep, err := client().CreateEndpoint(c, req)
	if err != nil {
		return fail(std, "endpoint create", err)
	}
	fmt.Fprintf(std.stdout, "%s\t%s\t%s\t%s\n", ep.Name, ep.Network, strings.Join(ep.Addresses, ","), ep.MAC)
	return 0
}

func cmdEndpointLs(std stdio, args []string) int {
	fs := newFlags(std, "endpoint ls", `Usage: vxnet endpoint ls [--network NET] [--all] [--format table|json]

Every host's endpoints: name, network, host, address, MAC, aliases,
published ports and state: up, or, on its own host only, down with the
reason (its name was taken by an endpoint claimed first, or it lost its
address; endpoint rm there removes it). The endpoints of
hosts that are down (failed or stopped without leaving) are kept by the
cluster for their return; --all lists them too, as "host down", with since
when and until when their names are held.

Flags:
`)
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	network := fs.String("network", "", "only this `NETWORK`")
	all := fs.Bool("all", false, "list the endpoints of the hosts that are down too")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(std, "endpoint ls", pos) {
		return 2
	}
	if !checkFormat(std, "endpoint ls", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	eps, err := client().AllEndpoints(c)
	if err != nil {
		return fail(std, "endpoint ls", err)
	}
	out := eps[:0]
	away := 0 // endpoints of down hosts left out
	for _, e := range eps {
		if *network != "" && e.Network != *network {
			continue
		}
		if e.State == api.StateHostDown && !*all {
			away++
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 && away == 0 && *network != "" {
		// Nothing listed: say so if the network is not there at all.
		if _, err := client().Network(c, *network); err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
				fmt.Fprintf(std.stderr, "vxnet endpoint ls: no network %q (--network; vxnet network ls lists them)\n", *network)
				return 1
			}
		}
	}
	if *format == "json" {
		return printJSON(std, out)
	}
	printEndpoints(std.stdout, out)
	switch {
	case away == 1:
		fmt.Fprintln(std.stdout, "\n1 endpoint of a host that is down is not listed (--all lists it)")
	case away > 1:
		fmt.Fprintf(std.stdout, "\n%d endpoints of hosts that are down are not listed (--all lists them)\n", away)
	}
	return 0
}

// printEndpoints writes endpoints as a table.
func printEndpoints(w io.Writer, eps []api.Endpoint) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNETWORK\tHOST\tADDRESS\tMAC\tALIASES\tPORTS\tSTATE")
	for _, e := range eps {
		state := "up"
		if e.State != "" {
			state = e.State + ": " + e.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Network, e.Host, strings.Join(e.Addresses, ","), e.MAC,
			strings.Join(e.Aliases, ","), strings.Join(e.Publish, ","), state)
	}
	tw.Flush()
}

func cmdEndpointRm(std stdio, args []string) int {
	fs := newFlags(std, "endpoint rm", `Usage: vxnet endpoint rm --network NET NAME...

Removes endpoints of this host: the container's interface goes, its
address is free, and every host forgets the endpoint. An endpoint lives
on the host that made it; another host's is removed there (the error
names it). A down endpoint (its name taken, or its address lost) is
removed the same way. The endpoints of a host that is down come back
with it; vxnet cluster forget drops them if it will not come back.

Flags:
`)
	network := fs.String("network", "", "the endpoints' `NETWORK` (required)")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if *network == "" || len(pos) == 0 {
		fmt.Fprintln(std.stderr, "vxnet endpoint rm: want --network NET and a NAME")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	for _, name := range pos {
		if err := client().RemoveEndpoint(c, *network, name); err != nil {
			return fail(std, "endpoint rm", err)
		}
		fmt.Fprintln(std.stdout, name)
	}
	return 0
}

const clusterUsage = `Usage: vxnet cluster init [--advertise-addr IP]
       vxnet cluster join --token TOKEN ADDR
       vxnet cluster token ls|create|rotate|revoke
       vxnet cluster members [--down] [--format table|json]
       vxnet cluster store [--format text|json]
       vxnet cluster leave [--force]
       vxnet cluster forget HOST
       vxnet cluster rotate-keys
       vxnet cluster rotate-gossip-key

  init          make a new cluster with this host as its first member: its
                gossip key, join certificate and settings under /etc/vxnet,
                and the command that adds the other hosts
  join          add this host to a cluster with a join token
  token         list, make, rotate and revoke join tokens

  members       the live members: gossip address, VTEP, version, where each
                keeps the tables (gossip or etcd), and the start of each
                one's host key (encrypted networks); then the hosts that are
                down (failed or stopped, not left), their rows kept
  store         the store of the cluster's tables as this host sees it:
                gossip, or etcd with its endpoints, prefix, whether it is
                reachable and since when, and the revision seen. While etcd
                is down containers keep their connectivity and changes fail
                with "unavailable"
  leave         take this host out of the cluster for good: the others
                forget its endpoints and pass its address blocks on, and
                its agent stops (stopping the agent alone is a restart:
                the others keep its endpoints' names for its return)
  forget        make the cluster forget a host that is down and will not
                come back (its disk died, say): every host drops its
                endpoints and address blocks at once, instead of keeping
                them for its return for the reap time (24 h)
  rotate-keys   replace this host's session key, and with it every key that
                seals its encrypted networks' traffic with the other hosts;
                no packet is lost (the new key is announced five seconds
                before use, the old one kept a minute). Hosts also rotate by
                themselves every --key-rotation (default 1h).
  rotate-gossip-key
                replace the cluster's gossip key on every live member, in
                three steps (every host accepts the new key, then encrypts
                with it, then drops the old one), so no host is lost; it
                returns once all are done, or names the host that stopped
                it (each host still accepts every key it held). Each host
                keeps the keys in its --gossip-key-file. A host down all
                through a rotation joins again with a join token.
`

func cmdCluster(std stdio, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "init":
			return cmdClusterInit(std, args[1:])
		case "join":
			return cmdClusterJoin(std, args[1:])
		case "token":
			return cmdClusterToken(std, args[1:])
		}
	}
	if len(args) > 0 && args[0] == "rotate-keys" {
		return cmdRotateKeys(std, args[1:])
	}
	if len(args) > 0 && args[0] == "leave" {
		return cmdClusterLeave(std, args[1:])
	}
	if len(args) > 0 && args[0] == "forget" {
		return cmdClusterForget(std, args[1:])
	}
	if len(args) > 0 && args[0] == "rotate-gossip-key" {
		return cmdRotateGossipKey(std, args[1:])
	}
	if len(args) > 0 && args[0] == "store" {
		return cmdClusterStore(std, args[1:])
	}
	if len(args) == 0 || args[0] != "members" {
		fmt.Fprint(usageOut(std), clusterUsage)
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return 0
		}
		return 2
	}
	fs := newFlags(std, "cluster members", `Usage: vxnet cluster members [--down] [--format table|json]

The cluster's hosts as this agent sees them: name, gossip and VTEP
addresses, version, store and host key; this host is marked. Under the
table, the hosts that are down: they failed or stopped without leaving
(vxnet cluster leave), and the cluster keeps their endpoints and services
for their return, for up to the reap time (24 h; a minute with --profile
fast). A down host's endpoints keep their names from other hosts for 10
minutes after it went (20 s with --profile fast). With --store etcd a
host's rows go with its lease, so no host is listed down.

Flags:
`)
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	downOnly := fs.Bool("down", false, "list only the hosts that are down: name, since when, endpoints, until when their names are held")
	if pos, code, ok := parse(fs, args[1:]); !ok {
		return code
	} else if !noArgs(std, "cluster members", pos) {
		return 2
	}
	if !checkFormat(std, "cluster members", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	if *downOnly {
		down, err := client().DownHosts(c)
		if err != nil {
			return fail(std, "cluster members --down", err)
		}
		if *format == "json" {
			return printJSON(std, down)
		}
		printDown(std.stdout, down, true)
		return 0
	}
	ms, err := client().Members(c)
	if err != nil {
		return fail(std, "cluster members", err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	if *format == "json" {
		return printJSON(std, ms)
	}
	tw := tabwriter.NewWriter(std.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGOSSIP\tVTEP\tVERSION\tSTORE\tHOST KEY\t")
	for _, m := range ms {
		self := ""
		if m.Self {
			self = "(this host)"
		}
		key := "—"
		if len(m.HostKey) > 12 {
			key = m.HostKey[:12] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Addr, m.VTEP, m.Version, m.Store, key, self)
	}
	tw.Flush()
	// The hosts that are down, under the table (not from an agent of a
	// release before the list).
	if down, err := client().DownHosts(c); err == nil {
		printDown(std.stdout, down, false)
	}
	// The store's health as this host sees it, under the table.
	if st, err := client().Store(c); err == nil && st.Backend == "etcd" {
		state := "up"
		if !st.Up {
			state = "DOWN (" + st.Error + "): containers keep their connectivity; changes fail until it is back"
		}
		fmt.Fprintf(std.stdout, "\ntables in etcd %s at %s: %s\n", strings.Join(st.Endpoints, ","), st.Prefix, state)
	}
	return 0
}

// noArgs refuses the positional arguments of a command that takes none.
func noArgs(std stdio, name string, pos []string) bool {
	if len(pos) > 0 {
		fmt.Fprintf(std.stderr, "vxnet %s: unexpected argument %q (it takes none)\n", name, pos[0])
		return false
	}
	return true
}

const clusterStoreUsage = `Usage: vxnet cluster store [--format text|json]

The store of the cluster's tables as this host sees it: gossip, or etcd with
its endpoints, prefix, whether it is reachable and since when, and the
revision seen. While etcd is down containers keep their connectivity and
changes fail with "unavailable".

Flags:
`

const clusterLeaveUsage = `Usage: vxnet cluster leave [--force]

Takes this host out of the cluster for good: the other hosts forget its
endpoints at once (with etcd, its lease is given back), and its agent
stops. Stopping the agent (systemctl stop vxnet, SIGTERM) is not a leave:
the host is down, and the others keep its endpoints' names and networks
for its return. Refused while the host has endpoints, unless --force: their
containers lose the network. The host's address blocks pass to the others
after the reap time (24 h). Started again, the agent joins the cluster
again; to keep it out, disable its service (systemctl disable vxnet).

Flags:
`

const rotateKeysUsage = `Usage: vxnet cluster rotate-keys

Replaces this host's session key, and with it every key that seals its
encrypted networks' traffic with the other hosts, without a packet lost:
the new key is announced five seconds before it is used, and the old one
is still taken for a minute. One rotation at a time: another is refused
until the old key is dropped. Hosts also rotate by themselves every
--key-rotation (an agent flag, default 1h). Only an encrypted cluster
(every agent started with --gossip-key-file) has encrypted networks and
such keys: elsewhere it is refused. Run it on each host whose keys should
change.
`

const rotateGossipKeyUsage = `Usage: vxnet cluster rotate-gossip-key

Replaces the cluster's gossip key on every live member, in three steps
(every host accepts the new key, then encrypts with it, then drops the old
one), so no host is lost. It returns once all are done, or names the host
that stopped it (each host still accepts every key it held). Each host
keeps the keys in its --gossip-key-file. The hosts down at the end are
named: one down all through the rotation needs the new key (a join token,
or a copy of another host's key file); one that slept through the last
steps holds it already and comes back by itself.
`

func cmdClusterStore(std stdio, args []string) int {
	fs := newFlags(std, "cluster store", clusterStoreUsage)
	format := fs.String("format", "text", "output `FORMAT`: text or json")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if !noArgs(std, "cluster store", pos) {
		return 2
	}
	if !checkFormatIn(std, "cluster store", *format, "text", "json") {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	st, err := client().Store(c)
	if err != nil {
		return fail(std, "cluster store", err)
	}
	if *format == "json" {
		return printJSON(std, st)
	}
	state := "up"
	if !st.Up {
		state = "DOWN"
	}
	if !st.Since.IsZero() {
		state += " since " + st.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(std.stdout, "backend:    %s\nstate:      %s\nrows:       %d\n", st.Backend, state, st.Rows)
	if st.Backend == "etcd" {
		fmt.Fprintf(std.stdout, "endpoints:  %s\nprefix:     %s\nrevision:   %d\n", strings.Join(st.Endpoints, ","), st.Prefix, st.Revision)
	}
	if st.Error != "" {
		fmt.Fprintf(std.stdout, "error:      %s\n", st.Error)
	}
	return 0
}

func cmdClusterLeave(std stdio, args []string) int {
	fs := newFlags(std, "cluster leave", clusterLeaveUsage)
	force := fs.Bool("force", false, "leave even though this host has endpoints (their containers lose the network)")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if !noArgs(std, "cluster leave", pos) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	cl := client()
	res, err := cl.Leave(c, api.ClusterLeave{Force: *force})
	if err != nil {
		return fail(std, "cluster leave", err)
	}
	// The agent answers first, then leaves and stops: wait for that.
	for {
		if _, err := cl.Members(c); err != nil {
			break
		}
		select {
		case <-c.Done():
			fmt.Fprintln(std.stderr, "vxnet cluster leave: the agent said it would leave, but still answers")
			return 1
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(res.Endpoints) > 0 {
		fmt.Fprintf(std.stdout, "endpoints forgotten by the cluster: %s\n", strings.Join(res.Endpoints, ", "))
	}
	fmt.Fprintln(std.stdout, "this host left the cluster and its agent stopped; started again, it joins again (systemctl disable vxnet keeps it out)")
	return 0
}

const clusterForgetUsage = `Usage: vxnet cluster forget HOST

Makes the cluster forget HOST, a host that is down (failed, or stopped
without leaving) and will not come back: its disk died, it was rebuilt
under another name. Every host drops its endpoints at once, so their names
are free and the networks they were on can be removed, and its address
blocks are handed out again. Without it, the cluster keeps them for the
host's return for the reap time (24 h). The networks and services it
created stay: they are the cluster's.

Refused for a live member (take it out with vxnet cluster leave on it) and
for this host. vxnet cluster members --down lists the hosts that are down.

If the host comes back after all, it is taken in as one back after the
reap time: a name one of its endpoints had and another endpoint took since
stays with the newer one (the host lists its own down, saying why), and
each endpoint whose address lay in a block passed on gets a new one,
whether or not the old address was handed out again. Unlike a host away
that long, it learns that it was forgotten only once it has caught up
with the cluster, so for those first seconds an endpoint whose address
was handed out again may share it: forget only a host that is gone. A
host forgotten while it was only hung or cut off is back once in reach,
on the same terms (names taken meanwhile stay taken); once it is back, a
later failure of it is an ordinary one. Every host of the cluster must
run this vxnet (refused otherwise, naming the hosts that do not).

Not to be confused with the name hold: a down host keeps its endpoints'
names from other hosts for 10 minutes (20 s with --profile fast), and its
endpoints, address blocks and the networks they are on for the reap time;
forget ends both at once.

With --store etcd a host's rows go with its lease: there is nothing to
forget.

Example:
  vxnet cluster members --down
  vxnet cluster forget h3
`

func cmdClusterForget(std stdio, args []string) int {
	fs := newFlags(std, "cluster forget", clusterForgetUsage)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.stderr, "vxnet cluster forget: want one HOST, the name of a host that is down (vxnet cluster members --down lists them)")
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	res, err := client().ForgetHost(c, pos[0])
	if err != nil {
		return fail(std, "cluster forget", err)
	}
	if len(res.Endpoints) == 0 {
		fmt.Fprintf(std.stdout, "forgot host %s (it had no endpoints)\n", res.Name)
	} else {
		fmt.Fprintf(std.stdout, "forgot host %s; every host drops its endpoints as the forget reaches it: %s\n", res.Name, strings.Join(res.Endpoints, ", "))
	}
	fmt.Fprintf(std.stdout, "if %s was only hung or cut off, it is back once in reach, and names taken meanwhile stay taken\n", res.Name)
	return 0
}

func cmdRotateKeys(std stdio, args []string) int {
	fs := newFlags(std, "cluster rotate-keys", rotateKeysUsage)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if !noArgs(std, "cluster rotate-keys", pos) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	k, err := client().RotateKeys(c)
	if err != nil {
		return fail(std, "cluster rotate-keys", err)
	}
	fmt.Fprintf(std.stdout, "rotating this host's keys: the new ones are in use from %s; the old ones are still taken for a minute\n", k.InUseAt.UTC().Format(time.RFC3339))
	return 0
}

func cmdRotateGossipKey(std stdio, args []string) int {
	fs := newFlags(std, "cluster rotate-gossip-key", rotateGossipKeyUsage)
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if !noArgs(std, "cluster rotate-gossip-key", pos) {
		return 2
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := client().RotateGossipKey(c)
	if err != nil {
		return fail(std, "cluster rotate-gossip-key", err)
	}
	printGossipRotation(std.stdout, k)
	return 0
}

// printGossipRotation says who holds the new gossip key, and who, down,
// does not.
func printGossipRotation(w io.Writer, k api.GossipKeyRotation) {
	fmt.Fprintf(w, "every member (%s) encrypts gossip with the new key %s and holds no other; took %s\n", strings.Join(k.Hosts, ", "), k.Fingerprint, k.Took)
	if len(k.Down) > 0 {
		fmt.Fprintf(w, "down at the end: %s; one that took the rotation's first step comes back by itself, else it needs the new key: copy another host's key file to it and restart its agent, or join it again with a join token (vxnet cluster join --help)\n", strings.Join(k.Down, ", "))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// splitFamilies puts --subnet, --gateway and --ip-range into req by
// family: IPv4 ones in Subnet, Gateway, IPRange; IPv6 ones there too on
// an IPv6 network, or in Subnet6, Gateway6, IPRange6 beside IPv4 ones.
func splitFamilies(req *api.NetworkCreate, subnets, gateways, ranges []string) error {
	type fam struct{ subnet, gateway, rng string }
	var v4, v6 fam
	is6 := func(flag, s string, prefix bool) (bool, error) {
		var a netip.Addr
		if prefix {
			p, err := netip.ParsePrefix(s)
			if a, aerr := netip.ParseAddr(s); err != nil && aerr == nil {
				bits := map[bool]int{false: 24, true: 64}[a.Is6()]
				return false, fmt.Errorf("--%s %q is not a CIDR: give its prefix length, such as %s/%d", flag, s, s, bits)
			}
			if err != nil {
				return false, fmt.Errorf("--%s %q is not a CIDR, such as 10.0.9.0/24 or fd00:9::/64", flag, s)
			}
			a = p.Addr()
		} else {
			var err error
			if a, err = netip.ParseAddr(s); err != nil {
				return false, fmt.Errorf("--%s %q is not an IP address", flag, s)
			}
		}
		if a.Is4In6() {
			example := "10.0.9.0/24, and IPv6 as fd00:9::/64"
			if !prefix {
				example = "10.0.9.1, and IPv6 as fd00:9::1"
			}
			return false, fmt.Errorf("--%s %q is IPv4-mapped: give IPv4 in its own form, such as %s", flag, s, example)
		}
		return a.Is6(), nil
	}
	for _, f := range []struct {
		flag   string
		vals   []string
		prefix bool
		get    func(*fam) *string
	}{
		{"subnet", subnets, true, func(f *fam) *string { return &f.subnet }},
		{"gateway", gateways, false, func(f *fam) *string { return &f.gateway }},
		{"ip-range", ranges, true, func(f *fam) *string { return &f.rng }},
	} {
		for _, v := range f.vals {
			six, err := is6(f.flag, v, f.prefix)
			if err != nil {
				return err
			}
			side, name := &v4, "IPv4"
			if six {
				side, name = &v6, "IPv6"
			}
			if p := f.get(side); *p != "" {
				return fmt.Errorf("--%s %s and %s: one %s --%s per network", f.flag, *p, v, name, f.flag)
			}
			*f.get(side) = v
		}
	}
	// A gateway or range of a family the network has no subnet of (while it
	// has one of the other): said in the flags' words.
	for _, c := range []struct {
		f, other fam
		name     string
	}{{v4, v6, "IPv4"}, {v6, v4, "IPv6"}} {
		if c.f.subnet == "" && c.other.subnet != "" {
			for _, x := range []struct{ flag, v string }{{"gateway", c.f.gateway}, {"ip-range", c.f.rng}} {
				if x.v != "" {
					return fmt.Errorf("--%s %s is %s, and the network's subnet %s is not: give an %s --subnet too (a dual-stack network), or a --%s of the subnet's family", x.flag, x.v, c.name, c.other.subnet, c.name, x.flag)
				}
			}
		}
	}
	if v4 == (fam{}) { // IPv6 alone, or nothing given
		req.Subnet, req.Gateway, req.IPRange = v6.subnet, v6.gateway, v6.rng
		return nil
	}
	req.Subnet, req.Gateway, req.IPRange = v4.subnet, v4.gateway, v4.rng
	req.Subnet6, req.Gateway6, req.IPRange6 = v6.subnet, v6.gateway, v6.rng
	return nil
}

// subnetsText is a network's subnets, the IPv6 one of a dual-stack
// network after the IPv4 one.
func subnetsText(n api.Network) string {
	if n.Subnet6 != "" {
		return n.Subnet + "," + n.Subnet6
	}
	return n.Subnet
}

// printDown prints the hosts that are down as a table, under a heading
// when it follows the members; with none, only alone.
func printDown(out io.Writer, down []api.DownHost, alone bool) {
	if len(down) == 0 {
		if alone {
			fmt.Fprintln(out, "no host is down")
		}
		return
	}
	if !alone {
		fmt.Fprintln(out, "\ndown (their rows kept for their return):")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOWN SINCE\tENDPOINTS\tNAMES HELD UNTIL\t")
	for _, d := range down {
		until := "—"
		if !d.NamesHeldUntil.IsZero() {
			until = d.NamesHeldUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", d.Name, d.Since.UTC().Format(time.RFC3339), d.EndpointCount, until)
	}
	tw.Flush()
}
