package plan

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hns/hnstest"
	"github.com/vxnet/vxnet/tables"
)

// TestHNS_followsTheTables: what HNS ends up holding when a host programs
// the plan of every driver's network: overlay gets a remote endpoint per
// container on another host, which comes and goes with the endpoint rows;
// another host's nat network is not programmed; an HNS restart (which
// forgets non-persistent networks) is repaired by the next sync; a network
// gone from the tables leaves HNS.
func TestHNS_followsTheTables(t *testing.T) {
	fake := &hnstest.Fake{}
	prog := hns.NewProgrammer(fake, slog.New(slog.DiscardHandler))
	nets := []tables.Network{
		network("ov", "overlay", 9, "h2", nil),
		network("nt", "nat", 10, "h1", nil),
		network("other-nat", "nat", 11, "h2", nil),
		network("tr", "transparent", 12, "h2", map[string]string{"uplink": "Ethernet"}),
		network("l2", "l2bridge", 13, "h2", map[string]string{"uplink": "Ethernet"}),
		network("tu", "l2tunnel", 14, "h2", map[string]string{"uplink": "Ethernet", "policy-host": "198.18.0.3", "policy-deny": "10.0.14.9:22/tcp"}),
	}
	www := endpoint("nt", "www", "h1", 10, 2)
	www.Publish = []string{"8080:80/tcp"}
	eps := []tables.Endpoint{endpoint("ov", "web", "h1", 9, 2), endpoint("ov", "db", "h2", 9, 3), www,
		endpoint("tu", "t1", "h1", 14, 2), endpoint("tu", "t2", "h2", 14, 3)}
	sync := func() {
		t.Helper()
		in := input(nets, eps)
		in.HNS = true
		st := Make(in)
		if err := prog.Sync(st.HNSNetworks, st.HNSEndpoints); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	sync()
	hnsNets, hnsEps := fake.ByName()
	for name, typ := range map[string]hns.NetworkType{"vxnet-ov": hns.Overlay, "vxnet-nt": hns.NAT, "vxnet-tr": hns.Transparent,
		"vxnet-l2": hns.L2Bridge, "vxnet-tu": hns.L2Tunnel} {
		if n, ok := hnsNets[name]; !ok || n.Type != typ {
			t.Errorf("HNS network %s: %+v, want type %s", name, n, typ)
		}
	}
	if _, ok := hnsNets["vxnet-other-nat"]; ok || len(hnsNets) != 5 {
		t.Errorf("%d HNS networks (another host's nat network among them: %v), want 5", len(hnsNets), ok)
	}
	if db, ok := hnsEps[hns.EndpointName("ov", "db")]; !ok || !db.Remote() {
		t.Errorf("the overlay container on h2 is not a remote endpoint: %+v", db)
	}
	if _, ok := hnsEps[hns.EndpointName("tu", "t2")]; ok {
		t.Error("an l2tunnel container on another host got an endpoint here")
	}
	if w := mustJSON(t, hnsEps[hns.EndpointName("nt", "www")]); !strings.Contains(w, "PortMapping") {
		t.Errorf("the nat endpoint has no PortMapping policy: %s", w)
	}
	if t1 := mustJSON(t, hnsEps[hns.EndpointName("tu", "t1")]); !strings.Contains(t1, "ACL") {
		t.Errorf("the l2tunnel endpoint has no ACL policy: %s", t1)
	}
	creates := fake.Calls(hnstest.OpCreateEndpoint)
	sync()
	if got := fake.Calls(hnstest.OpCreateEndpoint); got != creates {
		t.Errorf("a second sync of the same tables created %d endpoints", got-creates)
	}

	// A container appears on h3, then db leaves h2.
	eps = append(eps, endpoint("ov", "cache", "h3", 9, 4))
	eps = append(eps[:1], eps[2:]...)
	sync()
	_, hnsEps = fake.ByName()
	if _, ok := hnsEps[hns.EndpointName("ov", "cache")]; !ok {
		t.Error("the new remote container has no HNS endpoint")
	}
	if _, ok := hnsEps[hns.EndpointName("ov", "db")]; ok {
		t.Error("the container that left still has an HNS endpoint")
	}

	// HNS restarts and forgets the (non-persistent) networks.
	fake.Restart()
	sync()
	hnsNets, hnsEps = fake.ByName()
	if len(hnsNets) != 5 || hnsEps[hns.EndpointName("ov", "web")].Name == "" || hnsEps[hns.EndpointName("ov", "cache")].Name == "" {
		t.Errorf("after an HNS restart: %d networks, endpoints %d", len(hnsNets), len(hnsEps))
	}

	// A network removed from the tables leaves HNS, endpoints first.
	nets = append(nets[:1], nets[2:]...) // nt
	var kept []tables.Endpoint
	for _, e := range eps {
		if e.Network != "nt" {
			kept = append(kept, e)
		}
	}
	eps = kept
	sync()
	if hnsNets, _ := fake.ByName(); len(hnsNets) != 4 {
		t.Errorf("%d HNS networks after removing one, want 4", len(hnsNets))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
