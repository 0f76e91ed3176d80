package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/vxnet/vxnet/api"
)

const serviceUsage = `Usage: vxnet service COMMAND

A service is a name on a network over many endpoints: endpoints join it
with 'vxnet endpoint create --service NAME' (or 'vxnet run --service NAME'),
before or after it is created.

  create NAME --network NET   create a service (endpoint mode vip by default)
  ls                          list services, with their endpoints
  inspect NAME                show one service: VIPs, ports, endpoints, flows
  rm NAME                     remove a service (its endpoints stay)

Endpoint modes:
  vip    NAME answers in DNS with one virtual IP (per family); connections
         to it are spread over the endpoints by a consistent hash of the
         connection, each kept on its endpoint for its life, local or on
         another host. tasks.NAME answers with every endpoint's address.
  dnsrr  NAME answers with every endpoint's address, in a new order each
         time; no VIP. A name endpoints join that no one created works
         this way too.
`

func cmdService(std stdio, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(std.stderr, serviceUsage)
		return 2
	}
	switch args[0] {
	case "create":
		return cmdServiceCreate(std, args[1:])
	case "ls", "list":
		return cmdServiceLs(std, args[1:])
	case "inspect":
		return cmdServiceInspect(std, args[1:])
	case "rm", "remove":
		return cmdServiceRm(std, args[1:])
	case "--help", "-h", "help":
		fmt.Fprint(std.stdout, serviceUsage)
		return 0
	}
	fmt.Fprintf(std.stderr, "vxnet service: unknown command %q\n\n%s", args[0], serviceUsage)
	return 2
}

const serviceCreateUsage = `Usage: vxnet service create NAME --network NET [flags]
       vxnet service create --network NET --name NAME [flags]

Creates service NAME on network NET. In endpoint mode vip (the default) the
service gets a virtual IP of the network (and an IPv6 one on a dual-stack
network), held for as long as the service lives: NAME resolves to it, and
each connection to it goes to one of the endpoints that joined NAME.
Endpoints join with 'vxnet endpoint create --service NAME'.

Examples:
  vxnet service create api --network web
  vxnet service create api --network web --vip 10.0.9.10
  vxnet service create www --network web -p 8080:80   # port 8080 of every host
  vxnet service create db --network web --endpoint-mode dnsrr

Flags:
`

func cmdServiceCreate(std stdio, args []string) int {
	fs := newFlags(std, "service create", serviceCreateUsage)
	var req api.ServiceCreate
	fs.StringVar(&req.Network, "network", "", "`NET`work of the service (required)")
	name := fs.String("name", "", "the service's `NAME` (or give it as the argument)")
	fs.StringVar(&req.EndpointMode, "endpoint-mode", "vip", "`MODE`: vip or dnsrr (see vxnet service --help)")
	fs.StringVar(&req.VIP, "vip", "auto", "the IPv4 virtual IP: auto (the next free address) or an `IP` of the network's range, in an address block this host holds (another host's is refused, naming it)")
	fs.StringVar(&req.VIP6, "vip6", "", "the IPv6 virtual IP of a dual-stack network: auto (the default there) or an `IP`")
	var publish multiFlag
	fs.Var(&publish, "p", "publish `PUBLISHED:TARGET[/tcp|udp]` on every host of the cluster (repeatable): a connection to any host's port PUBLISHED reaches port TARGET of one of the endpoints (the routing mesh; overlay networks with a way out)")
	fs.Var(&publish, "publish", "same as -p")
	pos, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if *name != "" {
		pos = append(pos, *name)
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.stderr, "vxnet service create: want exactly one NAME, as the argument or --name (see --help)")
		return 2
	}
	if req.Network == "" {
		fmt.Fprintln(std.stderr, "vxnet service create: --network is required: the network whose endpoints the service spreads over")
		return 2
	}
	req.Name, req.Publish = pos[0], publish
	if req.EndpointMode == "dnsrr" && req.VIP == "auto" {
		req.VIP = ""
	}
	if req.VIP == "auto" {
		req.VIP = ""
	}
	c, cancel := ctx()
	defer cancel()
	s, err := client().CreateService(c, req)
	if err != nil {
		return fail(std, "service create", err)
	}
	vips := strings.Join(s.VIPs, ",")
	if vips == "" {
		vips = "-"
	}
	fmt.Fprintf(std.stdout, "%s\t%s\t%s\t%s\n", s.Name, s.Network, s.EndpointMode, vips)
	return 0
}

const serviceLsUsage = `Usage: vxnet service ls [--format table|json]

Lists the services of every network: created ones (MODE vip or dnsrr) and
names endpoints joined with none created (MODE -), with their VIPs and
endpoints (NAME@HOST).

Flags:
`

func cmdServiceLs(std stdio, args []string) int {
	fs := newFlags(std, "service ls", serviceLsUsage)
	format := fs.String("format", "table", "output `FORMAT`: table or json")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(std, "service ls", pos) {
		return 2
	}
	if !checkFormat(std, "service ls", *format) {
		return 2
	}
	c, cancel := ctx()
	defer cancel()
	out, err := client().Services(c)
	if err != nil {
		return fail(std, "service ls", err)
	}
	if *format == "json" {
		return printJSON(std, out)
	}
	tw := tabwriter.NewWriter(std.stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tNETWORK\tMODE\tVIPS\tPORTS\tENDPOINTS")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Network, dash(s.EndpointMode), dash(strings.Join(s.VIPs, ",")),
			dash(strings.Join(s.Publish, ",")), dash(strings.Join(s.Endpoints, ",")))
	}
	tw.Flush()
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const serviceInspectUsage = `Usage: vxnet service inspect NAME [--network NET]

Shows service NAME as JSON: its mode, VIPs, published ports, endpoints and
the connections this host's containers made to it, in all and by endpoint
(flows, taskFlows; moved: those whose endpoint went away while they
lasted). --network is needed only when NAME is on several networks.

Flags:
`

func cmdServiceInspect(std stdio, args []string) int {
	fs := newFlags(std, "service inspect", serviceInspectUsage)
	network := fs.String("network", "", "the service's `NET`work")
	s, code, ok := oneService(std, fs, "service inspect", args, network)
	if !ok {
		return code
	}
	return printJSON(std, s)
}

const serviceRmUsage = `Usage: vxnet service rm NAME [--network NET]

Removes service NAME; its VIPs go back to the network's addresses. The
endpoints that joined it stay, and answer under their own names.

Flags:
`

func cmdServiceRm(std stdio, args []string) int {
	fs := newFlags(std, "service rm", serviceRmUsage)
	network := fs.String("network", "", "the service's `NET`work")
	s, code, ok := oneService(std, fs, "service rm", args, network)
	if !ok {
		return code
	}
	c, cancel := ctx()
	defer cancel()
	if err := client().RemoveService(c, s.Network, s.Name); err != nil {
		return fail(std, "service rm", err)
	}
	fmt.Fprintln(std.stdout, s.Name)
	return 0
}

// oneService parses NAME [--network NET] and finds the service: on NET,
// or on the one network that has a service of that name.
func oneService(std stdio, fs *flag.FlagSet, cmd string, args []string, network *string) (api.Service, int, bool) {
	pos, code, ok := parse(fs, args)
	if !ok {
		return api.Service{}, code, false
	}
	if len(pos) != 1 {
		fmt.Fprintf(std.stderr, "vxnet %s: want exactly one NAME (see --help)\n", cmd)
		return api.Service{}, 2, false
	}
	c, cancel := ctx()
	defer cancel()
	all, err := client().Services(c)
	if err != nil {
		return api.Service{}, fail(std, cmd, err), false
	}
	var found []api.Service
	var nets []string
	for _, s := range all {
		if s.Name == pos[0] && (*network == "" || s.Network == *network) {
			found = append(found, s)
			nets = append(nets, s.Network)
		}
	}
	switch {
	case len(found) == 0 && *network != "":
		fmt.Fprintf(std.stderr, "vxnet %s: no service %q on network %q\n", cmd, pos[0], *network)
		return api.Service{}, 1, false
	case len(found) == 0:
		fmt.Fprintf(std.stderr, "vxnet %s: no service %q (vxnet service ls lists them)\n", cmd, pos[0])
		return api.Service{}, 1, false
	case len(found) > 1:
		fmt.Fprintf(std.stderr, "vxnet %s: service %q is on networks %s: say which with --network\n", cmd, pos[0], strings.Join(nets, ", "))
		return api.Service{}, 2, false
	}
	return found[0], 0, true
}
