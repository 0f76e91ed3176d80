package dns

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestNewTable_errorsNameTheRowAndField(t *testing.T) {
	nets := []Network{{Name: "web"}}
	a := []netip.Addr{ip("10.0.0.2")}
	for name, c := range map[string]struct {
		nets       []Network
		eps        []Endpoint
		row, field string
		err        error
	}{
		"bad network":  {[]Network{{Name: "we b"}}, nil, `network "we b"`, "name", ErrBadName},
		"dup network":  {[]Network{{Name: "Web"}, {Name: "web"}}, nil, `network "web"`, "name", ErrDuplicate},
		"no network":   {nets, []Endpoint{{Name: "a", Network: "db", Addrs: a}}, `endpoint "a" on network "db"`, "network", ErrUnknownNetwork},
		"empty name":   {nets, []Endpoint{{Name: "", Network: "web", Addrs: a}}, `endpoint "" on network "web"`, "name", ErrBadName},
		"bad alias":    {nets, []Endpoint{{Name: "a", Aliases: []string{"ok", "x..y"}, Network: "web", Addrs: a}}, `endpoint "a" on network "web"`, "aliases[1]", ErrBadName},
		"long label":   {nets, []Endpoint{{Name: string(make([]byte, 64)), Network: "web", Addrs: a}}, "", "name", ErrBadName},
		"bad service":  {nets, []Endpoint{{Name: "a", Service: "s!", Network: "web", Addrs: a}}, `endpoint "a" on network "web"`, "service", ErrBadName},
		"bad proto":    {nets, []Endpoint{{Name: "a", Network: "web", Addrs: a, Ports: []Port{{Name: "h", Proto: "sctp"}}}}, `endpoint "a" on network "web"`, "ports[0].proto", ErrBadName},
		"dotted port":  {nets, []Endpoint{{Name: "a", Network: "web", Addrs: a, Ports: []Port{{Name: "h.x", Proto: "tcp"}}}}, `endpoint "a" on network "web"`, "ports[0].name", ErrBadName},
		"invalid addr": {nets, []Endpoint{{Name: "a", Network: "web", Addrs: []netip.Addr{{}}}}, `endpoint "a" on network "web"`, "addrs[0]", ErrBadName},
	} {
		tab, err := NewTable(c.nets, c.eps, 0)
		var re *RowError
		var fe *FieldError
		if !errors.As(err, &re) || (c.row != "" && re.Row != c.row) || !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v on %s of %s", name, err, c.err, c.field, c.row)
		}
		if tab == nil {
			t.Errorf("%s: no table", name)
		}
	}
}

// TestNewTable_badRowsLeftOut: a bad network or endpoint is left out and
// reported; every other name still resolves.
func TestNewTable_badRowsLeftOut(t *testing.T) {
	long := strings.Repeat("x", 64)
	g := ScopeGlobal
	nets := []Network{{Name: "a..", Scope: g}, {Name: "web", Scope: g}, {Name: "trail.", Scope: g}, {Name: "Web", Scope: g}, {Name: long, Scope: g}, {Name: "db", Scope: g}}
	eps := []Endpoint{
		{Name: "bad", Network: "a..", Addrs: []netip.Addr{ip("10.9.0.2")}},
		{Name: "api", Network: "web", Addrs: []netip.Addr{ip("10.0.0.2")}},
		{Name: "x..", Network: "web", Addrs: []netip.Addr{ip("10.0.0.3")}},
		{Name: "store", Network: "db", Addrs: []netip.Addr{ip("10.1.0.2")}},
		{Name: "twin", Network: "Web", Addrs: []netip.Addr{ip("10.0.0.4")}},
	}
	tab, err := NewTable(nets, eps, 0)
	if tab == nil {
		t.Fatal("no table")
	}
	var rows []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RowError
		if !errors.As(e, &re) {
			t.Fatalf("%v is not a RowError", e)
		}
		rows = append(rows, re.Row)
	}
	want := []string{`network "a.."`, `network "trail."`, `network "Web"`, `network "` + long + `"`, `endpoint "x.." on network "web"`}
	if !slices.Equal(rows, want) {
		t.Errorf("rows left out %q, want %q", rows, want)
	}
	for _, q := range []struct{ net, name string }{{"web", "api."}, {"web", "api.web."}, {"db", "store."}} {
		if sets, ok := tab.Lookup([]string{q.net}, q.name, mdns.TypeA, nil); !ok || len(sets) != 1 {
			t.Errorf("%s on %s: %d sets, exists %v", q.name, q.net, len(sets), ok)
		}
	}
	if _, ok := tab.Lookup([]string{"web"}, "twin.", mdns.TypeA, nil); ok {
		t.Error("an endpoint of the network left out (Web, after web) was indexed")
	}
}

func TestTable_Lookup(t *testing.T) {
	tab := fixtureTable(t)
	sets, ok := tab.Lookup([]string{"web", "db"}, "shared.", mdns.TypeA, nil)
	if !ok || len(sets) != 2 {
		t.Fatalf("shared on web+db: %d sets, exists %v", len(sets), ok)
	}
	if _, ok := tab.Lookup([]string{"db"}, "api1.", mdns.TypeA, nil); ok {
		t.Error("api1 visible from db")
	}
	sets, ok = tab.Lookup([]string{"web"}, "api1.", mdns.TypeTXT, nil)
	if !ok || len(sets) != 0 {
		t.Errorf("TXT of api1: %d sets, exists %v: want NODATA", len(sets), ok)
	}
	if n, ok := tab.Network("intnet"); !ok || !n.Internal {
		t.Errorf("intnet: %+v %v", n, ok)
	}
	// An IPv4-mapped address is stored as IPv4.
	tab2, err := NewTable([]Network{{Name: "n"}}, []Endpoint{{Name: "m", Network: "N", Addrs: []netip.Addr{ip("::ffff:10.1.1.1")}, Local: true}}, 30)
	if err != nil {
		t.Fatal(err)
	}
	sets, _ = tab2.Lookup([]string{"n"}, "m.", mdns.TypeA, nil)
	if len(sets) != 1 || sets[0].RRs[0].Header().Ttl != 30 {
		t.Errorf("mapped address: %v", sets)
	}
}

// TestTable_serviceVIPs: a service with VIPs answers with them (A and
// AAAA), tasks.NAME with its endpoints; a service without answers with
// its endpoints, round robin; a VIP service with no endpoint still
// answers, and its tasks.NAME is known, empty; a service name given in
// another case is the same name.
func TestTable_serviceVIPs(t *testing.T) {
	nets := []Network{{Name: "web", Scope: ScopeGlobal, VIPs: map[string][]netip.Addr{
		"API": {ip("10.0.0.100"), ip("fd00::100")}, "idle": {ip("10.0.0.101")}}}}
	eps := []Endpoint{
		{Name: "a1", Service: "api", Network: "web", Addrs: []netip.Addr{ip("10.0.0.2"), ip("fd00::2")}},
		{Name: "a2", Service: "api", Network: "web", Addrs: []netip.Addr{ip("10.0.0.3")}},
		{Name: "d1", Service: "db", Network: "web", Addrs: []netip.Addr{ip("10.0.0.4")}},
		{Name: "d2", Service: "db", Network: "web", Addrs: []netip.Addr{ip("10.0.0.5")}},
	}
	tab, err := NewTable(nets, eps, 0)
	if err != nil {
		t.Fatal(err)
	}
	answers := func(name string, qtype uint16) []string {
		sets, _ := tab.Lookup([]string{"web"}, name, qtype, nil)
		var out []string
		for _, s := range sets {
			for _, rr := range s.RRs {
				switch r := rr.(type) {
				case *mdns.A:
					out = append(out, r.A.String())
				case *mdns.AAAA:
					out = append(out, r.AAAA.String())
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"api.", mdns.TypeA, []string{"10.0.0.100"}},
		{"api.web.", mdns.TypeA, []string{"10.0.0.100"}},
		{"api.", mdns.TypeAAAA, []string{"fd00::100"}},
		{"tasks.api.", mdns.TypeA, []string{"10.0.0.2", "10.0.0.3"}},
		{"db.", mdns.TypeA, []string{"10.0.0.4", "10.0.0.5"}},
		{"idle.", mdns.TypeA, []string{"10.0.0.101"}},
	} {
		if got := answers(c.name, c.qtype); !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.name, mdns.TypeToString[c.qtype], got, c.want)
		}
	}
	sets, _ := tab.Lookup([]string{"web"}, "db.", mdns.TypeA, nil)
	if len(sets) != 1 || !sets[0].Shuffle {
		t.Error("a service without VIPs is not answered round robin")
	}
	// A VIP service with no endpoint yet: tasks.NAME is a name of the
	// network with no addresses (NODATA), not one to forward.
	for _, name := range []string{"tasks.idle.", "tasks.idle.web."} {
		if sets, ok := tab.Lookup([]string{"web"}, name, mdns.TypeA, nil); !ok || len(sets) != 0 {
			t.Errorf("%s: %v %v, want a name with no records", name, sets, ok)
		}
	}
}
