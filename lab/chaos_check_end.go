package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// checkLeases finds, on each answering host, the leases in its state file
// that no endpoint of its own holds, and the endpoints of its own whose
// address it holds no lease on: at most one violation of each per host.
func checkLeases(views []HostView) []Violation {
	var out []Violation
	for _, v := range answering(views) {
		if v.Leases == nil {
			continue // no readable state file: nothing to compare
		}
		own := map[string]string{} // "network address" → endpoint name
		down := map[string]bool{}  // of those, the endpoints out of service
		for _, e := range v.Endpoints {
			if e.Host == v.Host {
				for _, a := range addrsOf(e) {
					own[e.Network+" "+a.Addr().String()] = e.Name
					down[e.Network+" "+a.Addr().String()] = e.Down()
				}
			}
		}
		leased := map[string]bool{}
		var leaked, unleased []string
		for _, network := range sortedKeys(v.Leases) {
			for _, a := range v.Leases[network] {
				k := network + " " + a.String()
				leased[k] = true
				if own[k] == "" {
					leaked = append(leaked, fmt.Sprintf("%s on %s", a, network))
				}
			}
		}
		for _, k := range sortedKeys(own) {
			if !leased[k] && !down[k] { // a down endpoint may have given its address back
				network, addr, _ := strings.Cut(k, " ")
				unleased = append(unleased, fmt.Sprintf("%s (%s on %s)", own[k], addr, network))
			}
		}
		if len(leaked) > 0 {
			out = append(out, Violation{Invariant: InvLeases, Subject: "leases of " + v.Host + " with no endpoint",
				Evidence: fmt.Sprintf("%s's state file holds %d leases that no endpoint %s lists as its own holds: %s",
					v.Host, len(leaked), v.Host, list(leaked)), Hosts: []string{v.Host}})
		}
		if len(unleased) > 0 {
			out = append(out, Violation{Invariant: InvLeases, Subject: "endpoints of " + v.Host + " with no lease",
				Evidence: fmt.Sprintf("%s lists %d endpoints of its own whose address its state file holds no lease on: %s",
					v.Host, len(unleased), list(unleased)), Hosts: []string{v.Host}})
		}
	}
	return out
}

// hasAddr reports whether e holds a.
func hasAddr(e Endpoint, a netip.Addr) bool {
	return slices.ContainsFunc(addrsOf(e), func(p netip.Prefix) bool { return p.Addr() == a })
}

// checkDevices finds a device in a container that some answering host
// does not list as that container's endpoint, in service (same name,
// network, host and address): a down endpoint must not keep its address.
func checkDevices(o Observation) []Violation {
	views := answering(o.Hosts)
	var out []Violation
	for _, c := range o.Containers {
		for _, d := range c.Devices {
			for _, a := range d.Addrs {
				var lacking []string
				for _, v := range views {
					if !slices.ContainsFunc(inService(v.Endpoints), func(e Endpoint) bool {
						return e.Network == c.Network && e.Name == c.Name && e.Host == c.Host && hasAddr(e, a.Addr())
					}) {
						lacking = append(lacking, v.Host)
					}
				}
				if len(lacking) == 0 {
					continue
				}
				shown := lacking[0] // what the container's own host lists says most
				if slices.Contains(lacking, c.Host) {
					shown = c.Host
				}
				first := views[slices.IndexFunc(views, func(v HostView) bool { return v.Host == shown })]
				out = append(out, Violation{Invariant: InvDevices, Subject: "namespace " + c.Netns,
					Evidence: fmt.Sprintf("device %s with %s (endpoint %s on network %s, created on %s) is not an endpoint %s lists (%s)",
						d.Name, a, c.Name, c.Network, c.Host, strings.Join(lacking, ", "), whatListed(first, c.Network, c.Name)),
					Hosts: uniq(append(lacking, c.Host))})
			}
		}
	}
	return out
}

// whatListed says what v lists under a network and name.
func whatListed(v HostView, network, name string) string {
	var out []string
	for _, e := range v.Endpoints {
		if e.Network == network && e.Name == name {
			s := fmt.Sprintf("%s lists %s on %s at %s, %s", v.Host, name, network, e.Host, strings.Join(e.Addresses, ","))
			if e.Down() {
				s += " down: " + e.Reason
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("%s lists no endpoint %s on %s", v.Host, name, network)
	}
	return strings.Join(out, "; ")
}

// DNSResult is one name asked of the resolver in one container.
type DNSResult struct {
	Network, Name string // the name asked, on the container's network
	From, Host    string // the container's namespace, and its host
	Want          []netip.Addr
	Got           []netip.Addr
	Err           string // the resolver did not answer
}

// checkDNS finds names whose answers differ from the tables: one
// violation per name, naming every host whose containers got it wrong.
func checkDNS(rs []DNSResult) []Violation {
	bad := map[string][]string{} // subject → evidence
	hosts := map[string][]string{}
	for _, r := range rs {
		got, want := addrSet(r.Got), addrSet(r.Want)
		if r.Err == "" && slices.Equal(got, want) {
			continue
		}
		k := fmt.Sprintf("name %s on network %s", r.Name, r.Network)
		ev := fmt.Sprintf("in %s (on %s) ", r.From, r.Host)
		switch {
		case r.Err != "":
			ev += "no answer: " + oneLine(r.Err)
		case len(want) == 0:
			ev += fmt.Sprintf("resolves to %s, want no answer (removed)", addrList(got))
		default:
			ev += fmt.Sprintf("resolves to %s, want %s", addrList(got), addrList(want))
		}
		bad[k] = append(bad[k], ev)
		hosts[k] = append(hosts[k], r.Host)
	}
	var out []Violation
	for _, k := range sortedKeys(bad) {
		out = append(out, Violation{Invariant: InvDNS, Subject: k, Evidence: list(bad[k]), Hosts: uniq(hosts[k])})
	}
	return out
}

// addrSet sorts as and drops repeats: DNS answers a set (a service whose
// endpoints share an address answers it once; unique-address reports them).
func addrSet(as []netip.Addr) []netip.Addr {
	as = slices.Clone(as)
	slices.SortFunc(as, netip.Addr.Compare)
	return slices.Compact(as)
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "nothing"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// checkReach turns the failed checks of a network's matrix (those that
// ran) into one violation.
func checkReach(network string, m *Matrix) []Violation {
	var bad, hosts []string
	for i, src := range m.Nodes {
		for j, dst := range m.Nodes {
			var failed []string
			var last string
			for c, r := range m.Results[i][j] {
				if r.Attempts > 0 && !r.OK {
					failed, last = append(failed, Check(c).String()), r.Err
				}
			}
			if len(failed) == 0 {
				continue
			}
			bad = append(bad, fmt.Sprintf("%s (%s %s) → %s (%s %s): %s failed: %s",
				src.Name, src.Host, src.Addr, dst.Name, dst.Host, dst.Addr, strings.Join(failed, ", "), oneLine(shortErr(last))))
			hosts = append(hosts, src.Host, dst.Host)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	n := len(m.Nodes)
	return []Violation{{Invariant: InvReachable, Subject: "network " + network,
		Evidence: fmt.Sprintf("%d of %d ordered pairs failed: %s", len(bad), n*(n-1), list(bad)), Hosts: uniq(hosts)}}
}

// shortErr drops the command line from a failed probe's error ("ip netns
// exec NS ping ...: exit status 1: OUTPUT"), keeping what it said.
func shortErr(s string) string {
	if i := strings.Index(s, ": exit status "); i >= 0 {
		if j := strings.Index(s[i+2:], ": "); j >= 0 {
			return s[i+2+j+2:]
		}
		return s[i+2:]
	}
	return s
}

// checkCleanedUp finds what answering hosts still list, or still lease,
// once every endpoint and network was removed through the API: one
// violation per row left, naming the hosts that list it.
func checkCleanedUp(views []HostView) []Violation {
	var out []Violation
	for _, t := range viewTables {
		left := map[string][]string{} // row key → hosts
		for _, v := range answering(views) {
			for _, row := range v.Tables[t.name] {
				k := rowKey(t.name, row)
				left[k] = append(left[k], v.Host)
			}
		}
		for _, k := range sortedKeys(left) {
			out = append(out, Violation{Invariant: InvCleanRemoval, Subject: strings.TrimSuffix(t.name, "s") + " " + k,
				Evidence: fmt.Sprintf("still listed by %s after its removal through the API", strings.Join(left[k], ", ")), Hosts: left[k]})
		}
	}
	for _, v := range answering(views) {
		var leases []string
		for _, network := range sortedKeys(v.Leases) {
			leases = append(leases, fmt.Sprintf("%s: %s", network, addrList(v.Leases[network])))
		}
		if len(leases) > 0 {
			out = append(out, Violation{Invariant: InvLeases, Subject: "leases of " + v.Host + " after cleanup",
				Evidence: v.Host + "'s state file still holds leases on " + strings.Join(leases, "; "), Hosts: []string{v.Host}})
		}
	}
	return out
}

// checkNamespaces reports namespaces of the lab's pattern left after it
// went down.
func checkNamespaces(id string, left []string) []Violation {
	if len(left) == 0 {
		return nil
	}
	return []Violation{{Invariant: InvNamespaces, Subject: "lab " + id,
		Evidence: fmt.Sprintf("%d namespaces remain after the lab went down: %s", len(left), list(left))}}
}
