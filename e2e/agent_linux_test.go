package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// cluster is a set of hosts (namespaces on one bridge) running `vxnet
// agent`, driven through the CLI.
type cluster struct {
	l      *lab
	subnet string // underlay /24, e.g. "198.18.40"
	hosts  map[string]*agentProc
	extra  []string // more flags for every agent
}

type agentProc struct {
	name, ns, addr, sock, data, log string
	bin                             string   // the vxnet the host runs; "": this build's (vxnetBin)
	mnt                             *mountNS // the host's own mount namespace (dockerCluster), or nil
	cmd                             *exec.Cmd
	exited                          chan error
}

func (l *lab) cluster(underlay string, names ...string) *cluster {
	return l.clusterWith(underlay, nil, names...)
}

// clusterWith is cluster with more flags for every agent.
func (l *lab) clusterWith(underlay string, extra []string, names ...string) *cluster {
	return l.newCluster(underlay, extra, false, names...)
}

// dockerCluster is clusterWith where each host also has a mount namespace
// of its own (see mountNS), shared by its agent and its dockerd (c.dockerd):
// Docker hands its plugin container namespaces as paths that exist only in
// dockerd's mount namespace, and finds plugins at the one fixed directory
// /run/docker/plugins, which each host needs to itself.
func (l *lab) dockerCluster(underlay string, extra []string, names ...string) *cluster {
	l.t.Helper()
	needDocker(l.t)
	return l.newCluster(underlay, extra, true, names...)
}

func (l *lab) newCluster(underlay string, extra []string, docker bool, names ...string) *cluster {
	l.t.Helper()
	c := l.clusterHosts(underlay, extra, docker, names...)
	first := c.hosts[names[0]].addr
	for i, name := range names {
		join := ""
		if i > 0 {
			join = first + ":7946"
		}
		c.start(name, join)
	}
	c.waitMembers(names, len(names))
	return c
}

// clusterHosts makes the hosts of a cluster (namespaces on one bridge),
// with no agent running yet.
func (l *lab) clusterHosts(underlay string, extra []string, docker bool, names ...string) *cluster {
	l.t.Helper()
	c := &cluster{l: l, subnet: underlay, hosts: map[string]*agentProc{}, extra: extra}
	br := l.netns("br")
	l.run("ip", "-n", br, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", br, "link", "set", "br0", "up")
	for i, name := range names {
		ns := l.netns(name)
		addr := fmt.Sprintf("%s.%d", underlay, i+1)
		l.veth(ns, "ul0", addr+"/24", br, "p-"+name, "")
		l.run("ip", "-n", br, "link", "set", "p-"+name, "master", "br0")
		c.hosts[name] = &agentProc{name: name, ns: ns, addr: addr, sock: filepath.Join(l.dir, name+".sock"),
			data: filepath.Join(l.dir, name+"-data")}
		if docker {
			c.hosts[name].mnt = l.mountNS(name)
		}
	}
	if l.beforeAgents != nil {
		l.beforeAgents(br)
	}
	return c
}

// start runs the agent of a host (again, after a kill).
func (c *cluster) start(name, join string) { c.l.t.Helper(); c.startWith(name, join, c.extra...) }

// agentArgv is the command line that runs a host's agent in the host's
// namespaces: `ip netns exec`, or nsenter for a host with a mount namespace.
func (c *cluster) agentArgv(name, join string, extra ...string) []string {
	h := c.hosts[name]
	args := append(h.enter(), h.binary(), "agent", "--name", name, "--advertise-addr", h.addr,
		"--data-dir", h.data, "--api-socket", h.sock, "--docker-plugin", "off", "--profile", "fast", "--dns-upstream", "none", "--log-level", "debug",
		"--metrics-addr", h.addr+":9464", "--rx-queues", "2") // two receive loops: the queue path is tested too
	if h.mnt != nil { // the host's Docker: its plugin, and its API
		args = append(args, "--docker-plugin", "/run/docker/plugins/vxnet.sock", "--docker-host", "unix://"+h.mnt.docker)
	}
	if join != "" {
		args = append(args, "--join", join)
	}
	return append(args, extra...)
}

// binary is the vxnet the host runs.
func (h *agentProc) binary() string {
	if h.bin != "" {
		return h.bin
	}
	return vxnetBin
}

// enter is the command prefix that runs a command in the host's namespaces.
func (h *agentProc) enter() []string {
	if h.mnt != nil {
		return h.mnt.enter(h.ns)
	}
	return []string{"ip", "netns", "exec", h.ns}
}

// startWith runs the agent of a host with extra flags.
func (c *cluster) startWith(name, join string, extra ...string) {
	c.l.t.Helper()
	c.startArgv(name, c.agentArgv(name, join, extra...))
}

// startArgv runs argv as the agent of a host, stopped (SIGTERM) at
// cleanup, and waits until it answers its API.
func (c *cluster) startArgv(name string, argv []string) {
	t := c.l.t
	t.Helper()
	h := c.hosts[name]
	h.log = filepath.Join(c.l.dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	logf, err := os.Create(h.log)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.exited = make(chan error, 1)
	cmd, exited := h.cmd, h.exited
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(h.log)
			t.Logf("agent %s log %s:\n%s", name, h.log, b)
		}
	})
	testutil.WaitFor(t, "agent "+name+" to answer", 20*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err // for the cleanup's wait, which would block forever
			b, _ := os.ReadFile(h.log)
			t.Fatalf("agent %s exited: %v\n%s", name, err, b)
		default:
		}
		_, err := c.tryCLI(name, "cluster", "members")
		return err == nil
	})
}

// kill9 kills a host's agent with SIGKILL and waits for it.
func (c *cluster) kill9(name string) {
	h := c.hosts[name]
	h.cmd.Process.Kill()
	<-h.exited
	h.exited <- nil // for the cleanup's wait
}

func (c *cluster) tryCLI(host string, args ...string) (string, error) {
	h := c.hosts[host]
	out, err := exec.Command(h.binary(), append([]string{"--socket", h.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (c *cluster) cli(host string, args ...string) string {
	c.l.t.Helper()
	out, err := c.tryCLI(host, args...)
	if err != nil {
		c.l.t.Fatalf("vxnet %s (on %s): %v\n%s", strings.Join(args, " "), host, err, out)
	}
	return out
}

func (c *cluster) waitMembers(names []string, n int) {
	c.l.t.Helper()
	testutil.WaitFor(c.l.t, fmt.Sprintf("every agent to see %d members", n), 30*time.Second, func() bool {
		for _, name := range names {
			out, err := c.tryCLI(name, "cluster", "members", "--format", "json")
			var ms []map[string]any
			if err != nil || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != n {
				return false
			}
		}
		return true
	})
}

type endpointJSON struct {
	Name, Network, Host, MAC, Netns string
	Addresses                       []string
	State, Reason                   string
}

func (c *cluster) endpoints(host string) map[string]endpointJSON {
	c.l.t.Helper()
	m := map[string]endpointJSON{}
	for _, e := range c.endpointList(host) {
		m[e.Name] = e
	}
	return m
}

func addrOf(t *testing.T, e endpointJSON) netip.Addr {
	t.Helper()
	p, err := netip.ParsePrefix(e.Addresses[0])
	if err != nil {
		t.Fatal(err)
	}
	return p.Addr()
}

// dig asks the container's resolver (127.0.0.11 via its resolv.conf) for
// name and returns the answer's addresses.
func (c *cluster) dig(ns, name string, tcp bool) string {
	args := []string{"dig", "+short", "+time=2", "+tries=1", name, "@127.0.0.11"}
	if tcp {
		args = append(args, "+tcp")
	}
	out, _ := c.l.tryIn(ns, args...)
	return strings.TrimSpace(out)
}

// TestAgent_threeHosts: three agents joined by gossip; a network and
// endpoints made with the CLI; cross-host ping by name, TCP with a
// checksum, DNS over UDP and TCP; kill -9 and restart (nothing lost, no
// address reused); a host gone (its endpoint leaves the others' tables
// and services, its name answers while it is held) and back (it returns).
func TestAgent_threeHosts(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.40", "h1", "h2", "h3")
	c.cli("h1", "network", "create", "-d", "overlay", "--subnet", "10.40.0.0/24", "web")
	cns := map[string]string{}
	for i, h := range []string{"h1", "h2", "h3"} {
		name := fmt.Sprintf("c%d", i+1)
		cns[name] = l.netns(name)
		args := []string{"endpoint", "create", "--network", "web", "--name", name, "--netns", cns[name]}
		if name == "c2" {
			args = append(args, "--alias", "api")
		} else {
			args = append(args, "--service", "front")
		}
		testutil.WaitFor(t, h+" to know network web", 10*time.Second, func() bool {
			_, err := c.tryCLI(h, "network", "inspect", "web")
			return err == nil
		})
		c.cli(h, args...)
	}
	testutil.WaitFor(t, "every host to list 3 endpoints", 10*time.Second, func() bool {
		for _, h := range []string{"h1", "h2", "h3"} {
			if len(c.endpoints(h)) != 3 {
				return false
			}
		}
		return true
	})
	eps := c.endpoints("h1")
	seen := map[netip.Addr]string{}
	for name, e := range eps {
		a := addrOf(t, e)
		if o, dup := seen[a]; dup {
			t.Fatalf("%s and %s share %v", o, name, a)
		}
		seen[a] = name
	}

	// Cross-host by name (the container's resolver) and by address.
	l.in(cns["c1"], "ping", "-c", "2", "-i", "0.2", "-W", "5", "c2")
	l.in(cns["c3"], "ping", "-c", "2", "-i", "0.2", "-W", "5", "api")
	// endpoint inspect shows one endpoint whole, from any host.
	var inspected []endpointJSON
	if out := c.cli("h1", "endpoint", "inspect", "--network", "web", "c3"); json.Unmarshal([]byte(out), &inspected) != nil ||
		len(inspected) != 1 || inspected[0].Host != eps["c3"].Host || strings.Join(inspected[0].Addresses, ",") != strings.Join(eps["c3"].Addresses, ",") {
		t.Errorf("endpoint inspect c3 on h1: %s", out)
	}
	if out, err := c.tryCLI("h1", "endpoint", "inspect", "nope"); err == nil || !strings.Contains(out, `no endpoint "nope"`) {
		t.Errorf("endpoint inspect of no endpoint: %v %s", err, out)
	}
	l.in(cns["c2"], "ping", "-c", "2", "-i", "0.2", "-W", "5", addrOf(t, eps["c3"]).String())
	for _, tcp := range []bool{false, true} {
		if got := c.dig(cns["c1"], "c3.web", tcp); got != addrOf(t, eps["c3"]).String() {
			t.Errorf("dig c3.web (tcp %v) from c1: %q, want %v", tcp, got, addrOf(t, eps["c3"]))
		}
	}
	transfer(t, cns["c1"], cns["c3"], addrOf(t, eps["c3"]), 20<<20)

	// A service over c1 and c3: listed, and resolved to both.
	var svcs []struct {
		Name      string
		Endpoints []string
	}
	if err := json.Unmarshal([]byte(c.cli("h2", "service", "ls", "--format", "json")), &svcs); err != nil ||
		len(svcs) != 1 || svcs[0].Name != "front" || len(svcs[0].Endpoints) != 2 {
		t.Errorf("service ls: %+v %v", svcs, err)
	}
	for _, name := range []string{"front", "tasks.front"} {
		got := strings.Fields(c.dig(cns["c2"], name, false))
		if len(got) != 2 {
			t.Errorf("dig %s from c2: %v, want the addresses of c1 and c3", name, got)
		}
	}

	// Prometheus metrics of h1 show the traffic, the members, the DNS
	// queries.
	metrics := l.in(c.hosts["h1"].ns, "curl", "-sf", "http://"+c.hosts["h1"].addr+":9464/metrics")
	for _, re := range []string{
		`vxnet_dataplane_packets_total{direction="underlay_tx"} [1-9]`,
		`vxnet_gossip_members 3`,
		`vxnet_endpoints{where="remote"} 2`,
		`vxnet_dns_queries_total{result="answered"} [1-9]`,
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(re[:strings.IndexByte(re, ' ')]) + re[strings.IndexByte(re, ' '):]).MatchString(metrics) {
			t.Errorf("metrics lack %s:\n%s", re, metrics)
		}
	}

	// vxnet run: a command in a namespace of its own on the network, gone
	// with its endpoint when the command ends; its exit status passes on.
	out, err := c.tryCLI("h1", "run", "--network", "web", "--name", "probe", "--service", "probes", "--",
		"sh", "-c", "ping -c1 -W5 c3 >/dev/null && dig +short probes @127.0.0.11 && exit 3")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(out, "10.40.0.") {
		t.Errorf("vxnet run: %v\n%s", err, out)
	}
	if _, listed := c.endpoints("h1")["probe"]; listed {
		t.Errorf("vxnet run left its endpoint behind")
	}
	if ns := l.run("ip", "netns", "list"); strings.Contains(ns, "vxrun-probe") {
		t.Errorf("vxnet run left its namespace behind:\n%s", ns)
	}

	// kill -9 h2's agent and restart it: c2 comes back with its address
	// and MAC, and a new endpoint gets an address no one holds.
	c.kill9("h2")
	c.start("h2", c.hosts["h1"].addr+":7946")
	testutil.WaitFor(t, "c2 back on h2 with its address", 15*time.Second, func() bool {
		e, ok := c.endpoints("h2")["c2"]
		return ok && addrOf(t, e) == addrOf(t, eps["c2"])
	})
	l.in(cns["c1"], "ping", "-c", "2", "-i", "0.2", "-W", "5", "c2")
	cns["c4"] = l.netns("c4")
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "c4", "--netns", cns["c4"])
	c4 := addrOf(t, c.endpoints("h2")["c4"])
	if o, dup := seen[c4]; dup {
		t.Fatalf("restarted h2 handed out %v, which %s holds", c4, o)
	}
	l.in(cns["c4"], "ping", "-c", "2", "-i", "0.2", "-W", "5", "c1")

	// c4's namespace vanishes while h2 is down (as at a reboot): h2 drops
	// the endpoint when it comes back, everywhere, resolv.conf included.
	c.kill9("h2")
	l.run("ip", "netns", "del", cns["c4"])
	c.start("h2", c.hosts["h1"].addr+":7946")
	testutil.WaitFor(t, "c4 gone from h1's endpoints", 20*time.Second, func() bool {
		_, listed := c.endpoints("h1")["c4"]
		return !listed
	})
	if _, err := os.Stat("/etc/netns/" + cns["c4"]); err == nil {
		t.Errorf("/etc/netns/%s left behind", cns["c4"])
	}
	// c5's namespace is deleted while h2 runs: h2 removes the endpoint,
	// so its name, address and DNS record do not stay held.
	cns["c5"] = l.netns("c5")
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "c5", "--netns", cns["c5"])
	testutil.WaitFor(t, "c5 in h1's DNS", 20*time.Second, func() bool { return c.dig(cns["c1"], "c5", false) != "" })
	l.run("ip", "netns", "del", cns["c5"])
	testutil.WaitFor(t, "c5 gone from h1's endpoints and DNS", 30*time.Second, func() bool {
		_, listed := c.endpoints("h1")["c5"]
		return !listed && c.dig(cns["c1"], "c5", false) == ""
	})
	if _, err := os.Stat("/etc/netns/" + cns["c5"]); err == nil {
		t.Errorf("/etc/netns/%s left behind", cns["c5"])
	}

	// h3 goes away: its endpoint leaves h1's tables and service front,
	// but its name still answers while h3 holds it (its container keeps
	// its address over a restart).
	c.kill9("h3")
	testutil.WaitFor(t, "c3 to leave h1's tables", 20*time.Second, func() bool {
		_, listed := c.endpoints("h1")["c3"]
		return !listed
	})
	if got := c.dig(cns["c1"], "c3", false); got != addrOf(t, eps["c3"]).String() {
		t.Errorf("dig c3 from c1 while h3 is down and holds the name: %q, want %v", got, addrOf(t, eps["c3"]))
	}
	testutil.WaitFor(t, "front to resolve to c1 alone", 10*time.Second, func() bool {
		return c.dig(cns["c2"], "front", false) == addrOf(t, eps["c1"]).String()
	})
	// ... and comes back.
	c.start("h3", c.hosts["h1"].addr+":7946")
	testutil.WaitFor(t, "c3 back in h1's DNS", 30*time.Second, func() bool {
		return c.dig(cns["c1"], "c3", false) == addrOf(t, eps["c3"]).String()
	})
	l.in(cns["c1"], "ping", "-c", "2", "-i", "0.2", "-W", "5", "c3")
}

// TestAgent_badRequestsNameTheField: bad flags exit 2 with usage; bad API
// requests get errors naming the field and the value.
func TestAgent_badRequestsNameTheField(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.41", "h1")
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"network", "create", "--subnet", "10.41.0.1/24", "bad"}, 1, []string{"subnet", "10.41.0.1/24", "did you mean 10.41.0.0/24"}},
		{[]string{"network", "create", "-d", "bridge", "x"}, 1, []string{"driver", `"bridge"`}},
		{[]string{"network", "create", "-o", "block-size=big", "x"}, 1, []string{"block-size", "big"}},
		{[]string{"network", "create", "bad/name"}, 1, []string{"name", "bad/name"}},
		{[]string{"network", "create"}, 2, []string{"NAME"}},
		{[]string{"network", "create", "--subnet"}, 2, []string{"subnet"}},
		{[]string{"endpoint", "create", "--network", "nope", "--name", "a", "--netns", "x"}, 1, []string{"network", `"nope"`}},
		{[]string{"endpoint", "create", "--network", "web"}, 2, []string{"--name"}},
		{[]string{"network", "rm", "nope"}, 1, []string{`"nope"`}},
		{[]string{"network", "ls", "--format", "yaml"}, 2, []string{"yaml"}},
	} {
		out, err := c.tryCLI("h1", tc.args...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("vxnet %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("vxnet %s: output does not mention %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	// An agent that cannot start (its metrics port is taken) says why and
	// exits after --bind-timeout, rather than hanging.
	h := c.hosts["h1"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, vxnetBin, "agent", "--name", "h1b",
		"--advertise-addr", h.addr, "--gossip-port", "7947", "--vxlan-port", "4790", "--data-dir", filepath.Join(l.dir, "h1b"),
		"--api-socket", filepath.Join(l.dir, "h1b.sock"), "--docker-plugin", "off", "--metrics-addr", h.addr+":9464", "--bind-timeout", "2s").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(b), "metrics-addr") ||
		!strings.Contains(string(b), "still in use after 2s") || ctx.Err() != nil {
		t.Errorf("agent with a taken metrics port: %v\n%s", err, b)
	}

	c.cli("h1", "network", "create", "--subnet", "10.41.0.0/24", "web")
	ns := l.netns("x1")
	c.cli("h1", "endpoint", "create", "--network", "web", "--name", "a", "--netns", ns)
	out, err := c.tryCLI("h1", "endpoint", "create", "--network", "web", "--name", "b", "--netns", ns+"-missing")
	if err == nil || !strings.Contains(out, "no such namespace (ip netns add") {
		t.Errorf("missing namespace: %v\n%s", err, out)
	}
	out, err = c.tryCLI("h1", "endpoint", "create", "--network", "web", "--name", "a", "--netns", ns)
	if err == nil || !strings.Contains(out, "exists") {
		t.Errorf("duplicate endpoint: %v\n%s", err, out)
	}
	out, err = c.tryCLI("h1", "network", "rm", "web")
	if err == nil || !strings.Contains(out, "has endpoints: a on h1") {
		t.Errorf("rm of a network in use: %v\n%s", err, out)
	}
	// Raw API: a malformed body and an unknown field name the problem.
	for body, want := range map[string]string{`{"name": 5}`: "name", `{"nme": "x"}`: "nme", `{`: "bad request body"} {
		out, _ := l.tryIn(c.hosts["h1"].ns, "curl", "-s", "--unix-socket", c.hosts["h1"].sock, "-X", "POST", "-d", body, "http://vxnet/v1/networks")
		if !strings.Contains(out, `"code": "bad_request"`) || !strings.Contains(out, want) {
			t.Errorf("POST %s: %s", body, out)
		}
	}
}
