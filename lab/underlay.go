package lab

import (
	"context"
	"fmt"
	"strings"
)

// underlayCommands lists the ip commands that build a lab's underlay: the
// bridge namespace with br0, for each host a namespace whose u0 is a veth
// peer of a port of br0, and the outside's namespace, joined the same way
// (eth0). Every link is created inside a lab namespace and moved straight
// to another one, so none ever exists in the namespace the lab runs in.
func underlayCommands(s *State) [][]string {
	br := s.BridgeNetns
	cmds := [][]string{
		{"ip", "netns", "add", br},
		{"ip", "-n", br, "link", "set", "lo", "up"},
		{"ip", "-n", br, "link", "add", bridgeDev, "type", "bridge"},
		{"ip", "-n", br, "link", "set", bridgeDev, "up"},
	}
	bits := s.Subnet.Bits()
	for _, h := range s.Hosts {
		cmds = append(cmds,
			[]string{"ip", "netns", "add", h.Netns},
			[]string{"ip", "-n", h.Netns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", br, "link", "add", h.BridgePort, "type", "veth", "peer", "name", underlayDev, "netns", h.Netns},
			[]string{"ip", "-n", br, "link", "set", h.BridgePort, "master", bridgeDev, "up"},
			[]string{"ip", "-n", h.Netns, "addr", "add", fmt.Sprintf("%s/%d", h.Addr, bits), "dev", underlayDev},
			[]string{"ip", "-n", h.Netns, "link", "set", underlayDev, "up"},
		)
	}
	if o := s.Outside; o.Netns != "" {
		cmds = append(cmds, outsideCommands(br, o, bits)...)
	}
	return cmds
}

// outsideCommands join the outside to br0. It gets an address on the
// underlay's /24 and nothing else: no default route and no route to any
// overlay subnet, so an answer it sends reaches a container only because
// the container's host masqueraded the request, as on a real network.
//
// Its ICMP errors are not rate-limited: the agents forward the names they
// do not own to it, and while no DNS server runs there (a chaos campaign,
// a lab between demos) each query must fail at once on "port unreachable"
// rather than wait out the agent's upstream timeout (by default the
// kernel sends each peer a burst of six such errors, then one a second).
func outsideCommands(br string, o OutsideState, bits int) [][]string {
	return [][]string{
		{"ip", "netns", "add", o.Netns},
		inNetns(o.Netns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/icmp_ratelimit"),
		{"ip", "-n", o.Netns, "link", "set", "lo", "up"},
		{"ip", "-n", br, "link", "add", o.BridgePort, "type", "veth", "peer", "name", outsideDev, "netns", o.Netns},
		{"ip", "-n", br, "link", "set", o.BridgePort, "master", bridgeDev, "up"},
		{"ip", "-n", o.Netns, "addr", "add", fmt.Sprintf("%s/%d", o.Addr, bits), "dev", outsideDev},
		{"ip", "-n", o.Netns, "link", "set", outsideDev, "up"},
	}
}

// buildUnderlay runs underlayCommands.
func buildUnderlay(ctx context.Context, r runner, s *State) error {
	for _, argv := range underlayCommands(s) {
		if _, err := r.run(ctx, argv...); err != nil {
			return fmt.Errorf("building the underlay: %w", err)
		}
	}
	return nil
}

// checkUnderlay pings the first host from every other one, and the
// outside from the first host.
func checkUnderlay(ctx context.Context, r runner, s *State) error {
	for _, h := range s.Hosts[1:] {
		if _, err := r.run(ctx, inNetns(h.Netns, "ping", "-c1", "-W2", "-n", s.Hosts[0].Addr.String())...); err != nil {
			return fmt.Errorf("underlay: %s cannot reach %s: %w", h.Name, s.Hosts[0].Name, err)
		}
	}
	if o := s.Outside; o.Netns != "" {
		if _, err := r.run(ctx, inNetns(s.Hosts[0].Netns, "ping", "-c1", "-W2", "-n", o.Addr.String())...); err != nil {
			return fmt.Errorf("underlay: %s cannot reach the outside (%s): %w", s.Hosts[0].Name, o.Addr, err)
		}
	}
	return nil
}

// parseNetnsList parses `ip netns list`: one namespace a line, maybe
// followed by " (id: N)".
func parseNetnsList(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// labNamespaces lists the existing namespaces that follow lab id's pattern.
func labNamespaces(ctx context.Context, r runner, id string) ([]string, error) {
	out, err := r.run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var ns []string
	for _, n := range parseNetnsList(out) {
		if IsLabNetns(id, n) {
			ns = append(ns, n)
		}
	}
	return ns, nil
}
