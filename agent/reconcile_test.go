package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/dataplane/vxlan"
	"github.com/vxnet/vxnet/dns"
	"github.com/vxnet/vxnet/dns/dnstest"
	"github.com/vxnet/vxnet/hns/hnstest"
	"github.com/vxnet/vxnet/internal/testutil"
	"github.com/vxnet/vxnet/tables"
)

// startTestAgent runs a whole agent on loopback with a fake HNS (so that
// endpoints need no namespace), logging to log (nil discards); it stops
// when the test ends.
func startTestAgent(t *testing.T, log *slog.Logger) *Agent {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := New(config.Config{Name: "t1", AdvertiseAddr: "127.0.0.1", GossipPort: freePort(t), VXLANPort: freePort(t),
		DataDir: t.TempDir(), APISocket: filepath.Join(t.TempDir(), "api.sock"), Profile: "fast",
		DNSUpstreams: []netip.AddrPort{}, HNS: &hnstest.Fake{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a
}

// resolve asks the agent's DNS server, as a container on network would.
func resolve(a *Agent, network, name string, qtype uint16) *mdns.Msg {
	rec := dnstest.NewRecorder("udp")
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	a.dns.Handler(dns.View{Networks: []string{network}}).ServeDNS(rec, q)
	return rec.Msg
}

// TestReconcile_badRowsLeftOut: rows no API of this version would write
// (a network name DNS refuses, an endpoint with a multicast address)
// reach the tables as from another host. Each is left out of the table
// that cannot take it and logged once, and counted; every other row still
// resolves and forwards, and a row removed stops resolving.
func TestReconcile_badRowsLeftOut(t *testing.T) {
	var logs testutil.SyncBuffer
	a := startTestAgent(t, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.2.0/24"}); err != nil {
		t.Fatal(err)
	}
	put := func(table, key string, b []byte) {
		if _, err := a.kv.Put(table, key, b); err != nil {
			t.Fatal(err)
		}
	}
	put(tables.Networks, tables.NetworkKey("a..", "t1"), tables.Network{Name: "a..", Driver: "overlay", Scope: "global", VNI: 4100,
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"), Creator: "t1"}.Encode())
	put(tables.Endpoints, "ov/mcast", tables.Endpoint{Name: "mcast", Network: "ov", Host: "t1", VTEP: netip.MustParseAddr("198.18.0.77"),
		MAC: vxlan.MAC{2, 0x42, 10, 0, 2, 0x63}, Addrs: []netip.Prefix{netip.MustParsePrefix("224.0.0.5/24")}}.Encode())
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "good"}); err != nil {
		t.Fatal(err)
	}
	answers := func(name string) bool {
		m := resolve(a, "ov", name, mdns.TypeA)
		return m != nil && m.Rcode == mdns.RcodeSuccess && len(m.Answer) == 1
	}
	testutil.WaitFor(t, "the good endpoint to resolve beside the bad rows", 5*time.Second, func() bool { return answers("good.ov.") })
	testutil.WaitFor(t, "the bad rows to be counted", 5*time.Second, func() bool {
		c := a.skipped.Counts()
		return c[tableDNS] == 1 && c[tableForwarding] == 1 && c[tableHNS] == 1
	})
	// More rebuilds: each bad row is still logged once.
	for _, name := range []string{"second", "third"} {
		if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: name}); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, name+" to resolve", 5*time.Second, func() bool { return answers(name + ".") })
	}
	for _, want := range []string{`table=dns error="dns: network \"a..\"`, "table=forwarding error=", "table=hns error="} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", want, n, logs.String())
		}
	}
	if err := a.RemoveEndpoint("ov", "good"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the removed endpoint to stop resolving", 5*time.Second, func() bool { return !answers("good.") })
	// HNS took the good rows (the bad network's too: HNS can take its name).
	testutil.WaitFor(t, "HNS to hold the good endpoints", 5*time.Second, func() bool {
		_, eps := a.cfg.HNS.(*hnstest.Fake).ByName()
		return len(eps) == 2
	})
}

// TestReaddress_lossMeanwhile: addresses IPAM takes from this host while
// an endpoint is being readdressed, its new one included, are replaced
// before the readdress lets go: the endpoint ends on an address this host
// leases (a loss that came meanwhile used to be dropped, leaving the
// endpoint on an address IPAM could hand out again).
func TestReaddress_lossMeanwhile(t *testing.T) {
	a := startTestAgent(t, nil)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "web", Subnet: "10.0.31.0/24"}); err != nil {
		t.Fatal(err)
	}
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "web", Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	first := netip.MustParsePrefix(ep.Addresses[0]).Addr()
	var once sync.Once
	var mu sync.Mutex
	var taken netip.Addr
	a.readdressHook = func(key string, fresh []netip.Prefix) {
		// Meanwhile the row lists no lost address, and says why.
		if e, ok := a.kv.Get(tables.Endpoints, key); !ok {
			t.Errorf("no row of %s while it is readdressed", key)
		} else if row, err := tables.DecodeEndpoint(e.Key, e.Owner, e.Value); err != nil || row.State != tables.StateReaddressing || len(row.Addrs) != 0 {
			t.Errorf("row of %s while it is readdressed: %+v %v, want state %q and no address", key, row, err, tables.StateReaddressing)
		}
		once.Do(func() { // the new address is lost too, before the readdress is done
			lost := fresh[0].Addr()
			mu.Lock()
			taken = lost
			mu.Unlock()
			if err := a.ipam.Release("web", lost); err != nil {
				t.Errorf("releasing %v: %v", lost, err)
			}
			a.onLost("web", []netip.Addr{lost})
		})
	}
	if err := a.ipam.Release("web", first); err != nil {
		t.Fatal(err)
	}
	a.onLost("web", []netip.Addr{first})
	testutil.WaitFor(t, "e on a leased address, readdressed twice", 10*time.Second, func() bool {
		a.mu.Lock()
		le := a.local["web/e"]
		var rec tables.Endpoint
		busy := true
		if le != nil {
			rec, busy = le.rec, le.removing
		}
		a.mu.Unlock()
		mu.Lock()
		taken := taken
		mu.Unlock()
		if busy || len(rec.Addrs) != 1 || !taken.IsValid() || rec.State != "" {
			return false
		}
		got := rec.Addrs[0].Addr()
		return got != taken && slices.Contains(a.ipam.Leases("web"), got)
	})
}
