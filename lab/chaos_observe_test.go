package lab

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseDevices(t *testing.T) {
	out := `[{"ifindex":1,"ifname":"lo","link_type":"loopback","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
	{"ifindex":2,"ifname":"eth0","link_type":"none","addr_info":[{"family":"inet","local":"10.0.1.2","prefixlen":24,"scope":"global"},
	{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]},{"ifindex":3,"ifname":"eth1","link_type":"none","addr_info":[]}]`
	got, err := parseDevices(out)
	want := []Device{{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/24")}}, {Name: "eth1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseDevices = %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseDevices("Cannot open network namespace"); err == nil {
		t.Error("parseDevices of an error message succeeded")
	}
}

func TestParseDig(t *testing.T) {
	out := "e1.\t\t\t10\tIN\tA\t10.0.1.2\nE1.web.\t\t10\tIN\tA\t10.0.1.2\nsa.\t10\tIN\tA\t10.0.1.2\nsa.\t10\tIN\tA\t10.0.1.3\n" +
		";; communications error to 127.0.0.11#53: timed out\nx.\t10\tIN\tTXT\t\"hi\"\n"
	got := parseDig(out)
	a, b := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.3")
	want := map[string][]netip.Addr{"e1": {a}, "e1.web": {a}, "sa": {a, b}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseDig = %v, want %v", got, want)
	}
}

func TestParseLeases(t *testing.T) {
	a := netip.MustParseAddr("10.0.1.2")
	for name, tc := range map[string]struct {
		in   string
		want map[string][]netip.Addr
	}{
		"version 1":  {`{"version":1,"clock":3,"leases":{"web":["10.0.1.2"]}}`, map[string][]netip.Addr{"web": {a}}},
		"version 2":  {`{"version":2,"sha256":"ab","state":{"clock":3,"leases":{"web":["10.0.1.2"]}}}`, map[string][]netip.Addr{"web": {a}}},
		"no leases":  {`{"version":2,"sha256":"ab","state":{"clock":3}}`, map[string][]netip.Addr{}},
		"unreadable": {`{"version":`, nil},
	} {
		if got := parseLeases([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: parseLeases = %v, want %v", name, got, tc.want)
		}
	}
}

func TestCanonicalRows(t *testing.T) {
	a, err := canonicalRows(`[{"name":"b","subnet":"x"},{"subnet":"y", "name":"a"}]`)
	b, err2 := canonicalRows("[\n {\"name\": \"a\",\n \"subnet\": \"y\"},\n {\"subnet\": \"x\", \"name\": \"b\"}\n]")
	if err != nil || err2 != nil || !slices.Equal(a, b) || a[0] != `{"name":"a","subnet":"y"}` {
		t.Errorf("canonicalRows: %q (%v) vs %q (%v)", a, err, b, err2)
	}
	if _, err := canonicalRows("not json"); err == nil {
		t.Error("canonicalRows of garbage succeeded")
	}
	if k := rowKey("endpoints", a[0]); k != "/a" {
		t.Errorf("rowKey = %q", k)
	}
}

func TestDNSQuestions(t *testing.T) {
	down := ep("e6", "web", "h1", "10.0.1.9/24") // out of service: its name must not resolve
	down.State = "down"
	ref := view("h1", ep("e1", "web", "h1", "10.0.1.2/24"), ep("e2", "web", "h2", "10.0.1.3/24"), ep("e9", "db", "h2", "10.0.2.2/24"), down)
	ref.Services = []ServiceRow{{Name: "sa", Network: "web", Addresses: []string{"10.0.1.2/24", "10.0.1.3/24"}}}
	ops := []OpRecord{
		{Kind: OpEndpointCreate, Network: "web", Endpoint: "e1", Outcome: OutcomeOK},
		{Kind: OpEndpointCreate, Network: "web", Endpoint: "e5", Outcome: OutcomeOK},
		{Kind: OpEndpointCreateTwice, Network: "web", Endpoint: "e6", Outcome: OutcomeUnknown},
		{Kind: OpEndpointCreate, Network: "web", Endpoint: "e7", Outcome: OutcomeSkipped},
		{Kind: OpEndpointCreate, Network: "db", Endpoint: "e8", Outcome: OutcomeOK},
	}
	var got []string
	for _, q := range dnsQuestions("web", ref, ops) {
		got = append(got, q.Name+"="+addrList(q.Want))
	}
	want := []string{"e1=10.0.1.2", "e1.web=10.0.1.2", "e2=10.0.1.3", "e2.web=10.0.1.3", "sa=10.0.1.2,10.0.1.3",
		"tasks.sa=10.0.1.2,10.0.1.3", "e5=nothing", "e5.web=nothing", "e6=nothing", "e6.web=nothing"}
	if !slices.Equal(got, want) {
		t.Errorf("dnsQuestions =\n%v\nwant\n%v", got, want)
	}
}

func TestHistory_violateDedupes(t *testing.T) {
	var h history
	v := Violation{Invariant: InvDNS, Subject: "name a", Evidence: "first"}
	if fresh := h.violate(RunTime(1e9), PhaseCampaign, []Violation{v}); len(fresh) != 1 {
		t.Fatalf("first sighting: %d fresh", len(fresh))
	}
	v.Evidence = "second"
	if fresh := h.violate(RunTime(2e9), PhaseFinal, []Violation{v, {Invariant: InvLeases, Subject: "name a"}}); len(fresh) != 1 {
		t.Fatalf("second sighting: %d fresh, want only the new invariant", len(fresh))
	}
	_, _, vs := h.snapshot()
	if len(vs) != 2 || vs[0].Seen != 2 || vs[0].Evidence != "first" || vs[0].Phase != PhaseCampaign || vs[0].At != RunTime(1e9) {
		t.Errorf("violations = %+v", vs)
	}
}

func TestRenderReport(t *testing.T) {
	r := Report{ID: "t", Seed: 77, Hosts: 3, Profile: "fast", Duration: "1m0s", FaultKinds: "kill", MaxFaulty: 1,
		Replay: "vxnet lab chaos --seed 77", Invariants: []InvariantResult{{Name: InvDNS, Checked: true, Violations: 1},
			{Name: InvLeases, Checked: true}, {Name: InvNamespaces}},
		Violations: []Violation{{Invariant: InvDNS, Subject: "name a on network web", Evidence: "in ns (on h2) resolves to nothing",
			Hosts: []string{"h2"}, At: RunTime(61e9), Phase: PhaseFinal, Seen: 1}},
		Ops:    []OpRecord{{Outcome: OutcomeOK}, {Outcome: OutcomeFail}},
		Faults: []FaultRecord{{Kind: FaultKill}}}
	var b bytes.Buffer
	RenderReport(&b, r)
	for _, w := range []string{"seed 77", "operations: 2 (ok 1, fail 1", "faults: 1 (kill 1)", "✗  dns", "✓  leases", "-  namespaces         not checked",
		"1. [dns] name a on network web — at 61.0s (final), seed 77", "resolves to nothing", "FAILED: 1 violation(s), seed 77; replay: vxnet lab chaos --seed 77"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, b.String())
		}
	}
	r.Violations = nil
	b.Reset()
	RenderReport(&b, r)
	if !strings.Contains(b.String(), "PASSED: no violation (seed 77)") {
		t.Errorf("report without violations:\n%s", b.String())
	}
}
