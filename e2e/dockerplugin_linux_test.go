package e2e

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// hostLeases reads the addresses a host's state file says it holds, and
// those it keeps reserved for Docker, by network.
func (c *cluster) hostLeases(host string) (leases, reserved map[string][]string) {
	c.l.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.hosts[host].data, "state.json"))
	if err != nil {
		c.l.t.Fatal(err)
	}
	var f struct {
		State struct {
			Leases   map[string][]string
			Reserved map[string][]string
		}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		c.l.t.Fatalf("%s's state file: %v", host, err)
	}
	return f.State.Leases, f.State.Reserved
}

// sandbox is the network namespace of a Docker container, as a path in
// its host's mount namespace.
func (d *dockerd) sandbox(container string) string {
	return strings.TrimSpace(d.docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", container))
}

// inContainerNet runs a host tool (dig) in a Docker container's network
// namespace, from the host's mount namespace (the only one where the
// namespace's path exists).
func (c *cluster) inContainerNet(host string, d *dockerd, container string, args ...string) (string, error) {
	key := d.sandbox(container)
	argv := append([]string{"nsenter", "--mount=" + c.hosts[host].mnt.path(), "nsenter", "--net=" + key}, args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// handedOverDevices lists the devices in a host's namespace left by the
// Docker plugin (vxd…): made for Docker and not moved, or not removed.
func (c *cluster) handedOverDevices(host string) []string {
	out := c.l.run("ip", "-n", c.hosts[host].ns, "-o", "link", "show")
	var devs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "vxd") {
			devs = append(devs, strings.TrimSuffix(f[1], ":"))
		}
	}
	return devs
}

// TestDocker_plugin: three hosts, each with an agent and a dockerd; Docker
// networks on the vxnet driver. Containers of different hosts reach each
// other by name and alias (ping, TCP); a vxnet-native endpoint and Docker
// containers share a network; options that differ are refused naming the
// option; connect and disconnect; the agent killed with containers
// running keeps them connected once back; dockerd restarted and killed;
// a container killed; docker network rm. After all of it: no endpoint,
// lease, reservation, device or name left on any host.
func TestDocker_plugin(t *testing.T) {
	l := newLab(t)
	c := l.dockerCluster("198.18.72", nil, "h1", "h2", "h3")
	d := map[string]*dockerd{"h1": c.dockerd("h1"), "h2": c.dockerd("h2"), "h3": c.dockerd("h3")}
	const subnet = "10.72.0.0/24"

	// One network, made through each host's Docker: the first makes it in
	// the cluster, the others tie to it.
	for _, h := range []string{"h1", "h2", "h3"} {
		d[h].docker("network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--subnet", subnet, "web")
	}
	testutil.WaitFor(t, "the vxnet network web", 15*time.Second, func() bool {
		n, ok := c.networks("h3")["web"]
		return ok && n.Subnet == subnet
	})
	if n := len(c.networks("h1")); n != 1 {
		t.Fatalf("h1 lists %d networks, want 1 (web)", n)
	}
	// Options that differ from the network's are refused, naming them.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "vxnet.driver=l2tunnel", "--subnet", subnet, "other"}, "-o vxnet.driver"},
		{[]string{"--internal", "--subnet", subnet, "other"}, "--internal"},
		{[]string{"-o", "color=blue", "--subnet", "10.72.9.0/24", "other"}, "-o color"},
		{[]string{"--subnet", "10.72.9.0/24", "--ipv6", "other"}, "--ipv6"},
	} {
		args := append([]string{"network", "create", "-d", "vxnet", "--ipam-driver", "vxnet"}, bad.args...)
		out, err := d["h3"].tryDocker(args...)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("docker %s: %v %q, want an error naming %s", strings.Join(args, " "), err, out, bad.want)
		}
	}
	if out, err := d["h3"].tryDocker("network", "create", "-d", "vxnet", "--subnet", "10.72.9.0/24", "other"); err == nil || !strings.Contains(out, "--ipam-driver vxnet") {
		t.Errorf("a network on Docker's default IPAM: %v %q, want an error asking for --ipam-driver vxnet", err, out)
	}

	// A server on h1, clients on h2.
	d["h1"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "api", "--network-alias", "backend", testImage,
		"sh", "-c", "mkdir -p /www && echo hello-from-api > /www/index.html && exec httpd -f -p 80 -h /www")
	testutil.WaitFor(t, "the endpoint of api on every host", 15*time.Second, func() bool {
		e, ok := c.endpoints("h2")["api"]
		return ok && e.Host == "h1"
	})
	apiAddr := addrOf(t, c.endpoints("h1")["api"])
	if !netip.MustParsePrefix(subnet).Contains(apiAddr) {
		t.Fatalf("api has %v, outside %s", apiAddr, subnet)
	}
	// Its aliases (--network-alias, its short ID) are learned once it runs.
	testutil.WaitFor(t, "api's alias backend in vxnet", 15*time.Second, func() bool {
		out, _ := c.tryCLI("h2", "endpoint", "ls")
		return strings.Contains(out, "backend")
	})
	fetch := "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 %s 80"
	probeOn := func(host, network, name string, script string) string {
		t.Helper()
		out, err := d[host].tryDocker("run", "--rm", "--network", network, "--name", name, testImage, "sh", "-c", script)
		if err != nil {
			t.Fatalf("on %s: %s: %v\n%s", host, script, err, out)
		}
		return out
	}
	probe := func(host, name string, script string) string { t.Helper(); return probeOn(host, "web", name, script) }
	out := probe("h2", "probe", "ping -c1 -W3 api && nslookup backend 127.0.0.11 && nslookup api.web 127.0.0.11 && "+strings.ReplaceAll(fetch, "%s", "api"))
	for _, want := range []string{"1 packets received", "hello-from-api", apiAddr.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("from h2 to api on h1: no %q in:\n%s", want, out)
		}
	}

	// Containers of two hosts that share an alias answer it together;
	// docker restart brings a container back on the network.
	d["h3"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "api2", "--network-alias", "backend", testImage, "sleep", "3600")
	testutil.WaitFor(t, "backend answered by api and api2", 20*time.Second, func() bool {
		out, _ := d["h2"].tryDocker("run", "--rm", "--network", "web", testImage, "nslookup", "backend", "127.0.0.11")
		return strings.Count(out, "Address: 10.72.0.") == 2
	})
	// --label vxnet.service=front: a vxnet service of containers on two
	// hosts; tasks.front answers with both.
	d["h1"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "f1", "--label", "vxnet.service=front", testImage, "sleep", "3600")
	d["h3"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "f2", "--label", "vxnet.service=front", testImage, "sleep", "3600")
	testutil.WaitFor(t, "tasks.front answered with f1 and f2", 20*time.Second, func() bool {
		out, _ := d["h2"].tryDocker("run", "--rm", "--network", "web", testImage, "nslookup", "tasks.front", "127.0.0.11")
		return strings.Count(out, "Address: 10.72.0.") == 2
	})
	d["h1"].docker("rm", "-f", "f1")
	d["h3"].docker("rm", "-f", "f2")
	d["h3"].docker("restart", "-t", "1", "api2")
	if out := probe("h1", "probe0", "ping -c1 -W3 api2"); !strings.Contains(out, "1 packets received") {
		t.Errorf("h1 to api2 after docker restart:\n%s", out)
	}
	d["h3"].docker("rm", "-f", "api2")

	// docker run -p: published on the container's host, reached from
	// another host; withdrawn with the container, free for the next.
	for i := 0; i < 2; i++ {
		d["h1"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "-p", "8080:80", "--name", "pub", testImage,
			"sh", "-c", "mkdir -p /www && echo hello-published > /www/index.html && exec httpd -f -p 80 -h /www")
		testutil.WaitFor(t, "h1's published port 8080 from h2", 20*time.Second, func() bool {
			out, err := l.tryIn(c.hosts["h2"].ns, "curl", "-s", "-m", "2", "http://"+c.hosts["h1"].addr+":8080/")
			return err == nil && strings.Contains(out, "hello-published")
		})
		d["h1"].docker("rm", "-f", "pub")
	}

	// dig in a container's namespace: vxnet answers at 127.0.0.11, over
	// UDP and TCP, for names of other hosts' containers.
	d["h2"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "client", testImage, "sleep", "3600")
	for _, tcp := range []string{"+notcp", "+tcp"} {
		got, err := c.inContainerNet("h2", d["h2"], "client", "dig", "+short", "+time=2", "+tries=2", tcp, "@127.0.0.11", "api.web")
		if err != nil || strings.TrimSpace(got) != apiAddr.String() {
			t.Errorf("dig %s api.web in client on h2: %v %q, want %v", tcp, err, got, apiAddr)
		}
	}

	// A vxnet-native endpoint on h3 and Docker's containers, one network.
	nat := l.netns("native")
	c.cli("h3", "endpoint", "create", "--network", "web", "--name", "native", "--netns", nat)
	l.waitPing("native to api", nat, apiAddr.String())
	if got := c.dig(nat, "backend.web", false); got != apiAddr.String() {
		t.Errorf("dig backend.web in the native endpoint: %q, want %v", got, apiAddr)
	}
	out = probe("h1", "probe1", "ping -c1 -W3 native && ping -c1 -W3 client")
	if strings.Count(out, "1 packets received") != 2 {
		t.Errorf("from h1 to native (h3) and client (h2):\n%s", out)
	}

	// An internal network: containers of two hosts resolve and reach
	// each other; nothing else gets through their hosts (the gateway
	// there takes their DNS only).
	for _, h := range []string{"h1", "h2"} {
		d[h].docker("network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--internal", "--subnet", "10.72.2.0/24", "back")
	}
	d["h1"].docker("run", "-d", "--stop-timeout", "1", "--network", "back", "--name", "db", testImage, "sleep", "3600")
	out = probeOn("h2", "back", "probe3", "ping -c1 -W3 db && nslookup db.back 127.0.0.11; ping -c1 -W2 198.18.72.2 || echo host-closed")
	for _, want := range []string{"1 packets received", "host-closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("internal network, h2 to db on h1 and to its own host: no %q in:\n%s", want, out)
		}
	}
	d["h1"].docker("rm", "-f", "db")

	// Connect and disconnect a running container (Docker connects none
	// of "--network none"'s: it starts on a network of its own).
	d["h3"].docker("network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--subnet", "10.72.1.0/24", "side")
	d["h3"].docker("run", "-d", "--stop-timeout", "1", "--network", "side", "--name", "late", testImage, "sleep", "3600")
	d["h3"].docker("network", "connect", "--alias", "extra", "web", "late")
	testutil.WaitFor(t, "late's endpoint with its alias extra", 15*time.Second, func() bool {
		out, _ := c.tryCLI("h1", "endpoint", "ls")
		return strings.Contains(out, "late") && strings.Contains(out, "extra")
	})
	if out := probe("h1", "probe2", "ping -c1 -W3 extra"); !strings.Contains(out, "1 packets received") {
		t.Errorf("h1 to late on h3 by its alias:\n%s", out)
	}
	d["h3"].docker("network", "disconnect", "web", "late")
	testutil.WaitFor(t, "late's endpoint on web gone, the one on side kept", 15*time.Second, func() bool {
		onWeb, onSide := false, false
		for _, e := range c.endpointList("h1") {
			onWeb = onWeb || e.Name == "late" && e.Network == "web"
			onSide = onSide || e.Name == "late" && e.Network == "side"
		}
		return !onWeb && onSide
	})

	// The agent of h1 killed with api running: once back, api keeps its
	// address and device, and h2 reaches it again.
	c.kill9("h1")
	c.start("h1", c.hosts["h2"].addr+":7946")
	if got := strings.TrimSpace(d["h1"].docker("exec", "api", "ip", "-o", "-4", "addr", "show", "dev", "eth0")); !strings.Contains(got, apiAddr.String()+"/24") {
		t.Errorf("api's eth0 after the agent's restart: %q, want %v", got, apiAddr)
	}
	testutil.WaitFor(t, "h2's client to reach api again", 30*time.Second, func() bool {
		out, err := d["h2"].tryDocker("exec", "client", "sh", "-c", strings.ReplaceAll(fetch, "%s", "api"))
		return err == nil && strings.Contains(out, "hello-from-api")
	})
	if e := c.endpoints("h1")["api"]; addrOf(t, e) != apiAddr {
		t.Errorf("api after the restart: %v, want %v", e.Addresses, apiAddr)
	}

	// dockerd of h2 restarted: its containers stop, their endpoints go;
	// the same names come back, not doubled. One with a restart policy
	// runs again on its own, on the network (dockerd starts it before its
	// API answers, which the plugin must not wait for).
	d["h2"].docker("run", "-d", "--stop-timeout", "1", "--restart", "always", "--network", "web", "--name", "keeper", testImage, "sleep", "3600")
	testutil.WaitFor(t, "keeper's endpoint", 15*time.Second, func() bool { _, ok := c.endpoints("h1")["keeper"]; return ok })
	d["h2"].stop()
	testutil.WaitFor(t, "client's endpoint gone with h2's dockerd", 30*time.Second, func() bool {
		_, ok := c.endpoints("h1")["client"]
		return !ok
	})
	d["h2"].restart()
	testutil.WaitFor(t, "keeper to run again, on web", 60*time.Second, func() bool {
		out, err := d["h2"].tryDocker("inspect", "-f", "{{.State.Running}}", "keeper")
		_, listed := c.endpoints("h1")["keeper"]
		return err == nil && strings.TrimSpace(out) == "true" && listed
	})
	if out, err := d["h2"].tryDocker("exec", "keeper", "ping", "-c1", "-W5", "api"); err != nil {
		t.Errorf("keeper, started again, does not reach api: %v\n%s", err, out)
	}
	d["h2"].docker("rm", "-f", "keeper")
	d["h2"].docker("rm", "-f", "client")
	d["h2"].docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "client", testImage, "sleep", "3600")
	testutil.WaitFor(t, "client back once", 15*time.Second, func() bool {
		n := 0
		for _, e := range c.endpointList("h1") {
			if e.Name == "client" {
				n++
			}
		}
		return n == 1
	})
	// ...and killed: its containers die unseen; the endpoints go when
	// Docker comes back (it cleans up, and the plugin collects).
	d["h2"].kill9()
	d["h2"].restart()
	testutil.WaitFor(t, "client's endpoint gone after h2's dockerd was killed", 60*time.Second, func() bool {
		_, ok := c.endpoints("h1")["client"]
		return !ok
	})

	// A container killed.
	d["h1"].docker("run", "-d", "--network", "web", "--name", "short", testImage, "sleep", "3600")
	testutil.WaitFor(t, "short's endpoint", 15*time.Second, func() bool { _, ok := c.endpoints("h3")["short"]; return ok })
	d["h1"].docker("kill", "short")
	testutil.WaitFor(t, "short's endpoint gone", 15*time.Second, func() bool { _, ok := c.endpoints("h3")["short"]; return !ok })
	d["h1"].docker("rm", "short")

	// Everything removed: Docker's containers first, then their names are
	// gone from vxnet's DNS as the native endpoint sees it.
	d["h1"].docker("rm", "-f", "api")
	d["h3"].docker("rm", "-f", "late")
	testutil.WaitFor(t, "api's names gone from DNS", 15*time.Second, func() bool {
		return c.dig(nat, "api.web", false) == "" && c.dig(nat, "backend.web", false) == ""
	})
	c.cli("h3", "endpoint", "rm", "--network", "web", "native")
	for _, h := range []string{"h1", "h2", "h3"} {
		d[h].docker("network", "rm", "web")
	}
	d["h3"].docker("network", "rm", "side")
	for _, h := range []string{"h1", "h2"} {
		d[h].docker("network", "rm", "back")
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		testutil.WaitFor(t, h+" to list no endpoint", 15*time.Second, func() bool { return len(c.endpointList(h)) == 0 })
		testutil.WaitFor(t, h+" to hold no lease or reservation", 15*time.Second, func() bool {
			leases, reserved := c.hostLeases(h)
			n := 0
			for _, net := range []string{"web", "side", "back"} {
				n += len(leases[net]) + len(reserved[net])
			}
			return n == 0
		})
		if devs := c.handedOverDevices(h); len(devs) > 0 {
			t.Errorf("%s still has devices made for Docker: %v", h, devs)
		}
	}
}

// TestDocker_addresses: Docker's address flags on vxnet's IPAM
// (--ip-range, --gateway, --aux-address, docker run --ip), and its errors
// as Docker shows them: an address in use and an exhausted pool name the
// flag or say why, and leave no endpoint, lease or device behind; nor does
// a container removed while the agent is away.
func TestDocker_addresses(t *testing.T) {
	l := newLab(t)
	c := l.dockerCluster("198.18.73", nil, "h1")
	d := c.dockerd("h1")
	d.docker("network", "create", "-d", "vxnet", "--ipam-driver", "vxnet", "--subnet", "10.73.0.0/24", "--ip-range", "10.73.0.128/30",
		"--gateway", "10.73.0.254", "--aux-address", "router=10.73.0.129", "web")
	testutil.WaitFor(t, "the vxnet network web", 15*time.Second, func() bool { _, ok := c.networks("h1")["web"]; return ok })
	var ns []struct{ Gateway, IPRange string }
	if err := json.Unmarshal([]byte(c.cli("h1", "network", "inspect", "web")), &ns); err != nil || len(ns) != 1 || ns[0].Gateway != "10.73.0.254" || ns[0].IPRange != "10.73.0.128/30" {
		t.Errorf("network web: %+v %v, want gateway 10.73.0.254 and range 10.73.0.128/30", ns, err)
	}
	addrIn := func(name string) netip.Addr {
		t.Helper()
		e, ok := c.endpoints("h1")[name]
		if !ok {
			t.Fatalf("no endpoint %s", name)
		}
		return addrOf(t, e)
	}
	// --ip first (an address of the range: vxnet keeps static addresses
	// of a global network in its range), then the next free ones: the
	// range 10.73.0.128/30 less the aux address .129 and .130 is .128
	// and .131 (vxnet hands out a range's every address).
	d.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--ip", "10.73.0.130", "--name", "fixed", testImage, "sleep", "3600")
	if a := addrIn("fixed"); a != netip.MustParseAddr("10.73.0.130") {
		t.Errorf("docker run --ip 10.73.0.130 got %v", a)
	}
	taken := map[netip.Addr]string{netip.MustParseAddr("10.73.0.130"): "fixed"}
	for _, name := range []string{"a1", "a2"} {
		d.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", name, testImage, "sleep", "3600")
		a := addrIn(name)
		if !netip.MustParsePrefix("10.73.0.128/30").Contains(a) || a == netip.MustParseAddr("10.73.0.129") || taken[a] != "" {
			t.Errorf("%s got %v: want a free address of 10.73.0.128/30 but the aux address .129 (taken: %v)", name, a, taken)
		}
		taken[a] = name
	}
	before := len(c.endpointList("h1"))
	// The range is full: Docker says so, and nothing is half made.
	if out, err := d.tryDocker("run", "-d", "--network", "web", "--name", "a4", testImage, "sleep", "3600"); err == nil || !strings.Contains(out, "no free address") {
		t.Errorf("a fourth container in a range of three: %v %q, want no free address", err, out)
	}
	d.tryDocker("rm", "-f", "a4")
	// An address in use, and one outside the range: refused, naming --ip.
	for _, ip := range []string{"10.73.0.130", "10.73.0.50"} {
		if out, err := d.tryDocker("run", "-d", "--network", "web", "--ip", ip, "--name", "twice", testImage, "sleep", "3600"); err == nil || !strings.Contains(out, "--ip") || !strings.Contains(out, ip) {
			t.Errorf("docker run --ip %s: %v %q, want an error naming --ip and the address", ip, err, out)
		}
		d.tryDocker("rm", "-f", "twice")
	}
	if after := len(c.endpointList("h1")); after != before {
		t.Errorf("%d endpoints after three refused containers, want %d", after, before)
	}
	leases, reserved := c.hostLeases("h1")
	if len(leases["web"]) != 3 || len(reserved["web"]) != 3 {
		t.Errorf("leases %v, reserved %v of web: want the 3 containers' addresses", leases["web"], reserved["web"])
	}
	// The agent away while Docker removes a container (Docker retries its
	// plugin, then goes on without it): back, the agent removes the
	// endpoint whose container is gone, the device Docker moved back to
	// the host, and the reservation Docker forgot.
	c.kill9("h1")
	d.docker("rm", "-f", "a1")
	c.start("h1", "")
	testutil.WaitFor(t, "a1's endpoint and reservation gone", 30*time.Second, func() bool {
		_, ok := c.endpoints("h1")["a1"]
		leases, reserved := c.hostLeases("h1")
		return !ok && len(leases["web"]) == 2 && len(reserved["web"]) == 2
	})
	if devs := c.handedOverDevices("h1"); len(devs) > 0 {
		t.Errorf("devices made for Docker left after the agent came back: %v", devs)
	}
	for _, name := range []string{"a2", "fixed"} {
		d.docker("rm", "-f", name)
	}
	d.docker("network", "rm", "web")
	testutil.WaitFor(t, "no endpoint, lease or reservation left", 15*time.Second, func() bool {
		leases, reserved := c.hostLeases("h1")
		return len(c.endpointList("h1")) == 0 && len(leases["web"]) == 0 && len(reserved["web"]) == 0
	})
	if devs := c.handedOverDevices("h1"); len(devs) > 0 {
		t.Errorf("devices made for Docker left: %v", devs)
	}
}

// TestDocker_managedPlugin: vxnet as Docker's managed plugin (docker
// plugin create from the directory scripts/docker-plugin.sh makes): the
// agent runs in the plugin's container, sees the host at /host, and
// serves the same driver: a network, a container's device, its name in
// vxnet's DNS through the gateway, the CLI on the agent's API socket.
func TestDocker_managedPlugin(t *testing.T) {
	l := newLab(t)
	c := l.dockerCluster("198.18.74", nil, "h1")
	d := c.dockerd("h1")
	c.stop("h1") // the agent runs in the plugin instead
	dir := filepath.Join(l.dir, "plugin")
	l.run("../scripts/docker-plugin.sh", vxnetBin, dir)
	h := c.hosts["h1"]
	api := filepath.Join(l.dir, "mp.sock")
	d.docker("plugin", "create", "vxnet", dir)
	d.docker("plugin", "set", "vxnet", "args=--advertise-addr "+h.addr+" --name h1 --profile fast --dns-upstream none"+
		" --docker-host unix:///host"+h.mnt.docker+" --data-dir /host"+filepath.Join(l.dir, "mp-data")+" --api-socket /host"+api)
	d.docker("plugin", "enable", "vxnet")
	t.Cleanup(func() { d.tryDocker("plugin", "disable", "-f", "vxnet") })
	d.docker("network", "create", "-d", "vxnet:latest", "--ipam-driver", "vxnet:latest", "--subnet", "10.74.0.0/24", "web")
	d.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "srv", testImage, "sleep", "3600")
	out, err := d.tryDocker("run", "--rm", "--network", "web", testImage, "sh", "-c", "ping -c1 -W3 srv && nslookup srv.web 127.0.0.11")
	if err != nil || !strings.Contains(out, "1 packets received") || strings.Count(out, "Address: 10.74.0.") != 1 {
		t.Errorf("a container to srv, by name and by vxnet's name srv.web: %v\n%s", err, out)
	}
	eps, err := exec.Command(vxnetBin, "--socket", api, "endpoint", "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(eps), "srv") {
		t.Errorf("vxnet endpoint ls on the plugin's API socket: %v\n%s", err, eps)
	}
	d.docker("rm", "-f", "srv")
	d.docker("network", "rm", "web")
	d.docker("plugin", "disable", "vxnet")
	if devs := c.handedOverDevices("h1"); len(devs) > 0 {
		t.Errorf("devices made for Docker left: %v", devs)
	}
}
