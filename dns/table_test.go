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
