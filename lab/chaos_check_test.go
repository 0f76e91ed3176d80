package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Synthetic observations for the checkers: each must find its violation
// in the bad case and nothing in the good one.

func ep(name, network, host, addr string) Endpoint {
	return Endpoint{Name: name, Network: network, Host: host, Addresses: []string{addr}, Netns: "t-" + host + "-" + name}
}

func ctr(name, network, host string, addrs ...string) ContainerView {
	d := Device{Name: "eth0"}
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, netip.MustParsePrefix(a))
	}
	return ContainerView{Netns: "t-" + host + "-" + name, Host: host, Network: network, Name: name, Devices: []Device{d}}
}

// view is a host's view with networks "web" 10.0.1.0/24 and "db"
// 10.0.2.0/24 and the given endpoints; Tables as the agent would list them.
func view(host string, eps ...Endpoint) HostView {
	v := HostView{Host: host, Members: []string{"h1", "h2", "h3"},
		Networks:  []NetworkRow{{Name: "web", Subnet: "10.0.1.0/24", Creator: "h1"}, {Name: "db", Subnet: "10.0.2.0/24", Creator: "h2"}},
		Endpoints: eps, Leases: map[string][]netip.Addr{}, Tables: map[string][]string{}}
	for _, n := range v.Networks {
		v.Tables["networks"] = append(v.Tables["networks"], `{"creator":"`+n.Creator+`","name":"`+n.Name+`","subnet":"`+n.Subnet+`"}`)
	}
	for _, e := range eps {
		v.Tables["endpoints"] = append(v.Tables["endpoints"], `{"addresses":["`+e.Addresses[0]+`"],"host":"`+e.Host+`","name":"`+e.Name+`","network":"`+e.Network+`"}`)
		if e.Host == host {
			a := netip.MustParsePrefix(e.Addresses[0]).Addr()
			v.Leases[e.Network] = append(v.Leases[e.Network], a)
		}
	}
	return v
}

// want fails unless vs holds exactly n violations of inv whose evidence
// (or subject) contains each of words.
func want(t *testing.T, vs []Violation, inv string, n int, words ...string) {
	t.Helper()
	got := 0
	for _, v := range vs {
		if v.Invariant != inv {
			t.Errorf("unexpected %s violation: %s: %s", v.Invariant, v.Subject, v.Evidence)
			continue
		}
		got++
		for _, w := range words {
			if !strings.Contains(v.Subject+" "+v.Evidence, w) {
				t.Errorf("%s violation %q: %q lacks %q", inv, v.Subject, v.Evidence, w)
			}
		}
	}
	if got != n {
		t.Errorf("%d %s violations, want %d: %+v", got, inv, n, vs)
	}
}

func TestCheckAddresses(t *testing.T) {
	good := Observation{
		Hosts:      []HostView{view("h1", ep("a", "web", "h1", "10.0.1.2/24"), ep("b", "web", "h2", "10.0.1.3/24"))},
		Containers: []ContainerView{ctr("a", "web", "h1", "10.0.1.2/24"), ctr("b", "web", "h2", "10.0.1.3/24"), ctr("c", "db", "h2", "10.0.1.2/24")},
	}
	good.Hosts = append(good.Hosts, view("h2", good.Hosts[0].Endpoints...)) // one endpoint listed by two hosts is one holder
	want(t, checkAddresses(good, true), InvUniqueAddress, 0)

	bad := good
	bad.Containers = append(bad.Containers, ctr("d", "web", "h3", "10.0.1.3/24"))
	want(t, checkAddresses(bad, false), InvUniqueAddress, 1, "10.0.1.3", "web", "b in namespace t-h2-b on h2", "d in namespace t-h3-d on h3")

	bad = good
	bad.Hosts = []HostView{view("h1", ep("a", "web", "h1", "10.0.1.2/24"), ep("x", "web", "h3", "10.0.1.2/24"))}
	want(t, checkAddresses(bad, false), InvUniqueAddress, 0) // tables only when asked
	want(t, checkAddresses(bad, true), InvUniqueAddress, 1, "a@h1", "x@h3", "10.0.1.2")
}

func TestCheckSubnets(t *testing.T) {
	good := Observation{Hosts: []HostView{view("h1", ep("a", "web", "h1", "10.0.1.2/24"))},
		Containers: []ContainerView{ctr("a", "web", "h1", "10.0.1.2/24")}}
	if vs := checkSubnets(good); len(vs) != 0 {
		t.Errorf("good: %+v", vs)
	}
	bad := Observation{Hosts: []HostView{view("h1", ep("a", "web", "h1", "10.0.2.9/24"))}}
	want(t, checkSubnets(bad), InvInSubnet, 1, "a", "10.0.2.9", "10.0.1.0/24")
	bad = Observation{Hosts: good.Hosts, Containers: []ContainerView{ctr("a", "web", "h1", "10.9.9.9/24")}}
	want(t, checkSubnets(bad), InvInSubnet, 1, "10.9.9.9", "namespace t-h1-a")
	v := view("h2")
	v.Networks = append(v.Networks, NetworkRow{Name: "big", Subnet: "10.0.0.0/16"})
	want(t, checkSubnets(Observation{Hosts: []HostView{v}}), InvDisjointSubnets, 2, "big")
}

func TestCheckMembers(t *testing.T) {
	hosts := []string{"h1", "h2", "h3"}
	views := []HostView{view("h1"), view("h2")}
	want(t, checkMembers(views, hosts), InvClusterHeals, 0)
	views[1].Members = []string{"h2"}
	views = append(views, HostView{Host: "h3", Err: "connection refused"})
	want(t, checkMembers(views, hosts), InvClusterHeals, 2)
}

func TestCheckAgreement(t *testing.T) {
	a := ep("a", "web", "h1", "10.0.1.2/24")
	want(t, checkAgreement([]HostView{view("h1", a), view("h2", a), {Host: "h3", Err: "down"}}), InvTablesAgree, 0)
	want(t, checkAgreement([]HostView{view("h1", a), view("h2")}), InvTablesAgree, 1, "table endpoints", "web/a", "h2 lack it")
	b := a
	b.Addresses = []string{"10.0.1.9/24"}
	want(t, checkAgreement([]HostView{view("h1", a), view("h2", b), view("h3", a)}), InvTablesAgree, 1, "web/a", "h1,h3", "10.0.1.9")
	// A down endpoint is listed by its own host alone, by design.
	h2 := view("h2", a)
	h2.Tables["endpoints"] = append(h2.Tables["endpoints"], `{"host":"h2","name":"a","network":"web","reason":"name taken","state":"down"}`)
	want(t, checkAgreement([]HostView{view("h1", a), h2}), InvTablesAgree, 0)
}

func TestCheckSurvival(t *testing.T) {
	ops := []OpRecord{
		{Kind: OpNetworkCreate, Network: "web", Host: "h1", Outcome: OutcomeOK, End: RunTime(1e9)},
		{Kind: OpNetworkCreate, Network: "db", Host: "h2", Outcome: OutcomeOK},
		{Kind: OpNetworkCreate, Network: "gone", Host: "h3", Outcome: OutcomeOK},
		{Kind: OpNetworkRemove, Network: "gone", Host: "h3", Outcome: OutcomeUnknown},
		{Kind: OpNetworkCreate, Network: "never", Host: "h3", Outcome: OutcomeFail},
		{Kind: OpNetworkCreate, Network: "kept", Host: "h3", Outcome: OutcomeOK},
		{Kind: OpNetworkRemove, Network: "kept", Host: "h3", Outcome: OutcomeFail},
	}
	exp := expectedNetworks(ops)
	if len(exp) != 3 || exp[0].Name != "db" || exp[1].Name != "kept" || exp[2].Name != "web" || exp[2].Creator != "h1" {
		t.Fatalf("expectedNetworks = %+v, want db, kept, web", exp)
	}
	v1, v2 := view("h1"), view("h2")
	v1.Networks = append(v1.Networks, NetworkRow{Name: "kept"})
	v2.Networks = append(v2.Networks, NetworkRow{Name: "kept"})
	want(t, checkSurvival(exp, []HostView{v1, v2}, nil), InvNetworksSurvive, 0)
	v2.Networks = v2.Networks[1:] // no web
	faults := []FaultRecord{
		{Kind: FaultPause, Host: "h1", Start: RunTime(5e8), Healed: RunTime(6e8), Back: RunTime(7e8)}, // before web
		{Kind: FaultKill, Host: "h1", Start: RunTime(3e9), Healed: RunTime(4e9), Back: RunTime(5e9)},
		{Kind: FaultLoseState, Host: "h1", Start: RunTime(6e9)},
		{Kind: FaultPartition, Host: "h2", Start: RunTime(3e9)},
	}
	want(t, checkSurvival(exp, []HostView{v1, v2}, faults), InvNetworksSurvive, 1, "network web", "created by h1 at 1.0s",
		"not listed on h2", "h1 since: kill -9 at 3.0s, healed at 4.0s; lose-state at 6.0s, still going on)")
}

// TestEstablished: a network must be listed everywhere once another host
// listed it, or once its creator, healthy when it created it, stayed so
// for the propagation time.
func TestEstablished(t *testing.T) {
	s := func(sec float64) RunTime { return RunTime(sec * 1e9) }
	n := expectedNetwork{Name: "web", Creator: "h1", Created: s(10)}
	for name, tc := range map[string]struct {
		seen   bool
		faults []FaultRecord
		now    RunTime
		want   bool
	}{
		"healthy creator":       {false, nil, s(13), true},
		"too soon":              {false, nil, s(11), false},
		"seen elsewhere":        {true, nil, s(10.5), true},
		"creator fell at once":  {false, []FaultRecord{{Host: "h1", Start: s(10.5)}}, s(20), false},
		"creator fell later":    {false, []FaultRecord{{Host: "h1", Start: s(13)}}, s(20), true},
		"created while cut off": {false, []FaultRecord{{Kind: FaultPartition, Host: "h1", Start: s(5), Healed: s(15), Back: s(16)}}, s(20), false},
		"cut off before, back":  {false, []FaultRecord{{Kind: FaultPartition, Host: "h1", Start: s(5), Healed: s(6), Back: s(7)}}, s(20), true},
		"another host's fault":  {false, []FaultRecord{{Host: "h2", Start: s(10.5)}}, s(20), true},
	} {
		if got := established(n, tc.seen, tc.faults, tc.now); got != tc.want {
			t.Errorf("%s: established = %v, want %v", name, got, tc.want)
		}
	}
}

func TestCheckUniqueNames(t *testing.T) {
	s := func(sec float64) RunTime { return RunTime(sec * 1e9) }
	twice := []OpRecord{
		{Kind: OpEndpointCreateTwice, Network: "web", Endpoint: "e1", Host: "h1", Outcome: OutcomeOK, Start: s(10), End: s(10.1)},
		{Kind: OpEndpointCreateTwice, Network: "web", Endpoint: "e1", Host: "h2", Outcome: OutcomeOK, Start: s(10), End: s(10.2)},
		{Kind: OpNetworkCreateTwice, Network: "n2", Host: "h1", Outcome: OutcomeOK, Start: s(20), End: s(20.3)},
		{Kind: OpNetworkCreateTwice, Network: "n2", Host: "h3", Outcome: OutcomeFail, Start: s(20), End: s(20.3)},
	}
	want(t, checkUniqueNames(twice, nil, nil), InvUniqueNames, 1, "endpoint e1 on network web", "h1 granted", "h2 granted")
	cut := []FaultRecord{{Kind: FaultPartition, Host: "h2", Start: s(5), Healed: s(9), Back: s(11)}}
	want(t, checkUniqueNames(twice, cut, nil), InvUniqueNames, 0)
	killed := []FaultRecord{{Kind: FaultKill, Host: "h2", Start: s(5), Healed: s(9), Back: s(11)}}
	want(t, checkUniqueNames(twice, killed, nil), InvUniqueNames, 1)
	loser := ep("e1", "web", "h2", "10.0.1.9/24")
	loser.State, loser.Reason = "down", "name taken by h1"
	views := []HostView{view("h1", ep("e1", "web", "h1", "10.0.1.2/24")), view("h2", loser)}
	want(t, checkUniqueNames(twice, nil, views), InvUniqueNames, 1, "h1 granted it at 10.1s (ok), now in service at 10.0.1.2/24",
		"h2 granted it at 10.2s (ok), now down: name taken by h1")
	removed := append(twice, OpRecord{Kind: OpEndpointRemove, Network: "web", Endpoint: "e1", Host: "h2", Outcome: OutcomeOK, Start: s(30), End: s(30.5)})
	want(t, checkUniqueNames(removed, nil, views), InvUniqueNames, 1, "h2 granted it at 10.2s (ok), removed at 30.5s")
}

func TestCheckLeases(t *testing.T) {
	v := view("h1", ep("a", "web", "h1", "10.0.1.2/24"), ep("b", "web", "h2", "10.0.1.3/24"))
	want(t, checkLeases([]HostView{v}), InvLeases, 0)
	v.Leases["db"] = []netip.Addr{netip.MustParseAddr("10.0.2.7"), netip.MustParseAddr("10.0.2.8")}
	want(t, checkLeases([]HostView{v}), InvLeases, 1, "leases of h1 with no endpoint", "holds 2 leases", "10.0.2.7 on db; 10.0.2.8 on db")
	v = view("h1", ep("a", "web", "h1", "10.0.1.2/24"), ep("b", "db", "h1", "10.0.2.2/24"))
	v.Leases = map[string][]netip.Addr{"db": {netip.MustParseAddr("10.0.2.2")}}
	want(t, checkLeases([]HostView{v}), InvLeases, 1, "endpoints of h1 with no lease", "lists 1 endpoints", "a (10.0.1.2 on web)")
	v.Leases = nil // unreadable state file: nothing to compare
	want(t, checkLeases([]HostView{v}), InvLeases, 0)
	d := ep("d", "web", "h1", "10.0.1.7/24")
	d.State, d.Reason = "down", "name taken"
	v = view("h1", d)
	v.Leases = map[string][]netip.Addr{}
	want(t, checkLeases([]HostView{v}), InvLeases, 0) // a down endpoint may have given its address back
}

func TestCheckDevices(t *testing.T) {
	a := ep("a", "web", "h1", "10.0.1.2/24")
	o := Observation{Hosts: []HostView{view("h1", a), view("h2", a)},
		Containers: []ContainerView{ctr("a", "web", "h1", "10.0.1.2/24"), {Netns: "t-h2-gone", Host: "h2", Network: "web", Name: "gone"}}}
	want(t, checkDevices(o), InvDevices, 0)
	o.Containers = append(o.Containers, ctr("a", "web", "h3", "10.0.1.5/24")) // the loser of a name conflict, left running
	want(t, checkDevices(o), InvDevices, 1, "namespace t-h3-a", "10.0.1.5", "h1 lists a on web at h1")
	loser := ep("a", "web", "h3", "10.0.1.5/24")
	loser.State, loser.Reason = "down", "name a taken by h1"
	o.Hosts = append(o.Hosts, view("h3", a, loser)) // its host lists it down, but the device still holds the address
	want(t, checkDevices(o), InvDevices, 1, "namespace t-h3-a", "h3 lists a on web at h3, 10.0.1.5/24 down: name a taken by h1")
	o.Hosts = o.Hosts[:2]
	o.Hosts[1] = view("h2")
	vs := checkDevices(o)
	want(t, vs, InvDevices, 2)
	want(t, vs[:1], InvDevices, 1, "namespace t-h1-a", "is not an endpoint h2 lists (h2 lists no endpoint a on web)")
}

func TestCheckDNS(t *testing.T) {
	a := netip.MustParseAddr("10.0.1.2")
	b := netip.MustParseAddr("10.0.1.3")
	good := []DNSResult{
		{Network: "web", Name: "a", Host: "h1", Want: []netip.Addr{a}, Got: []netip.Addr{a}},
		{Network: "web", Name: "svc", Host: "h1", Want: []netip.Addr{a, b}, Got: []netip.Addr{b, a}},
		{Network: "web", Name: "old", Host: "h1"},
	}
	want(t, checkDNS(good), InvDNS, 0)
	bad := []DNSResult{
		{Network: "web", Name: "a", From: "ns1", Host: "h1", Want: []netip.Addr{a}, Got: []netip.Addr{a, b}},
		{Network: "web", Name: "a", From: "ns2", Host: "h2", Want: []netip.Addr{a}},
		{Network: "web", Name: "old", Host: "h1", Got: []netip.Addr{b}},
		{Network: "web", Name: "c", Host: "h3", Want: []netip.Addr{a}, Err: "exit status 9"},
	}
	vs := checkDNS(bad)
	want(t, vs, InvDNS, 3)
	want(t, vs[:1], InvDNS, 1, "name a on network web", "10.0.1.2,10.0.1.3", "resolves to nothing")
	want(t, vs[2:], InvDNS, 1, "name old", "want no answer")
}

func TestCheckReach(t *testing.T) {
	m := testMatrix()
	want(t, checkReach("web", m), InvReachable, 0)
	m.Results[0][1][DNSName] = Result{} // not run
	want(t, checkReach("web", m), InvReachable, 0)
	m.Results[2][0][TCPAddr] = Result{Attempts: 3, Err: "connection refused"}
	want(t, checkReach("web", m), InvReachable, 1, "1 of 6 ordered pairs", "h2c1 (h2 10.0.0.10) → h1c1", "tcp failed: connection refused")
	m.Results[0][1][PingAddr] = Result{Attempts: 3, Err: "ip netns exec t-h1-c1 ping -c1 -W2 -n 10.0.0.3: exit status 1: 1 packets transmitted, 0 received"}
	want(t, checkReach("web", m), InvReachable, 1, "2 of 6", "h1c1 (h1 10.0.0.2) → h1c2 (h1 10.0.0.3): ping failed: 1 packets transmitted, 0 received;")
	for in, out := range map[string]string{"plain": "plain", "a b: exit status 9": "exit status 9", "x: exit status 1: said: this": "said: this"} {
		if got := shortErr(in); got != out {
			t.Errorf("shortErr(%q) = %q, want %q", in, got, out)
		}
	}
}

func TestCheckCleanedUpAndNamespaces(t *testing.T) {
	empty := HostView{Host: "h1", Tables: map[string][]string{}, Leases: map[string][]netip.Addr{}}
	if vs := checkCleanedUp([]HostView{empty}); len(vs) != 0 {
		t.Errorf("clean: %+v", vs)
	}
	v := view("h1", ep("a", "web", "h1", "10.0.1.2/24"))
	vs := checkCleanedUp([]HostView{v, view("h2")})
	want(t, vs[:3], InvCleanRemoval, 3)
	want(t, vs[:1], InvCleanRemoval, 1, "network db", "still listed by h1, h2")
	want(t, vs[2:3], InvCleanRemoval, 1, "endpoint web/a", "still listed by h1 after")
	want(t, vs[3:], InvLeases, 1, "leases of h1", "web: 10.0.1.2")
	want(t, checkNamespaces("t", nil), InvNamespaces, 0)
	want(t, checkNamespaces("t", []string{"t-h1-c4"}), InvNamespaces, 1, "t-h1-c4")
}

func TestClassify(t *testing.T) {
	for name, tc := range map[string]struct {
		out  string
		err  error
		want Outcome
	}{
		"ok":        {"n1 10.0.0.0/24 vni 5", nil, OutcomeOK},
		"refused":   {`vxnet network create: network "n1" exists (NAME)`, errors.New("exit status 1"), OutcomeFail},
		"no agent":  {`vxnet endpoint ls: dial unix /run/x.sock: connect: connection refused`, errors.New("exit status 1"), OutcomeFail},
		"no socket": {`dial unix /run/x.sock: connect: no such file or directory`, errors.New("exit status 1"), OutcomeFail},
		"timeout":   {`context deadline exceeded`, errors.New("exit status 1"), OutcomeUnknown},
		"eof":       {`Post "http://vxnet/v1/endpoints": EOF`, errors.New("exit status 1"), OutcomeUnknown},
		"killed":    {"", &CmdError{Err: errors.New("signal: killed")}, OutcomeUnknown},
	} {
		if got := classify(tc.out, tc.err); got != tc.want {
			t.Errorf("%s: classify = %s, want %s", name, got, tc.want)
		}
	}
}
