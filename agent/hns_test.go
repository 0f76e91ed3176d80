package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hns/hnstest"
)

// hnsAgent is an agent as far as HNS programming goes: host h1 with its
// tables, programming a fake HNS.
func hnsAgent(fake *hnstest.Fake) *Agent {
	log := slog.New(slog.DiscardHandler)
	return &Agent{cfg: Config{Name: "h1"}, log: log, vtep: netip.MustParseAddr("198.18.0.1"),
		networks: map[string]api.Network{}, endpoints: map[string]api.Endpoint{}, local: map[string]*localEndpoint{},
		hnsProg: hns.NewProgrammer(fake, log)}
}

func (a *Agent) addNet(n api.Network) { a.networks[n.Name] = n }

// programHNS is the HNS half of reconcileNow.
func (a *Agent) programHNS() {
	a.mu.Lock()
	nets := a.networksInSight()
	in := map[string]bool{}
	for _, n := range nets {
		in[n.Name] = true
	}
	hn, he := a.hnsSpecs(nets, a.endpointsInSight(func(network string) bool { return in[network] }))
	a.mu.Unlock()
	a.syncHNS(hn, he)
}
func (a *Agent) addEP(e api.Endpoint) { a.endpoints[e.Network+"/"+e.Name] = e }

func hnsState(t *testing.T, f *hnstest.Fake) (nets map[string]hns.Network, eps map[string]hns.Endpoint) {
	t.Helper()
	ns, err := f.Networks()
	if err != nil {
		t.Fatal(err)
	}
	es, err := f.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	nets, eps = map[string]hns.Network{}, map[string]hns.Endpoint{}
	for _, n := range ns {
		nets[n.Name] = n
	}
	for _, e := range es {
		eps[e.Name] = e
	}
	return nets, eps
}

// TestHNS_followsTheTables: every driver's network is programmed; overlay
// gets a remote endpoint per container on another host, which comes and
// goes with the endpoint table; another host's nat network is not; and an
// HNS restart (which forgets non-persistent networks) is repaired by the
// next reconcile.
func TestHNS_followsTheTables(t *testing.T) {
	fake := &hnstest.Fake{}
	a := hnsAgent(fake)
	a.addNet(api.Network{Name: "ov", Driver: "overlay", Scope: "global", VNI: 4242, Subnet: "10.0.9.0/24", Gateway: "10.0.9.1", Creator: "h2"})
	a.addNet(api.Network{Name: "nt", Driver: "nat", Scope: "local", VNI: 5000, Subnet: "172.30.0.0/24", Gateway: "172.30.0.1", Creator: "h1"})
	a.addNet(api.Network{Name: "other-nat", Driver: "nat", Scope: "local", VNI: 5001, Subnet: "172.31.0.0/24", Gateway: "172.31.0.1", Creator: "h2"})
	a.addNet(api.Network{Name: "tr", Driver: "transparent", Scope: "global", VNI: 5002, Subnet: "192.168.1.0/24", Gateway: "192.168.1.1", Creator: "h2", Options: map[string]string{"uplink": "Ethernet"}})
	a.addNet(api.Network{Name: "l2", Driver: "l2bridge", Scope: "global", VNI: 5003, Subnet: "192.168.2.0/24", Gateway: "192.168.2.1", Creator: "h2", Options: map[string]string{"uplink": "Ethernet"}})
	a.addNet(api.Network{Name: "tu", Driver: "l2tunnel", Scope: "global", VNI: 5004, Subnet: "10.0.5.0/24", Gateway: "10.0.5.1", Creator: "h2",
		Options: map[string]string{"uplink": "Ethernet", "policy-host": "198.18.0.3", "policy-deny": "10.0.5.9:22/tcp"}})
	a.addEP(api.Endpoint{Name: "web", Network: "ov", Host: "h1", VTEP: "198.18.0.1", MAC: "02:42:0a:00:09:02", Addresses: []string{"10.0.9.2/24"}})
	a.addEP(api.Endpoint{Name: "db", Network: "ov", Host: "h2", VTEP: "198.18.0.2", MAC: "02:42:0a:00:09:03", Addresses: []string{"10.0.9.3/24"}})
	a.addEP(api.Endpoint{Name: "www", Network: "nt", Host: "h1", MAC: "02:42:ac:1e:00:02", Addresses: []string{"172.30.0.2/24"}, Publish: []string{"8080:80/tcp"}})
	a.addEP(api.Endpoint{Name: "t1", Network: "tu", Host: "h1", MAC: "02:42:0a:00:05:02", Addresses: []string{"10.0.5.2/24"}})
	a.addEP(api.Endpoint{Name: "t2", Network: "tu", Host: "h2", MAC: "02:42:0a:00:05:03", Addresses: []string{"10.0.5.3/24"}})
	a.programHNS()

	nets, eps := hnsState(t, fake)
	for _, want := range []struct {
		name string
		typ  hns.NetworkType
	}{{"vxnet-ov", hns.Overlay}, {"vxnet-nt", hns.NAT}, {"vxnet-tr", hns.Transparent}, {"vxnet-l2", hns.L2Bridge}, {"vxnet-tu", hns.L2Tunnel}} {
		if n, ok := nets[want.name]; !ok || n.Type != want.typ {
			t.Errorf("HNS network %s: %+v, want type %s", want.name, n, want.typ)
		}
	}
	if _, ok := nets["vxnet-other-nat"]; ok {
		t.Error("another host's nat network was programmed here")
	}
	if len(nets) != 5 {
		t.Errorf("%d HNS networks, want 5", len(nets))
	}
	db, ok := eps[hns.EndpointName("ov", "db")]
	if !ok || !db.Remote() {
		t.Errorf("the overlay container on h2 is not a remote endpoint: %+v", db)
	}
	if _, ok := eps[hns.EndpointName("tu", "t2")]; ok {
		t.Error("an l2tunnel container on another host got an endpoint here")
	}
	www := eps[hns.EndpointName("nt", "www")]
	if !strings.Contains(string(mustJSON(t, www)), "PortMapping") {
		t.Errorf("the nat endpoint has no PortMapping policy: %s", mustJSON(t, www))
	}
	if t1 := eps[hns.EndpointName("tu", "t1")]; !strings.Contains(string(mustJSON(t, t1)), "ACL") {
		t.Errorf("the l2tunnel endpoint has no ACL policy: %s", mustJSON(t, t1))
	}
	creates := fake.Calls(hnstest.OpCreateEndpoint)

	// Nothing changed: nothing is created.
	a.programHNS()
	if got := fake.Calls(hnstest.OpCreateEndpoint); got != creates {
		t.Errorf("a second reconcile created %d endpoints", got-creates)
	}

	// A container appears on h3, then db leaves h2.
	a.addEP(api.Endpoint{Name: "cache", Network: "ov", Host: "h3", VTEP: "198.18.0.3", MAC: "02:42:0a:00:09:04", Addresses: []string{"10.0.9.4/24"}})
	delete(a.endpoints, "ov/db")
	a.programHNS()
	_, eps = hnsState(t, fake)
	if _, ok := eps[hns.EndpointName("ov", "cache")]; !ok {
		t.Error("the new remote container has no HNS endpoint")
	}
	if _, ok := eps[hns.EndpointName("ov", "db")]; ok {
		t.Error("the container that left still has an HNS endpoint")
	}

	// HNS restarts and forgets the (non-persistent) networks.
	fake.Restart()
	if nets, _ := hnsState(t, fake); len(nets) != 0 {
		t.Fatalf("the fake kept %d networks over a restart", len(nets))
	}
	a.programHNS()
	nets, eps = hnsState(t, fake)
	if len(nets) != 5 || eps[hns.EndpointName("ov", "web")].Name == "" || eps[hns.EndpointName("ov", "cache")].Name == "" {
		t.Errorf("after an HNS restart: %d networks, endpoints %v", len(nets), sortedMapKeys(eps))
	}

	// A network removed from the tables leaves HNS, endpoints first.
	delete(a.networks, "nt")
	delete(a.endpoints, "nt/www")
	a.programHNS()
	if nets, _ := hnsState(t, fake); len(nets) != 4 {
		t.Errorf("%d HNS networks after removing one, want 4", len(nets))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// freePort finds a port free for TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			u.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// startHNSAgent runs a whole agent on loopback, programming fake.
func startHNSAgent(t *testing.T, fake *hnstest.Fake, dir string) (*Agent, func()) {
	t.Helper()
	return startHNSAgentAt(t, fake, dir, "w1", "127.0.0.1", freePort(t), nil)
}

// startHNSAgentAt runs agent name on addr:gossipPort, joining join.
func startHNSAgentAt(t *testing.T, fake *hnstest.Fake, dir, name, addr string, gossipPort int, join []string) (*Agent, func()) {
	t.Helper()
	a, err := New(Config{Name: name, AdvertiseAddr: addr, GossipPort: gossipPort, VXLANPort: freePort(t), Join: join,
		DataDir: dir, APISocket: filepath.Join(t.TempDir(), "api.sock"), Profile: "fast",
		DNSUpstreams: []netip.AddrPort{}, HNS: fake, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return a, stop
}

// TestHNS_takesWhatTheSwitchTakes: HNS gets the networks and endpoints
// the forwarding table would: of two networks sharing a VNI the first by
// name, and of two endpoints claiming one address the first by key, here
// or not (every host keeps the same one).
func TestHNS_takesWhatTheSwitchTakes(t *testing.T) {
	fake := &hnstest.Fake{}
	a := hnsAgent(fake)
	a.addNet(api.Network{Name: "a", Driver: "overlay", Scope: "global", VNI: 4242, Subnet: "10.0.9.0/24", Gateway: "10.0.9.1", Creator: "h2"})
	a.addNet(api.Network{Name: "b", Driver: "overlay", Scope: "global", VNI: 4242, Subnet: "10.0.8.0/24", Gateway: "10.0.8.1", Creator: "h3"})
	a.addEP(api.Endpoint{Name: "remote", Network: "a", Host: "h2", VTEP: "198.18.0.2", MAC: "02:42:0a:00:09:05", Addresses: []string{"10.0.9.5/24"}})
	mine := api.Endpoint{Name: "zlocal", Network: "a", Host: "h1", VTEP: "198.18.0.1", MAC: "02:42:0a:00:09:06", Addresses: []string{"10.0.9.5/24"}}
	a.addEP(mine)
	a.local["a/zlocal"] = &localEndpoint{rec: mine}
	a.programHNS()
	nets, eps := hnsState(t, fake)
	if _, ok := nets["vxnet-b"]; ok || len(nets) != 1 {
		t.Errorf("HNS networks %v: want only vxnet-a, the first by name of the two on VNI 4242", slices.Sorted(maps.Keys(nets)))
	}
	if _, ok := eps["vxnet-a-zlocal"]; ok {
		t.Error("this host's endpoint claiming an address an endpoint earlier by key holds reached HNS")
	}
	if _, ok := eps["vxnet-a-remote"]; !ok {
		t.Errorf("the endpoint first by key is missing from HNS: %v", slices.Sorted(maps.Keys(eps)))
	}
}

// TestHNS_endpointsWithoutNamespace: with HNS, an endpoint needs no
// network namespace: the agent creates the HNS endpoint, named for the
// runtime to attach to; it comes back after a restart of the agent (which
// first removes what the previous run left) and goes on removal.
func TestHNS_endpointsWithoutNamespace(t *testing.T) {
	fake := &hnstest.Fake{}
	dir := t.TempDir()
	a, stop := startHNSAgent(t, fake, dir)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	ep, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	name := hns.EndpointName("ov", "web")
	hasEndpoint := func() bool {
		_, eps := hnsState(t, fake)
		e, ok := eps[name]
		return ok && len(e.IpConfigurations) == 1 && e.IpConfigurations[0].IpAddress+"/24" == ep.Addresses[0]
	}
	testutil.WaitFor(t, "the HNS endpoint", 5*time.Second, hasEndpoint)

	stop()
	a, stop = startHNSAgent(t, fake, dir)
	testutil.WaitFor(t, "the HNS endpoint after a restart", 10*time.Second, hasEndpoint)
	if n := fake.Calls(hnstest.OpDeleteEndpoint); n < 1 {
		t.Errorf("the restarted agent did not clean up the old endpoint first (%d deletes)", n)
	}
	if err := a.RemoveEndpoint("ov", "web"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the HNS endpoint to go", 5*time.Second, func() bool {
		_, eps := hnsState(t, fake)
		_, ok := eps[name]
		return !ok
	})
	stop()
}

// Without HNS (Linux), an endpoint needs its namespace, and the error
// names the field.
func TestCreateEndpoint_netnsRequiredWithoutHNS(t *testing.T) {
	a, err := New(Config{Name: "l1", AdvertiseAddr: "127.0.0.1", GossipPort: freePort(t), VXLANPort: freePort(t),
		DataDir: t.TempDir(), APISocket: filepath.Join(t.TempDir(), "api.sock"), Profile: "fast",
		DNSUpstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.8.0/24"}); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "web"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Field != "netns" || !strings.Contains(ae.Message, "netns is required") {
		t.Fatalf("error %v, want one naming netns", err)
	}
}

// TestHNS_remoteEndpointsFollowGossip: two Windows-style agents (each with
// a fake HNS) on loopback. An overlay endpoint created on w2 reaches w1's
// HNS as a remote endpoint behind w2's VTEP through gossip, and leaves it
// when w2 removes the endpoint.
func TestHNS_remoteEndpointsFollowGossip(t *testing.T) {
	f1, f2 := &hnstest.Fake{}, &hnstest.Fake{}
	p1 := freePort(t)
	w1, stop1 := startHNSAgentAt(t, f1, t.TempDir(), "w1", "127.0.0.1", p1, nil)
	defer stop1()
	w2, stop2 := startHNSAgentAt(t, f2, t.TempDir(), "w2", "127.0.0.2", freePort(t), []string{fmt.Sprintf("127.0.0.1:%d", p1)})
	defer stop2()
	testutil.WaitFor(t, "w2 to join w1", 10*time.Second, func() bool { return len(w1.Members()) == 2 })
	ctx := context.Background()
	if _, err := w1.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.7.0/24"}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "w2 to see the network", 10*time.Second, func() bool {
		_, ok := w2.network("ov")
		return ok
	})
	ep, err := w2.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "api"})
	if err != nil {
		t.Fatal(err)
	}
	name := hns.EndpointName("ov", "api")
	testutil.WaitFor(t, "w1's HNS to get w2's endpoint as a remote one", 10*time.Second, func() bool {
		_, eps := hnsState(t, f1)
		e, ok := eps[name]
		return ok && e.Remote() && strings.Contains(string(mustJSON(t, e)), "127.0.0.2") &&
			len(e.IpConfigurations) == 1 && e.IpConfigurations[0].IpAddress+"/24" == ep.Addresses[0]
	})
	if _, eps := hnsState(t, f2); eps[name].Remote() {
		t.Error("w2's own endpoint is remote in its HNS")
	}
	if err := w2.RemoveEndpoint("ov", "api"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the remote endpoint to leave w1's HNS", 10*time.Second, func() bool {
		_, eps := hnsState(t, f1)
		_, ok := eps[name]
		return !ok
	})
}
