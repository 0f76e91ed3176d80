package hostnet

import (
	"net/netip"
	"strconv"
)

// DNSCaptureRules is the ruleset that makes the resolver at addr (vxnet's,
// in a container's namespace) the one that answers the container's queries
// to addr's address on port 53. Docker redirects those queries to its own
// embedded resolver with a DNAT rule of priority -100 (iptables' nat
// table); a nat chain of an earlier priority that maps them to addr itself
// settles the connection's NAT first, so Docker's rule never applies and
// the query reaches vxnet, which knows the names of every host's
// containers. Without Docker, the rules change nothing.
func DNSCaptureRules(addr netip.AddrPort) string {
	a, p := addr.Addr().String(), addr.Port()
	return "table ip vxnet_dns\ndelete table ip vxnet_dns\n" +
		"table ip vxnet_dns {\n" +
		"  chain output {\n" +
		"    type nat hook output priority -150; policy accept;\n" +
		"    ip daddr " + a + " udp dport 53 dnat to " + addrPort(a, p) + "\n" +
		"    ip daddr " + a + " tcp dport 53 dnat to " + addrPort(a, p) + "\n" +
		"  }\n" +
		"}\n"
}

func addrPort(a string, p uint16) string { return a + ":" + strconv.Itoa(int(p)) }
