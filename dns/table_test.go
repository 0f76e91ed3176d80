package dns

import (
	"errors"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestNewTable_errorsNameTheField(t *testing.T) {
	nets := []Network{{Name: "web"}}
	a := []netip.Addr{ip("10.0.0.2")}
	for name, c := range map[string]struct {
		nets  []Network
		eps   []Endpoint
		field string
		err   error
	}{
		"bad network":  {[]Network{{Name: "we b"}}, nil, "networks[0].name", ErrBadName},
		"no network":   {nets, []Endpoint{{Name: "a", Network: "db", Addrs: a}}, "endpoints[0].network", ErrUnknownNetwork},
		"empty name":   {nets, []Endpoint{{Name: "", Network: "web", Addrs: a}}, "endpoints[0].name", ErrBadName},
		"bad alias":    {nets, []Endpoint{{Name: "a", Aliases: []string{"ok", "x..y"}, Network: "web", Addrs: a}}, "endpoints[0].aliases[1]", ErrBadName},
		"long label":   {nets, []Endpoint{{Name: string(make([]byte, 64)), Network: "web", Addrs: a}}, "endpoints[0].name", ErrBadName},
		"bad service":  {nets, []Endpoint{{Name: "a", Service: "s!", Network: "web", Addrs: a}}, "endpoints[0].service", ErrBadName},
		"bad proto":    {nets, []Endpoint{{Name: "a", Network: "web", Addrs: a, Ports: []Port{{Name: "h", Proto: "sctp"}}}}, "endpoints[0].ports[0].proto", ErrBadName},
		"invalid addr": {nets, []Endpoint{{Name: "a", Network: "web", Addrs: []netip.Addr{{}}}}, "endpoints[0].addrs[0]", ErrBadName},
	} {
		_, err := NewTable(c.nets, c.eps, 0)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v on %s", name, err, c.err, c.field)
		}
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
