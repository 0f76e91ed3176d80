package hostnet

import (
	"fmt"
	"sort"
	"strings"
)

// ruleset is the nft script that replaces table ip vxnet (IPv4; NAT of
// IPv6 subnets is not done). With no networks it only removes the table.
func ruleset(nets []Gateway, pubs []Published) string {
	var b strings.Builder
	// Create-then-delete makes the delete succeed whether or not the table
	// exists; the whole script is one transaction.
	b.WriteString("table ip vxnet\ndelete table ip vxnet\n")
	if len(nets) == 0 {
		return b.String()
	}
	b.WriteString("table ip vxnet {\n")
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	fmt.Fprintf(&b, "\t\tip saddr 127.0.0.0/8 oifname %q masquerade\n", GatewayPrefix+"*")
	sorted := append([]Gateway(nil), nets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, n := range sorted {
		if n.Masquerade && n.Subnet.Addr().Is4() {
			fmt.Fprintf(&b, "\t\tip saddr %v oifname != %q masquerade comment %q\n", n.Subnet.Masked(), GatewayPrefix+"*", n.Name)
		}
	}
	b.WriteString("\t}\n")
	var dnat strings.Builder
	ps := append([]Published(nil), pubs...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Proto != ps[j].Proto {
			return ps[i].Proto < ps[j].Proto
		}
		return ps[i].HostPort < ps[j].HostPort
	})
	for _, p := range ps {
		if !p.Addr.Is4() {
			continue
		}
		fmt.Fprintf(&dnat, "\t\tfib daddr type local %s dport %d dnat to %v:%d comment %q\n", p.Proto, p.HostPort, p.Addr, p.ContainerPort, p.Network+"/"+p.Endpoint)
	}
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n")
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	b.WriteString(dnat.String())
	b.WriteString("\t}\n}\n")
	return b.String()
}
