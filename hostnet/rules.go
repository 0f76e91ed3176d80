package hostnet

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// ruleset is the nft script that replaces tables ip vxnet and ip6 vxnet:
// the masquerade of networks' subnets leaving the host, and the DNAT of
// published ports, for each family. With no networks it only removes the
// tables.
func ruleset(nets []Gateway, pubs []Published) string {
	var b strings.Builder
	// Create-then-delete makes the delete succeed whether or not the table
	// exists; the whole script is one transaction.
	b.WriteString("table ip vxnet\ndelete table ip vxnet\ntable ip6 vxnet\ndelete table ip6 vxnet\n")
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
	familyRules(&b, "ip", sorted, ps)
	familyRules(&b, "ip6", sorted, ps)
	return b.String()
}

// familyRules writes the table of one family (ip or ip6).
func familyRules(b *strings.Builder, family string, nets []Gateway, pubs []Published) {
	v6 := family == "ip6"
	fmt.Fprintf(b, "table %s vxnet {\n", family)
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	if !v6 { // published ports answer on 127.0.0.1 too (route_localnet)
		fmt.Fprintf(b, "\t\tip saddr 127.0.0.0/8 oifname %q masquerade\n", GatewayPrefix+"*")
	}
	for _, n := range nets {
		if n.Masquerade && n.Subnet.Addr().Is6() == v6 {
			fmt.Fprintf(b, "\t\t%s saddr %v oifname != %q masquerade comment %q\n", family, n.Subnet.Masked(), GatewayPrefix+"*", n.Name)
		}
	}
	b.WriteString("\t}\n")
	var dnat strings.Builder
	for _, p := range pubs {
		if p.Addr.Is6() != v6 {
			continue
		}
		to := netip.AddrPortFrom(p.Addr, p.ContainerPort) // [v6]:port as nft takes it
		fmt.Fprintf(&dnat, "\t\tfib daddr type local %s dport %d dnat to %v comment %q\n", p.Proto, p.HostPort, to, p.Network+"/"+p.Endpoint)
	}
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n")
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n}\n")
}
