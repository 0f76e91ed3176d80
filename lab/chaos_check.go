package lab

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Invariant is one property a campaign checks.
type Invariant struct {
	Name string
	What string // for a person
	When string // when it is checked
}

// Invariant names.
const (
	InvUniqueAddress   = "unique-address"
	InvInSubnet        = "in-subnet"
	InvDisjointSubnets = "disjoint-subnets"
	InvNetworksSurvive = "networks-survive"
	InvUniqueNames     = "unique-names"
	InvClusterHeals    = "cluster-heals"
	InvTablesAgree     = "tables-agree"
	InvReachable       = "reachable"
	InvDNS             = "dns"
	InvLeases          = "leases"
	InvDevices         = "devices"
	InvCleanRemoval    = "clean-removal"
	InvNamespaces      = "namespaces"
)

// Invariants lists what a campaign checks, in the order its report gives.
var Invariants = []Invariant{
	{InvUniqueAddress, "no address is held by two endpoints of a network: in the containers' devices (ip -j addr) and, at the end, in every host's endpoint list", "continuously, at the end"},
	{InvInSubnet, "every endpoint's address (listed, and on its device) is inside its network's subnet", "continuously, at the end"},
	{InvDisjointSubnets, "no two networks a host lists have overlapping subnets", "continuously, at the end"},
	{InvNetworksSurvive, "a network created and never removed by the workload is listed on every settled live host, whatever happened to its creator", "continuously, at the end"},
	{InvUniqueNames, "a network or endpoint name created from two hosts at once, with no partition between them, is granted to one of them only", "at the end, over the history"},
	{InvClusterHeals, "a host back from a fault is a member again (it and every other host list each other) within the ready timeout", "after each fault, at the end"},
	{InvTablesAgree, "after the convergence wait, every host lists the same networks, endpoints and services", "at the end"},
	{InvReachable, "every endpoint reaches every other endpoint of its network (ping and TCP by address)", "at the end"},
	{InvDNS, "in a container on every host of a network, each endpoint name resolves to exactly its address, each service to exactly its endpoints' addresses, and removed names to nothing", "at the end"},
	{InvLeases, "every lease in a host's state file belongs to an endpoint of that host, and every endpoint's address is leased by its host; none is left once everything is removed", "at the end, after cleanup"},
	{InvDevices, "every device in a container's namespace belongs to an endpoint every host lists (name, network, host and address)", "at the end"},
	{InvCleanRemoval, "every endpoint and network can be removed through the API at the end, and then no host lists any", "after cleanup"},
	{InvNamespaces, "once the lab is down, no namespace of its naming pattern remains", "after cleanup"},
}

// maxEvidence bounds the items listed in one violation's evidence.
const maxEvidence = 6

// list joins items, at most maxEvidence of them.
func list(items []string) string {
	if len(items) > maxEvidence {
		return strings.Join(items[:maxEvidence], "; ") + fmt.Sprintf("; and %d more", len(items)-maxEvidence)
	}
	return strings.Join(items, "; ")
}

// addrsOf parses an endpoint's addresses.
func addrsOf(e Endpoint) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range e.Addresses {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// inService drops the endpoints that are down: their host took them out of
// service and lists them alone, until they are removed.
func inService(eps []Endpoint) []Endpoint {
	return slices.DeleteFunc(slices.Clone(eps), Endpoint.Down)
}

// answering returns the views of agents that answered.
func answering(views []HostView) []HostView {
	var out []HostView
	for _, v := range views {
		if v.Err == "" {
			out = append(out, v)
		}
	}
	return out
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// checkAddresses finds an address held twice on one network: by two
// containers' devices, and (tables) by two endpoints of the hosts' lists.
func checkAddresses(o Observation, tables bool) []Violation {
	held := map[string][]string{} // "network address" → holders
	hosts := map[string][]string{}
	for _, c := range o.Containers {
		for _, d := range c.Devices {
			for _, a := range d.Addrs {
				k := c.Network + " " + a.Addr().String()
				held[k] = append(held[k], fmt.Sprintf("device %s of %s in namespace %s on %s", d.Name, c.Name, c.Netns, c.Host))
				hosts[k] = append(hosts[k], c.Host)
			}
		}
	}
	var out []Violation
	for _, k := range sortedKeys(held) {
		if len(held[k]) > 1 {
			out = append(out, addressViolation(k, "held by "+list(held[k]), hosts[k]))
		}
	}
	if !tables {
		return out
	}
	listed := map[string]map[string][]string{} // "network address" → "name@host" → hosts listing it
	for _, v := range answering(o.Hosts) {
		for _, e := range inService(v.Endpoints) {
			for _, a := range addrsOf(e) {
				k := e.Network + " " + a.Addr().String()
				if listed[k] == nil {
					listed[k] = map[string][]string{}
				}
				id := e.Name + "@" + e.Host
				listed[k][id] = append(listed[k][id], v.Host)
			}
		}
	}
	for _, k := range sortedKeys(listed) {
		if len(listed[k]) < 2 {
			continue
		}
		var ev, hs []string
		for _, id := range sortedKeys(listed[k]) {
			ev = append(ev, fmt.Sprintf("endpoint %s (listed by %s)", id, strings.Join(listed[k][id], ",")))
			hs = append(hs, id[strings.IndexByte(id, '@')+1:])
		}
		out = append(out, addressViolation(k+" listed", "listed for "+list(ev), hs))
	}
	return out
}

func addressViolation(key, evidence string, hosts []string) Violation {
	network, addr, _ := strings.Cut(key, " ")
	return Violation{Invariant: InvUniqueAddress, Subject: fmt.Sprintf("address %s on network %s", addr, network),
		Evidence: evidence, Hosts: uniq(hosts)}
}

// uniq sorts s and drops repeats.
func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// checkSubnets finds addresses outside their network's subnet (listed by
// a host, or on a container's device) and overlapping subnets.
func checkSubnets(o Observation) []Violation {
	var out []Violation
	subnets := map[string]netip.Prefix{} // as the first host that lists the network has it
	for _, v := range answering(o.Hosts) {
		mine := map[string]netip.Prefix{}
		for _, n := range v.Networks {
			if p, err := netip.ParsePrefix(n.Subnet); err == nil {
				mine[n.Name] = p
				if _, ok := subnets[n.Name]; !ok {
					subnets[n.Name] = p
				}
			}
		}
		for _, e := range v.Endpoints {
			p, ok := mine[e.Network]
			for _, a := range addrsOf(e) {
				if ok && !p.Contains(a.Addr()) {
					out = append(out, Violation{Invariant: InvInSubnet, Subject: fmt.Sprintf("endpoint %s on network %s", e.Name, e.Network),
						Evidence: fmt.Sprintf("%s lists it at %s (on %s), outside the network's subnet %s", v.Host, a, e.Host, p), Hosts: []string{v.Host, e.Host}})
				}
			}
		}
		out = append(out, overlaps(v.Host, mine)...)
	}
	for _, c := range o.Containers {
		p, ok := subnets[c.Network]
		for _, d := range c.Devices {
			for _, a := range d.Addrs {
				if ok && !p.Contains(a.Addr()) {
					out = append(out, Violation{Invariant: InvInSubnet, Subject: fmt.Sprintf("endpoint %s on network %s", c.Name, c.Network),
						Evidence: fmt.Sprintf("device %s in namespace %s (on %s) has %s, outside the network's subnet %s", d.Name, c.Netns, c.Host, a, p), Hosts: []string{c.Host}})
				}
			}
		}
	}
	return out
}

// overlaps finds the pairs of overlapping subnets among one host's networks.
func overlaps(host string, subnets map[string]netip.Prefix) []Violation {
	var out []Violation
	names := sortedKeys(subnets)
	for i, a := range names {
		for _, b := range names[i+1:] {
			if subnets[a].Overlaps(subnets[b]) {
				out = append(out, Violation{Invariant: InvDisjointSubnets, Subject: fmt.Sprintf("networks %s and %s", a, b),
					Evidence: fmt.Sprintf("%s lists %s with %s and %s with %s", host, a, subnets[a], b, subnets[b]), Hosts: []string{host}})
			}
		}
	}
	return out
}

// checkMembers finds hosts that do not list every one of hosts as a member.
func checkMembers(views []HostView, hosts []string) []Violation {
	var out []Violation
	for _, v := range views {
		if v.Err != "" {
			out = append(out, Violation{Invariant: InvClusterHeals, Subject: "host " + v.Host,
				Evidence: "its agent does not answer: " + oneLine(v.Err), Hosts: []string{v.Host}})
			continue
		}
		set := map[string]bool{}
		for _, m := range v.Members {
			set[m] = true
		}
		if missing := hasAll(set, hosts); len(missing) > 0 {
			out = append(out, Violation{Invariant: InvClusterHeals, Subject: "host " + v.Host,
				Evidence: fmt.Sprintf("%s lists members %s, not %s", v.Host, strings.Join(v.Members, ","), strings.Join(missing, ",")),
				Hosts:    append([]string{v.Host}, missing...)})
		}
	}
	return out
}

// rowKey names a canonical row of a table: network, or network/name.
func rowKey(table, row string) string {
	name := jsonField(row, "name")
	if table == "networks" {
		return name
	}
	return jsonField(row, "network") + "/" + name
}

// jsonField pulls a top-level string field out of canonical JSON.
func jsonField(row, field string) string {
	k := `"` + field + `":"`
	i := strings.Index(row, k)
	if i < 0 {
		return ""
	}
	rest := row[i+len(k):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// checkAgreement finds tables that the answering hosts list differently.
func checkAgreement(views []HostView) []Violation {
	views = answering(views)
	var out []Violation
	for _, t := range viewTables {
		// key → version (canonical row) → hosts that list it
		versions := map[string]map[string][]string{}
		for _, v := range views {
			for _, row := range v.Tables[t.name] {
				if jsonField(row, "state") == "down" {
					continue // listed by its own host alone, by design
				}
				k := rowKey(t.name, row)
				if versions[k] == nil {
					versions[k] = map[string][]string{}
				}
				versions[k][row] = append(versions[k][row], v.Host)
			}
		}
		var diffs, hosts []string
		for _, k := range sortedKeys(versions) {
			var seen []string
			var parts []string
			for _, row := range sortedKeys(versions[k]) {
				hs := versions[k][row]
				seen = append(seen, hs...)
				parts = append(parts, strings.Join(hs, ",")+" "+row)
			}
			if len(versions[k]) == 1 && len(seen) == len(views) {
				continue
			}
			var lacking []string
			for _, v := range views {
				if !slices.Contains(seen, v.Host) {
					lacking = append(lacking, v.Host)
				}
			}
			if len(lacking) > 0 {
				parts = append(parts, strings.Join(lacking, ",")+" lack it")
			}
			diffs = append(diffs, k+": "+strings.Join(parts, " vs "))
			hosts = append(hosts, lacking...)
			if len(versions[k]) > 1 {
				hosts = append(hosts, seen...)
			}
		}
		if len(diffs) > 0 {
			out = append(out, Violation{Invariant: InvTablesAgree, Subject: "table " + t.name,
				Evidence: fmt.Sprintf("%d rows differ: %s", len(diffs), list(diffs)), Hosts: uniq(hosts)})
		}
	}
	return out
}

// expectedNetwork is a network the workload created and never tried to
// remove: every live host must list it.
type expectedNetwork struct {
	Name    string
	Creator string  // the host that created it (first success)
	Created RunTime // when that creation returned
}

// expectedNetworks lists the networks created with success whose removal
// was never tried or failed for sure.
func expectedNetworks(ops []OpRecord) []expectedNetwork {
	byName := map[string]*expectedNetwork{}
	removed := map[string]bool{}
	for _, r := range ops {
		switch r.Kind {
		case OpNetworkCreate, OpNetworkCreateTwice:
			if r.Outcome == OutcomeOK && (byName[r.Network] == nil || r.End < byName[r.Network].Created) {
				byName[r.Network] = &expectedNetwork{Name: r.Network, Creator: r.Host, Created: r.End}
			}
		case OpNetworkRemove:
			if r.Outcome == OutcomeOK || r.Outcome == OutcomeUnknown {
				removed[r.Network] = true
			}
		}
	}
	var out []expectedNetwork
	for _, k := range sortedKeys(byName) {
		if !removed[k] {
			out = append(out, *byName[k])
		}
	}
	return out
}

// checkSurvival finds expected networks that some answering host does not
// list. The evidence gives what happened to the creator since (faults).
func checkSurvival(expected []expectedNetwork, views []HostView, faults []FaultRecord) []Violation {
	var out []Violation
	for _, n := range expected {
		var missing []string
		for _, v := range answering(views) {
			if !slices.ContainsFunc(v.Networks, func(r NetworkRow) bool { return r.Name == n.Name }) {
				missing = append(missing, v.Host)
			}
		}
		if len(missing) == 0 {
			continue
		}
		ev := fmt.Sprintf("created by %s at %s and never removed, but not listed on %s", n.Creator, n.Created, strings.Join(missing, ", "))
		if since := faultsSince(faults, n.Creator, n.Created); since != "" {
			ev += fmt.Sprintf(" (%s since: %s)", n.Creator, since)
		}
		out = append(out, Violation{Invariant: InvNetworksSurvive, Subject: "network " + n.Name, Evidence: ev,
			Hosts: uniq(append(missing, n.Creator))})
	}
	return out
}

// faultsSince describes host's faults that began or still went on at t
// or later.
func faultsSince(faults []FaultRecord, host string, t RunTime) string {
	var out []string
	for _, f := range faults {
		if f.Host != host || (f.Back != 0 && f.Back < t) {
			continue
		}
		s := fmt.Sprintf("%s at %s", faultVerb[f.Kind], f.Start)
		switch {
		case f.Healed == 0:
			s += ", still going on"
		case f.Back == 0:
			s += fmt.Sprintf(", healed at %s, not back", f.Healed)
		default:
			s += fmt.Sprintf(", healed at %s", f.Healed)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// propagationTime is how long the campaign grants a new network to reach
// the other hosts before its creator may fall: a network whose creator
// fell sooner might never have left it.
const propagationTime = 2 * time.Second

// established reports whether network n must be listed everywhere from now
// (the time in the run) on: another host listed it once (seenElsewhere),
// or its creator was healthy when it returned it and stayed so for
// propagationTime.
func established(n expectedNetwork, seenElsewhere bool, faults []FaultRecord, now RunTime) bool {
	if seenElsewhere {
		return true
	}
	if time.Duration(now-n.Created) < propagationTime {
		return false
	}
	return !slices.ContainsFunc(faults, func(f FaultRecord) bool {
		if f.Host != n.Creator {
			return false
		}
		during := f.Start <= n.Created && (f.Back == 0 || n.Created < f.Back)
		soon := n.Created < f.Start && time.Duration(f.Start-n.Created) < propagationTime
		return during || soon
	})
}

// checkUniqueNames finds a name granted to two hosts by creations at once (×2
// operations) that no partition separated. The evidence says what became
// of each grant, as its host lists it now (views; none: not said).
func checkUniqueNames(ops []OpRecord, faults []FaultRecord, views []HostView) []Violation {
	granted := map[string][]OpRecord{}
	for _, r := range ops {
		if r.Kind.twice() && r.Outcome == OutcomeOK {
			k := fmt.Sprintf("network %s", r.Network)
			if r.Kind == OpEndpointCreateTwice {
				k = fmt.Sprintf("endpoint %s on network %s", r.Endpoint, r.Network)
			}
			granted[k] = append(granted[k], r)
		}
	}
	var out []Violation
	for _, k := range sortedKeys(granted) {
		rs := granted[k]
		if len(rs) < 2 || rs[0].Host == rs[1].Host || separated(faults, rs[0], rs[1]) {
			continue
		}
		var ev []string
		for _, r := range rs {
			ev = append(ev, fmt.Sprintf("%s granted it at %s (%s)%s", r.Host, r.End, cmp.Or(r.Result, "ok"), fateOf(r, ops, views)))
		}
		out = append(out, Violation{Invariant: InvUniqueNames, Subject: k,
			Evidence: "created from two hosts at once, both succeeded: " + strings.Join(ev, "; "), Hosts: []string{rs[0].Host, rs[1].Host}})
	}
	return out
}

// fateOf says what a granted creation became: removed by the workload, or
// as its host lists it now.
func fateOf(r OpRecord, ops []OpRecord, views []HostView) string {
	for _, o := range ops {
		if o.Outcome == OutcomeOK && o.Start > r.End && o.Host == r.Host && o.Network == r.Network &&
			((r.Kind == OpNetworkCreateTwice && o.Kind == OpNetworkRemove) || (o.Kind == OpEndpointRemove && o.Endpoint == r.Endpoint)) {
			return fmt.Sprintf(", removed at %s", o.End)
		}
	}
	i := slices.IndexFunc(views, func(v HostView) bool { return v.Host == r.Host && v.Err == "" })
	if i < 0 {
		return ""
	}
	v := views[i]
	if r.Kind == OpNetworkCreateTwice {
		for _, n := range v.Networks {
			if n.Name == r.Network {
				return fmt.Sprintf(", now listed with subnet %s, created by %s", n.Subnet, n.Creator)
			}
		}
		return ", now not listed"
	}
	for _, e := range v.Endpoints {
		if e.Network == r.Network && e.Name == r.Endpoint && e.Host == r.Host {
			if e.Down() {
				return ", now down: " + e.Reason
			}
			return ", now in service at " + strings.Join(e.Addresses, ",")
		}
	}
	return ", now not listed by " + r.Host
}

// separated reports whether a partition of a's or b's host overlapped the
// two operations (from the earlier start until the host was back).
func separated(faults []FaultRecord, a, b OpRecord) bool {
	from, to := min(a.Start, b.Start), max(a.End, b.End)
	return slices.ContainsFunc(faults, func(f FaultRecord) bool {
		back := f.Back
		if back == 0 {
			back = to // never back: separated until the end
		}
		return f.Kind == FaultPartition && (f.Host == a.Host || f.Host == b.Host) && f.Start <= to && from <= back
	})
}
