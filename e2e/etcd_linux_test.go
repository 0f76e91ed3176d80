package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/etcdtest"
	"github.com/vxnet/vxnet/internal/testutil"
)

// etcdCluster is a lab whose agents keep the tables in a 3-member etcd
// cluster (Debian's etcd-server) running in the underlay bridge's
// namespace, at UNDERLAY.250, ports 2379, 2381 and 2383.
func (l *lab) etcdCluster(underlay string, names ...string) (*cluster, *etcdtest.Cluster) {
	l.t.Helper()
	c, ec, _ := l.clusterBesideEtcd(underlay, true, names...)
	return c, ec
}

// clusterBesideEtcd is a lab with etcd running as etcdCluster's does; its
// agents keep their tables in it when inEtcd, else in gossip. flags are
// the agent flags that use that etcd.
func (l *lab) clusterBesideEtcd(underlay string, inEtcd bool, names ...string) (*cluster, *etcdtest.Cluster, []string) {
	l.t.Helper()
	eps, ec := l.etcdOnUnderlay(underlay)
	defer func() { l.beforeAgents = nil }()
	flags := []string{"--store", "etcd", "--etcd-endpoints", eps, "--etcd-lease-ttl", "4s"}
	var extra []string
	if inEtcd {
		extra = flags
	}
	return l.clusterWith(underlay, extra, names...), *ec, flags
}

// etcdOnUnderlay has the next cluster made start etcd as etcdCluster's
// does, before its agents: etcd's client URLs, and the cluster once it
// runs. The caller resets l.beforeAgents once the cluster is made.
func (l *lab) etcdOnUnderlay(underlay string) (string, **etcdtest.Cluster) {
	l.t.Helper()
	etcdtest.Binary(l.t)
	host := underlay + ".250"
	eps := fmt.Sprintf("http://%s:2379,http://%s:2381,http://%s:2383", host, host, host)
	ec := new(*etcdtest.Cluster)
	l.beforeAgents = func(br string) {
		l.run("ip", "-n", br, "addr", "add", host+"/24", "dev", "br0")
		*ec = etcdtest.StartWith(l.t, etcdtest.Options{Netns: br, Host: host})
		if got := strings.Join((*ec).Endpoints(), ","); got != eps {
			l.t.Fatalf("etcd's endpoints %s, want %s", got, eps)
		}
	}
	return eps, ec
}

type storeJSON struct {
	Backend   string
	Up        bool
	Error     string
	Endpoints []string
	Prefix    string
	Revision  int64
}

func (c *cluster) store(host string) storeJSON {
	c.l.t.Helper()
	out := c.cli(host, "cluster", "store", "--format", "json")
	var st storeJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.l.t.Fatalf("cluster store: %v\n%s", err, out)
	}
	return st
}

// TestEtcd_labStoreDownAndBack: three hosts keeping their tables in etcd.
// Containers on every host reach each other by name; the rows are in
// etcd. With every etcd member down for 30 s the containers keep
// reaching each other, every host reports the store down, and a change
// fails with "unavailable", and an agent restarted meanwhile serves the
// tables it last read; once etcd is back a new container joins and
// every host agrees. A host killed with kill -9 has its rows go with its
// lease, and takes them back when it restarts. An agent started with the
// gossip store in this cluster says so and exits.
func TestEtcd_labStoreDownAndBack(t *testing.T) {
	l := newLab(t)
	c, ec := l.etcdCluster("198.18.61", "h1", "h2", "h3")
	hosts := []string{"h1", "h2", "h3"}
	c.cli("h1", "network", "create", "--subnet", "10.61.0.0/24", "web")
	ns := map[string]string{}
	for i, h := range hosts {
		name := fmt.Sprintf("c%d", i+1)
		c.waitNetwork(h, "web")
		ns[name] = l.netns(name)
		c.cli(h, "endpoint", "create", "--network", "web", "--name", name, "--netns", ns[name])
	}
	for _, from := range []string{"c1", "c2", "c3"} {
		for _, to := range []string{"c1", "c2", "c3"} {
			if from != to {
				l.waitPing(from+" to reach "+to+" by name", ns[from], to)
			}
		}
	}
	for _, h := range hosts {
		if st := c.store(h); st.Backend != "etcd" || !st.Up || st.Prefix != "/vxnet" || st.Revision == 0 {
			t.Errorf("%s: store %+v, want etcd, up, at /vxnet", h, st)
		}
	}
	var ms []struct{ Name, Store string }
	if out := c.cli("h2", "cluster", "members", "--format", "json"); json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
		t.Errorf("cluster members: %s", out)
	}
	for _, m := range ms {
		if m.Store != "etcd" {
			t.Errorf("cluster members shows %s keeping its tables in %q, want etcd", m.Name, m.Store)
		}
	}
	if out := c.cli("h2", "cluster", "members"); !strings.Contains(out, "tables in etcd") || !strings.Contains(out, ": up") {
		t.Errorf("cluster members does not say the etcd store is up:\n%s", out)
	}
	keys := l.run("ip", "netns", "exec", l.prefix+"-br", "etcdctl", "--endpoints", strings.Join(ec.Endpoints(), ","),
		"get", "--prefix", "--keys-only", "/vxnet/rows/")
	for _, want := range []string{"/vxnet/rows/networks/web%2Fh1/h1", "/vxnet/rows/endpoints/web%2Fc3/h3"} {
		if !strings.Contains(keys, want) {
			t.Errorf("etcd holds no %s; its keys:\n%s", want, keys)
		}
	}

	// Every member down for 30 s.
	for i := range 3 {
		ec.Kill(i)
	}
	testutil.WaitFor(t, "every host to report the store down", 30*time.Second, func() bool {
		for _, h := range hosts {
			if c.store(h).Up {
				return false
			}
		}
		return true
	})
	out, err := c.tryCLI("h2", "network", "create", "--subnet", "10.62.0.0/24", "during")
	if err == nil || !strings.Contains(out, "unavailable") {
		t.Errorf("network create with etcd down: %v\n%s\nwant it refused as unavailable", err, out)
	}
	c3 := addrOf(t, c.endpoints("h1")["c3"]).String()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		for _, p := range [][2]string{{"c1", c3}, {"c2", "c1"}, {"c3", "c2"}} {
			if out, err := l.tryIn(ns[p[0]], "ping", "-c", "1", "-W", "2", p[1]); err != nil {
				t.Fatalf("with etcd down, %s cannot reach %s: %v\n%s", p[0], p[1], err, out)
			}
		}
	}
	// h1's agent restarted meanwhile serves the tables it last read.
	c.stop("h1")
	c.start("h1", c.hosts["h2"].addr+":7946")
	l.waitPing("c1 to reach c3 by name through h1's agent, restarted with etcd down", ns["c1"], "c3")
	for i := range 3 {
		ec.Start(i)
	}
	ec.WaitHealthy()
	testutil.WaitFor(t, "every host to report the store up again", 60*time.Second, func() bool {
		for _, h := range hosts {
			if !c.store(h).Up {
				return false
			}
		}
		return true
	})
	ns["c4"] = l.netns("c4")
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "c4", "--netns", ns["c4"])
	l.waitPing("c1 to reach c4, made after etcd came back", ns["c1"], "c4")
	c.agree(hosts...)
	for _, h := range hosts {
		c.checkAddresses(h)
	}

	// kill -9: h3's rows go with its lease (4 s), not before.
	c.kill9("h3")
	testutil.WaitFor(t, "c3 to leave h1's tables once h3's lease expired", 30*time.Second, func() bool {
		_, listed := c.endpoints("h1")["c3"]
		return !listed
	})

	// An agent with the gossip store in this cluster refuses to run.
	h := c.hosts["h3"]
	argv := append(h.enter(), vxnetBin, "agent", "--name", "h3x", "--advertise-addr", h.addr, "--data-dir", filepath.Join(l.dir, "h3x-data"),
		"--api-socket", filepath.Join(l.dir, "h3x.sock"), "--docker-plugin", "off", "--profile", "fast", "--dns-upstream", "none",
		"--join", c.hosts["h1"].addr+":7946")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wrong, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(wrong), "keeps the tables in etcd") || !strings.Contains(string(wrong), "--store etcd") {
		t.Errorf("a gossip agent joining an etcd cluster: %v\n%s\nwant it to exit naming the cluster's store", err, wrong)
	}
	os.RemoveAll(filepath.Join(l.dir, "h3x-data"))

	// Back with its state: its endpoint comes back and is reachable.
	c.start("h3", c.hosts["h1"].addr+":7946")
	c.waitMembers(hosts, 3)
	l.waitPing("c1 to reach c3 after h3 restarted", ns["c1"], "c3")
	c.agree(hosts...)
}

// TestEtcd_moveFromGossip: a gossip cluster's tables exported, the agents
// stopped, the dump imported into etcd, the agents started with the etcd
// store: the networks, services and endpoints are all there, containers
// reach each other by name and by the service's VIP, and importing again
// writes nothing.
func TestEtcd_moveFromGossip(t *testing.T) {
	l := newLab(t)
	c, ec, flags := l.clusterBesideEtcd("198.18.62", false, "h1", "h2")
	c.cli("h1", "network", "create", "--subnet", "10.63.0.0/24", "web")
	ns := map[string]string{}
	for i, h := range []string{"h1", "h2"} {
		name := fmt.Sprintf("m%d", i+1)
		c.waitNetwork(h, "web")
		ns[name] = l.netns(name)
		c.cli(h, "endpoint", "create", "--network", "web", "--name", name, "--netns", ns[name], "--service", "api")
	}
	c.cli("h1", "service", "create", "--network", "web", "--vip", "10.63.0.200", "api")
	l.waitPing("m1 to reach m2", ns["m1"], "m2")
	c.agree("h1", "h2")
	dump := filepath.Join(l.dir, "tables.json")
	c.cli("h2", "store", "export", "--file", dump)
	before := c.networks("h2")["web"]
	addrs := map[string][]string{}
	for name, e := range c.endpoints("h2") {
		addrs[name] = e.Addresses
	}

	c.stop("h1")
	c.stop("h2")
	imp := l.in(l.prefix+"-br", vxnetBin, "store", "import", dump, "--etcd-endpoints", strings.Join(ec.Endpoints(), ","))
	if !strings.Contains(imp, " written,") || strings.HasPrefix(imp, "0 rows written") {
		t.Fatalf("import wrote nothing:\n%s", imp)
	}
	c.startWith("h1", "", flags...)
	c.startWith("h2", c.hosts["h1"].addr+":7946", flags...)
	c.waitMembers([]string{"h1", "h2"}, 2)
	c.agree("h1", "h2")
	if after := c.networks("h1")["web"]; after.Subnet != before.Subnet || after.VNI != before.VNI || after.Creator != before.Creator {
		t.Errorf("network web after the move %+v, before %+v", after, before)
	}
	l.waitPing("m1 to reach m2 by name on the etcd store", ns["m1"], "m2")
	// Every block stayed with its host: no container changed address,
	// and the next ones come from claims in etcd.
	for name, e := range c.endpoints("h1") {
		if fmt.Sprint(e.Addresses) != fmt.Sprint(addrs[name]) {
			t.Errorf("%s moved from %v to %v", name, addrs[name], e.Addresses)
		}
	}
	ns["m3"] = l.netns("m3")
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "m3", "--netns", ns["m3"])
	l.waitPing("m1 to reach m3, addressed from a claim", ns["m1"], "m3")
	c.agree("h1", "h2")
	for _, h := range []string{"h1", "h2"} {
		c.checkAddresses(h)
	}
	l.waitPing("m2 to reach the service's VIP", ns["m2"], "10.63.0.200")
	if st := c.store("h2"); st.Backend != "etcd" || !st.Up {
		t.Errorf("store after the move: %+v", st)
	}
	again := l.in(l.prefix+"-br", vxnetBin, "store", "import", dump, "--etcd-endpoints", strings.Join(ec.Endpoints(), ","))
	if !strings.HasPrefix(again, "0 rows written") {
		t.Errorf("importing again wrote rows:\n%s", again)
	}
}

// TestEtcd_memberKilledDuringChurn: three hosts on etcd create and remove
// endpoints concurrently while one etcd member is killed and restarted.
// Every create that succeeded is on every host, every remove that
// succeeded is gone everywhere, a create that failed left nothing behind,
// and no address is held twice.
func TestEtcd_memberKilledDuringChurn(t *testing.T) {
	l := newLab(t)
	c, ec := l.etcdCluster("198.18.63", "h1", "h2", "h3")
	hosts := []string{"h1", "h2", "h3"}
	c.cli("h1", "network", "create", "--subnet", "10.64.0.0/24", "churn")
	for _, h := range hosts {
		c.waitNetwork(h, "churn")
	}
	type result struct {
		name    string
		created bool
		removed bool
		why     string // a failed create's message
	}
	results := make(chan result, 32)
	var wg sync.WaitGroup
	for _, h := range hosts {
		for k := range 4 {
			name := fmt.Sprintf("%s-e%d", h, k)
			ns := l.netns(name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := result{name: name}
				out, err := c.tryCLI(h, "endpoint", "create", "--network", "churn", "--name", name, "--netns", ns)
				r.created, r.why = err == nil, strings.TrimSpace(out)
				if r.created && k == 0 {
					_, err := c.tryCLI(h, "endpoint", "rm", "--network", "churn", name)
					r.removed = err == nil
				}
				results <- r
			}()
		}
	}
	ec.Kill(0)
	ec.Start(0)
	wg.Wait()
	close(results)
	want := map[string]bool{} // name → listed
	for r := range results {
		if !r.created {
			t.Logf("%s: create failed during the failover (allowed; it must leave nothing): %s", r.name, r.why)
		}
		want[r.name] = r.created && !r.removed
	}
	c.agree(hosts...)
	for _, h := range hosts {
		eps := c.endpoints(h)
		for name, listed := range want {
			if _, ok := eps[name]; ok != listed {
				t.Errorf("%s lists %s: %v, want %v", h, name, ok, listed)
			}
		}
		c.checkAddresses(h)
	}
}
