package hostnet

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// maxComment is the longest comment nft takes on a rule, in characters.
const maxComment = 128

// comment is a rule's comment clause naming what the rule is for. A name
// the API takes can be longer than nft allows (a 64-character network and
// a 63-character service make 136), and one refused rule would have nft
// refuse the whole script, every network's rules with it: a longer text is
// cut to fit, ending in "~". Names hold no quotes or backslashes, so %q
// adds none.
func comment(text string) string {
	if len(text) > maxComment {
		text = text[:maxComment-1] + "~"
	}
	return fmt.Sprintf("comment %q", text)
}

// ruleset is the nft script that replaces tables ip vxnet and, with v6,
// ip6 vxnet: per family, the masquerade of networks' subnets leaving the
// host, the DNAT of published ports, and the filter that keeps the host
// from routing into a network anything but replies, published ports and
// (between routed networks) their own traffic, and keeps containers off
// the host's VXLAN and gossip ports and its loopback. With no networks it
// only removes the tables. v6: manage the ip6 table too (a kernel without
// IPv6 NAT need never see it): it is removed, and made again if IPv6
// networks or ports need it.
func ruleset(nets []Gateway, pubs []Published, g Guard, v6 bool) string {
	var b strings.Builder
	// Create-then-delete makes the delete succeed whether or not the table
	// exists; the whole script is one transaction.
	b.WriteString("table ip vxnet\ndelete table ip vxnet\n")
	if v6 {
		b.WriteString("table ip6 vxnet\ndelete table ip6 vxnet\n")
	}
	if len(nets) == 0 {
		return b.String()
	}
	sorted := append([]Gateway(nil), nets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	ps := append([]Published(nil), pubs...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Proto != ps[j].Proto {
			return ps[i].Proto < ps[j].Proto
		}
		return ps[i].HostPort < ps[j].HostPort
	})
	familyRules(&b, "ip", sorted, ps, g)
	if v6 && needsV6(nets, pubs) {
		familyRules(&b, "ip6", sorted, ps, g)
	}
	return b.String()
}

// needsV6 reports whether an IPv6 network or published port is among
// nets and pubs.
func needsV6(nets []Gateway, pubs []Published) bool {
	for _, n := range nets {
		if _, _, ok := n.side(true); ok {
			return true
		}
	}
	for _, p := range pubs {
		if p.Addr.Is6() {
			return true
		}
	}
	return false
}

// familyRules writes the table of one family (ip or ip6).
func familyRules(b *strings.Builder, family string, nets []Gateway, pubs []Published, g Guard) {
	v6 := family == "ip6"
	gw := fmt.Sprintf("%q", GatewayPrefix+"*")
	fmt.Fprintf(b, "table %s vxnet {\n", family)
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, n := range nets {
		// The routing mesh first: a published port's connection to a
		// service's VIP, from anywhere (127.0.0.1 included), leaves from
		// this host's mesh address.
		from, to := meshSide(n, v6)
		if from.IsValid() && len(to) > 0 {
			fmt.Fprintf(b, "\t\toifname %q %s daddr { %s } ct status dnat snat to %v %s\n", GatewayDevice(n.Name), family, strings.Join(to, ", "), from, comment(n.Name+"/mesh"))
		}
	}
	for _, n := range nets {
		// Hairpin: a container reaching a published port of its own
		// network on this host (through the host's address) is answered
		// by the host, not straight from the other container, which it
		// never called. Only to the endpoints vxnet publishes.
		var to []string
		for _, p := range pubs {
			if p.Network == n.Name && p.Addr.Is6() == v6 && !slices.Contains(to, p.Addr.String()) {
				to = append(to, p.Addr.String())
			}
		}
		if len(to) > 0 {
			dev := GatewayDevice(n.Name)
			fmt.Fprintf(b, "\t\tiifname %q oifname %q %s daddr { %s } ct status dnat masquerade %s\n", dev, dev, family, strings.Join(to, ", "), comment(n.Name+"/hairpin"))
		}
	}
	if !v6 { // published ports answer on 127.0.0.1 too (route_localnet)
		fmt.Fprintf(b, "\t\tip saddr 127.0.0.0/8 oifname %s masquerade\n", gw)
	}
	var routed []string
	for _, n := range nets {
		if subnet, _, ok := n.side(v6); ok && n.Masquerade {
			fmt.Fprintf(b, "\t\t%s saddr %v oifname != %s masquerade %s\n", family, subnet.Masked(), gw, comment(n.Name))
		}
		if n.Routed {
			routed = append(routed, fmt.Sprintf("%q", GatewayDevice(n.Name)))
		}
	}
	b.WriteString("\t}\n")
	var dnat strings.Builder
	for _, p := range pubs {
		if p.Addr.Is6() != v6 || p.HostPort == g.GossipPort || p.Proto == "udp" && p.HostPort == g.VXLANPort {
			// Never the host's own gossip or VXLAN: the cluster would cut
			// itself off.
			continue
		}
		to := netip.AddrPortFrom(p.Addr, p.ContainerPort) // [v6]:port as nft takes it
		local := "fib daddr type local"
		if v6 {
			// Not ::1: IPv6 routes nothing from it out of the host (no
			// route_localnet), so the connection would hang; refused, it
			// fails at once, and a host service there keeps its port.
			local = "ip6 daddr != ::1 " + local
		}
		fmt.Fprintf(&dnat, "\t\t%s %s dport %d dnat to %v %s\n", local, p.Proto, p.HostPort, to, comment(p.Network+"/"+p.Endpoint))
	}
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	b.WriteString(dnat.String())
	for _, n := range nets {
		_, gwAddr, ok := n.side(v6)
		from := n.dnsFrom(v6)
		if !ok || len(from) == 0 {
			continue
		}
		fmt.Fprintf(b, "\t\tiifname %q %s saddr { %s } meta l4proto { tcp, udp } th dport 53 dnat to %v %s\n",
			GatewayDevice(n.Name), family, strings.Join(from, ", "), netip.AddrPortFrom(gwAddr, 53), comment(n.Name+"/dns"))
	}
	b.WriteString("\t}\n")
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n")
	guard := fmt.Sprintf("\t\tiifname %s udp dport %d drop\n\t\tiifname %s meta l4proto { tcp, udp } th dport %d drop\n", gw, g.VXLANPort, gw, g.GossipPort)
	reject := "reject with icmp type admin-prohibited"
	if v6 {
		reject = "reject with icmpv6 type admin-prohibited"
	}
	var closed []string // DNS-only gateways: nothing passes
	for _, n := range nets {
		if n.DNSOnly && n.Gateway.Is6() == v6 {
			closed = append(closed, fmt.Sprintf("%q", GatewayDevice(n.Name)))
		}
	}
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	b.WriteString(guard)
	if len(closed) > 0 {
		fmt.Fprintf(b, "\t\tiifname { %s } %s\n", strings.Join(closed, ", "), reject)
	}
	fmt.Fprintf(b, "\t\toifname %s ct state established,related accept\n", gw)
	fmt.Fprintf(b, "\t\toifname %s ct status dnat accept\n", gw)
	if len(routed) > 0 {
		set := "{ " + strings.Join(routed, ", ") + " }"
		fmt.Fprintf(b, "\t\tiifname %s oifname %s accept\n", set, set)
	}
	fmt.Fprintf(b, "\t\toifname %s drop\n", gw)
	b.WriteString("\t}\n")
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	fmt.Fprintf(b, "\t\tiifname %s ct state established,related accept\n", gw)
	b.WriteString(guard)
	if !v6 { // a container's packet to 127.0.0.1 (route_localnet lets it in)
		fmt.Fprintf(b, "\t\tiifname %s ip daddr 127.0.0.0/8 ct status != dnat drop\n", gw)
	}
	for _, n := range nets {
		// vxnet's resolver on a gateway address is for the network's
		// containers alone.
		if _, gwAddr, ok := n.side(v6); ok && len(n.dnsFrom(v6)) > 0 {
			fmt.Fprintf(b, "\t\tiifname != %q %s daddr %v meta l4proto { tcp, udp } th dport 53 drop\n", GatewayDevice(n.Name), family, gwAddr)
		}
	}
	for _, n := range nets {
		if n.DNSOnly && n.Gateway.Is6() == v6 {
			dev := GatewayDevice(n.Name)
			fmt.Fprintf(b, "\t\tiifname %q %s daddr %v meta l4proto { tcp, udp } th dport 53 accept\n", dev, family, n.Gateway)
			fmt.Fprintf(b, "\t\tiifname %q %s\n", dev, reject)
		}
	}
	b.WriteString("\t}\n}\n")
}

// meshSide is n's mesh address and VIPs of one family.
func meshSide(n Gateway, v6 bool) (from netip.Addr, to []string) {
	for _, a := range n.MeshFrom {
		if a.Is6() == v6 && !from.IsValid() {
			from = a
		}
	}
	for _, a := range n.MeshTo {
		if a.Is6() == v6 {
			to = append(to, a.String())
		}
	}
	return from, to
}

// dnsFrom is n.DNSFrom of one family, as nft writes addresses.
func (n Gateway) dnsFrom(v6 bool) []string {
	var from []string
	for _, a := range n.DNSFrom {
		if a.Is6() == v6 {
			from = append(from, a.String())
		}
	}
	return from
}
