package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxnet/vxnet/agent/config"
	"github.com/vxnet/vxnet/internal/freeport"
	"github.com/vxnet/vxnet/internal/testutil"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/hns"
	"github.com/vxnet/vxnet/hns/hnstest"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// freePort finds a port free for TCP and UDP on 127.0.0.1, below the
// ephemeral range.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Loopback(true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startHNSAgent runs a whole agent on loopback, programming fake.
func startHNSAgent(t *testing.T, fake *hnstest.Fake, dir string) (*Agent, func()) {
	t.Helper()
	return startHNSAgentAt(t, fake, dir, "w1", "127.0.0.1", freePort(t), nil)
}

// startHNSAgentAt runs agent name on addr:gossipPort, joining join.
func startHNSAgentAt(t *testing.T, fake *hnstest.Fake, dir, name, addr string, gossipPort int, join []string) (*Agent, func()) {
	t.Helper()
	return runTestAgent(t, config.Config{Name: name, AdvertiseAddr: addr, GossipPort: gossipPort, Join: join, DataDir: dir, HNS: fake})
}

// runTestAgent runs an agent of cfg, with what it leaves out filled in
// for a test (a free VXLAN port, a temporary data directory and API
// socket, the fast profile, no DNS upstream, no log), until stop.
func runTestAgent(t *testing.T, cfg config.Config) (a *Agent, stop func()) {
	t.Helper()
	if cfg.VXLANPort == 0 {
		cfg.VXLANPort = freePort(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.APISocket, cfg.Profile, cfg.DNSUpstreams = filepath.Join(t.TempDir(), "api.sock"), "fast", []netip.AddrPort{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
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
		_, eps := fake.ByName()
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
		_, eps := fake.ByName()
		_, ok := eps[name]
		return !ok
	})
	stop()
}

// Without HNS (Linux), an endpoint needs its namespace, and the error
// names the field.
func TestCreateEndpoint_netnsRequiredWithoutHNS(t *testing.T) {
	a, err := New(config.Config{Name: "l1", AdvertiseAddr: "127.0.0.1", GossipPort: freePort(t), VXLANPort: freePort(t),
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
	// "." and ".." name no namespace: joined to /etc/netns, ".." would be
	// /etc, whose resolv.conf a handover endpoint's removal would delete.
	for _, ns := range []string{".", ".."} {
		_, err = a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "web", Netns: ns, Ifname: api.HandoverPrefix + "1", Handover: true})
		if !errors.As(err, &ae) || ae.Field != "netns" || !strings.Contains(ae.Message, fmt.Sprintf("netns %q", ns)) {
			t.Errorf("netns %q: %v, want a refusal naming netns", ns, err)
		}
	}
	if namedNetns("..") || namedNetns("") || namedNetns("/proc/1/ns/net") || !namedNetns("c1") {
		t.Error("namedNetns")
	}
}

// TestCreateEndpoint_IPv6NeedsItsMTU: an endpoint that would take a host
// MTU below IPv6's 1280 (--mtu 1000; --mtu 600 less sealing) on a network
// with IPv6 is refused naming mtu, as one that asks for it is; IPv4 alone
// runs on it, below 576 too (572 on the encrypted network).
func TestCreateEndpoint_IPv6NeedsItsMTU(t *testing.T) {
	for _, c := range []struct {
		mtu  int
		opts map[string]string
	}{{1000, nil}, {600, map[string]string{"encrypted": "true"}}} {
		key := ""
		if c.opts != nil {
			key = "AAAAAAAAAAAAAAAAAAAAAA==" // an encrypted cluster, for encrypted networks
		}
		a, stop := runTestAgent(t, config.Config{Name: "m1", AdvertiseAddr: "127.0.0.1", GossipPort: freePort(t), MTU: c.mtu, GossipKey: key, HNS: &hnstest.Fake{}})
		ctx := context.Background()
		if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "six", Subnet: "fd00:15::/64", Options: c.opts}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "four", Subnet: "10.0.15.0/24", Options: c.opts}); err != nil {
			t.Fatal(err)
		}
		_, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "six", Name: "e"})
		wantAPIError(t, fmt.Sprintf("--mtu %d", c.mtu), err, api.CodeBadRequest, "mtu", "larger --mtu")
		if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "four", Name: "e"}); err != nil {
			t.Errorf("--mtu %d, IPv4 network: %v", c.mtu, err)
		}
		stop()
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
		_, eps := f1.ByName()
		e, ok := eps[name]
		return ok && e.Remote() && strings.Contains(string(mustJSON(t, e)), "127.0.0.2") &&
			len(e.IpConfigurations) == 1 && e.IpConfigurations[0].IpAddress+"/24" == ep.Addresses[0]
	})
	if _, eps := f2.ByName(); eps[name].Remote() {
		t.Error("w2's own endpoint is remote in its HNS")
	}
	if err := w2.RemoveEndpoint("ov", "api"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the remote endpoint to leave w1's HNS", 10*time.Second, func() bool {
		_, eps := f1.ByName()
		_, ok := eps[name]
		return !ok
	})
}

// TestHNS_endpointAttachedToNamespace: an HNS endpoint asked for with a
// namespace (a CNI runtime's pod on Windows) is attached to it, and again
// after the agent restarts; a namespace with a netns is refused, naming
// the field.
func TestHNS_endpointAttachedToNamespace(t *testing.T) {
	fake := &hnstest.Fake{}
	dir := t.TempDir()
	a, stop := startHNSAgent(t, fake, dir)
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "x", Netns: "/proc/self/ns/net", HNSNamespace: "ns-1"}); err == nil || !strings.Contains(err.Error(), "hnsNamespace") {
		t.Errorf("hnsNamespace with a netns: %v", err)
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "pod", HNSNamespace: "3b7a7f2e-pod-ns"}); err != nil {
		t.Fatal(err)
	}
	name := hns.EndpointName("ov", "pod")
	attached := func() bool {
		_, eps := fake.ByName()
		return eps[name].HostComputeNamespace == "3b7a7f2e-pod-ns"
	}
	testutil.WaitFor(t, "the HNS endpoint attached to the pod's namespace", 5*time.Second, attached)
	stop()
	_, stop = startHNSAgent(t, fake, dir)
	defer stop()
	testutil.WaitFor(t, "the HNS endpoint attached again after a restart", 10*time.Second, attached)
}

// TestHNS_failedAttachTriedAgain: HNS refusing to attach an endpoint (a
// transient failure) is tried again on a timer, with nothing else
// changing, until the endpoint is attached.
func TestHNS_failedAttachTriedAgain(t *testing.T) {
	fake := &hnstest.Fake{}
	a, stop := startHNSAgent(t, fake, t.TempDir())
	defer stop()
	ctx := context.Background()
	if _, err := a.CreateNetwork(ctx, api.NetworkCreate{Name: "ov", Subnet: "10.0.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	const failures = 5
	for range failures {
		fake.Fail(hnstest.OpAttachNamespace, errors.New("the namespace is busy"))
	}
	if _, err := a.CreateEndpoint(ctx, api.EndpointCreate{Network: "ov", Name: "pod", HNSNamespace: "ns-busy"}); err != nil {
		t.Fatal(err)
	}
	name := hns.EndpointName("ov", "pod")
	testutil.WaitFor(t, "the HNS endpoint attached after HNS refused it", 30*time.Second, func() bool {
		_, eps := fake.ByName()
		return eps[name].HostComputeNamespace == "ns-busy"
	})
	if n := fake.Calls(hnstest.OpAttachNamespace); n <= failures {
		t.Errorf("AttachNamespace called %d times; want more than the %d that failed", n, failures)
	}
}
