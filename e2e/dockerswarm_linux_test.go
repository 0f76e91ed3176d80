package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// swarmGossipPort is vxnet's gossip port in a swarm: Docker's own is 7946.
const swarmGossipPort = "7950"

// TestDocker_swarm: two hosts in a Docker swarm (a manager and a worker),
// vxnet as a managed plugin of scope global on each. A swarm-scoped,
// --attachable network on vxnet: a network with options no host could
// make is refused by the manager (its log names the option, and a
// container cannot use it); docker run
// containers on both hosts reach each other by name; a service's tasks,
// spread over both hosts, are found by tasks.NAME and reached. The
// invariants: every address is held once in the cluster, and vxnet's IPAM
// leases none (the swarm's manager hands them out); after the service
// and containers go, no endpoint, lease or device is left on any host.
func TestDocker_swarm(t *testing.T) {
	l := newLab(t)
	names := []string{"h1", "h2"}
	c := l.dockerCluster("198.18.76", nil, names...)
	ds := map[string]*dockerd{}
	for _, n := range names {
		ds[n] = c.dockerd(n)
		c.stop(n) // the agent runs in the plugin instead
	}
	dir := filepath.Join(l.dir, "plugin")
	l.run("../scripts/docker-plugin.sh", vxnetBin, dir)
	for i, n := range names {
		d, h := ds[n], c.hosts[n]
		h.data = filepath.Join(l.dir, n+"-swarm-data")
		args := "args=--advertise-addr " + h.addr + " --name " + n + " --docker-scope global --gossip-port " + swarmGossipPort +
			" --profile fast --dns-upstream none --docker-host unix:///host" + h.mnt.docker +
			" --data-dir /host" + h.data + " --api-socket /host" + h.sock
		if i > 0 {
			args += " --join " + c.hosts["h1"].addr + ":" + swarmGossipPort
		}
		d.docker("plugin", "create", "vxnet", dir)
		d.docker("plugin", "set", "vxnet", args)
		d.docker("plugin", "enable", "vxnet")
		t.Cleanup(func() { d.tryDocker("plugin", "disable", "-f", "vxnet") })
	}
	mgr, wkr := ds["h1"], ds["h2"]
	// Docker's data path off vxnet's VXLAN port.
	mgr.docker("swarm", "init", "--advertise-addr", c.hosts["h1"].addr, "--data-path-port", "4790")
	t.Cleanup(func() { mgr.tryDocker("swarm", "leave", "--force") })
	token := strings.TrimSpace(mgr.docker("swarm", "join-token", "-q", "worker"))
	wkr.docker("swarm", "join", "--advertise-addr", c.hosts["h2"].addr, "--token", token, c.hosts["h1"].addr+":2377")
	t.Cleanup(func() { wkr.tryDocker("swarm", "leave", "--force") })

	create := []string{"network", "create", "-d", "vxnet:latest", "--ipam-driver", "vxnet:latest", "--subnet", "10.76.0.0/24", "--attachable"}
	// The manager stores a network before it allocates it, so a refusal
	// shows when the network is used, and in the manager's log.
	mgr.docker(append(create, "-o", "colour=red", "bad")...)
	if out, err := mgr.tryDocker("run", "--rm", "--network", "bad", testImage, "true"); err == nil {
		t.Errorf("a container on a network the plugin refused: %s", out)
	}
	if log := mgr.logText(); !strings.Contains(log, "-o colour: vxnet knows no such option") {
		t.Errorf("the manager's log does not name the option")
	}
	mgr.docker("network", "rm", "bad")
	mgr.docker(append(create, "-o", "vxnet.driver=overlay", "-o", "com.docker.network.driver.mtu=1400", "web")...)

	mgr.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "a1", testImage, "sleep", "3600")
	wkr.docker("run", "-d", "--stop-timeout", "1", "--network", "web", "--name", "a2", testImage, "sleep", "3600")
	if out, err := wkr.tryDocker("exec", "a2", "sh", "-c", "ping -c1 -W3 a1 && nslookup a1.web 127.0.0.11"); err != nil ||
		!strings.Contains(out, "1 packets received") || !strings.Contains(out, "Address: 10.76.0.") {
		t.Errorf("a2 (worker) to a1 (manager) by name, and by vxnet's name: %v\n%s", err, out)
	}
	// The network's options reach every node.
	if out, err := wkr.tryDocker("exec", "a2", "cat", "/sys/class/net/eth0/mtu"); err != nil || strings.TrimSpace(out) != "1400" {
		t.Errorf("a2's MTU: %v %q, want the network's 1400", err, out)
	}

	mgr.docker("service", "create", "--detach", "--name", "s1", "--network", "web", "--endpoint-mode", "dnsrr",
		"--replicas", "2", "--replicas-max-per-node", "1", "--stop-grace-period", "1s", testImage, "sleep", "3600")
	runningTasks(mgr, 2)
	reachTasks := func(n int) {
		t.Helper()
		var tasks string
		testutil.WaitFor(t, fmt.Sprintf("tasks.s1 to name %d tasks", n), time.Minute, func() bool {
			tasks, _ = wkr.tryDocker("exec", "a2", "nslookup", "tasks.s1", "127.0.0.11")
			return strings.Count(tasks, "Address: 10.76.0.") == n
		})
		for _, line := range strings.Split(tasks, "\n") {
			if ip, ok := strings.CutPrefix(strings.TrimSpace(line), "Address: "); ok && strings.HasPrefix(ip, "10.76.0.") {
				if out, err := wkr.tryDocker("exec", "a2", "ping", "-c1", "-W3", ip); err != nil {
					t.Errorf("a2 to task %s: %v\n%s", ip, err, out)
				}
			}
		}
	}
	// Every address once in the cluster, every host agreeing, none of
	// them vxnet's lease.
	addressedOnce := func(n int) {
		t.Helper()
		var eps []swarmEndpoint
		testutil.WaitFor(t, fmt.Sprintf("both hosts to list %d endpoints on web", n), time.Minute, func() bool {
			var agree bool
			eps, agree = swarmEndpoints(t, c, names)
			return agree && len(eps) == n
		})
		seen := map[string]string{}
		for _, e := range eps {
			for _, a := range e.Addresses {
				if other, dup := seen[a]; dup {
					t.Errorf("address %s held by %s and %s", a, other, e.Name)
				}
				seen[a] = e.Name
			}
		}
		for _, h := range names {
			if leases, _ := c.hostLeases(h); len(leases["web"]) > 0 {
				t.Errorf("%s: vxnet's IPAM leases %v on a swarm network", h, leases["web"])
			}
		}
	}
	reachTasks(2)
	addressedOnce(4) // a1, a2, two tasks

	// The manager's dockerd restarted, and its plugin with it: the
	// leader asks the new plugin again for what it handed out; new tasks
	// get addresses no endpoint holds.
	mgr.restart()
	runningTasks(mgr, 2)
	mgr.docker("service", "update", "--detach", "--replicas-max-per-node", "2", "--replicas", "4", "s1")
	runningTasks(mgr, 4)
	reachTasks(4)
	addressedOnce(5) // a2, four tasks (a1 stopped with its dockerd)

	mgr.docker("service", "rm", "s1")
	mgr.tryDocker("rm", "-f", "a1")
	wkr.docker("rm", "-f", "a2")
	testutil.WaitFor(t, "every endpoint on web to go", time.Minute, func() bool {
		eps, agree := swarmEndpoints(t, c, names)
		return agree && len(eps) == 0
	})
	testutil.WaitFor(t, "docker network rm web", time.Minute, func() bool {
		_, err := mgr.tryDocker("network", "rm", "web")
		return err == nil
	})
	for _, n := range names {
		if devs := c.handedOverDevices(n); len(devs) > 0 {
			t.Errorf("%s: devices made for Docker left: %v", n, devs)
		}
	}
}

// runningTasks waits for service s1 to run n tasks.
func runningTasks(mgr *dockerd, n int) {
	mgr.l.t.Helper()
	testutil.WaitFor(mgr.l.t, fmt.Sprintf("service s1 to run %d tasks", n), 2*time.Minute, func() bool {
		out, _ := mgr.tryDocker("service", "ps", "-f", "desired-state=running", "--format", "{{.CurrentState}}", "s1")
		return strings.Count(out, "Running") == n
	})
}

type swarmEndpoint struct {
	Name, Host string
	Addresses  []string
}

// swarmEndpoints lists the endpoints on network web as the first host
// sees them, and whether every host lists the same.
func swarmEndpoints(t *testing.T, c *cluster, hosts []string) ([]swarmEndpoint, bool) {
	t.Helper()
	var first []swarmEndpoint
	var firstKey string
	agree := true
	for i, h := range hosts {
		out := c.cli(h, "endpoint", "ls", "--network", "web", "--format", "json")
		var eps []swarmEndpoint
		if err := json.Unmarshal([]byte(out), &eps); err != nil {
			t.Fatalf("endpoint ls on %s: %v\n%s", h, err, out)
		}
		var keys []string
		for _, e := range eps {
			for _, a := range e.Addresses {
				if _, err := netip.ParsePrefix(a); err != nil {
					t.Errorf("endpoint %s: address %q", e.Name, a)
				}
			}
			keys = append(keys, e.Name+"@"+e.Host+"="+strings.Join(e.Addresses, ","))
		}
		sort.Strings(keys)
		if i == 0 {
			first, firstKey = eps, strings.Join(keys, " ")
		} else if strings.Join(keys, " ") != firstKey {
			agree = false
		}
	}
	return first, agree
}
