package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

var joinCommand = regexp.MustCompile(`vxnet cluster join --token (\S+) (\S+)`)

// waitJoinService waits until host's agent serves its join service: it
// starts it after its API, which startWith waits for.
func (c *cluster) waitJoinService(host string) {
	c.l.t.Helper()
	testutil.WaitFor(c.l.t, host+"'s join service", 20*time.Second, func() bool {
		b, _ := os.ReadFile(c.hosts[host].log)
		return strings.Contains(string(b), "join service listening")
	})
}

// TestCluster_initJoinTokens builds a 3-host cluster with vxnet cluster
// init and vxnet cluster join --token, no key typed anywhere: the first
// host's settings come from init, the second is admitted by the first,
// the third by the second (a joined host admits hosts too). Every agent
// runs from its config.json, and no agent's command line holds the gossip
// key. Then the token is rotated: the old one is refused, naming the
// revocation, and the new one admits; a token pinning another certificate
// is refused before anything is sent.
func TestCluster_initJoinTokens(t *testing.T) {
	l := newLab(t)
	c := l.clusterHosts("198.18.86", nil, false, "j1", "j2", "j3")
	dir := func(name string) string { return filepath.Join(l.dir, name+"-etc") }
	vx := func(host string, args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", c.hosts[host].ns, vxnetBin}, args...)...).CombinedOutput()
		return string(out), err
	}

	out, err := vx("j1", "cluster", "init", "--advertise-addr", c.hosts["j1"].addr, "--config-dir", dir("j1"), "--no-start")
	if err != nil {
		t.Fatalf("cluster init: %v\n%s", err, out)
	}
	m := joinCommand.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cluster init printed no join command:\n%s", out)
	}
	token, addr := m[1], m[2]
	if addr != c.hosts["j1"].addr+":7947" {
		t.Errorf("join command names %s, want j1's join service %s:7947", addr, c.hosts["j1"].addr)
	}
	for _, f := range []string{"gossip.key", "join-key.pem", "config.json"} {
		fi, err := os.Stat(filepath.Join(dir("j1"), f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	key, err := os.ReadFile(filepath.Join(dir("j1"), "gossip.key"))
	if err != nil || len(strings.TrimSpace(string(key))) != 44 {
		t.Fatalf("gossip key: %v %q", err, key)
	}
	if out, err := vx("j1", "cluster", "init", "--config-dir", dir("j1"), "--no-start"); err == nil || !strings.Contains(out, "set up already") {
		t.Errorf("a second init over the same settings: %v\n%s", err, out)
	}

	c.startWith("j1", "", "--config", filepath.Join(dir("j1"), "config.json"))
	c.waitJoinService("j1")
	if _, err := os.Stat(filepath.Join(dir("j1"), "join-token-seed.json")); !os.IsNotExist(err) {
		t.Errorf("the token seed is still there after the agent started: %v", err)
	}
	var ts []struct{ ID, State string }
	if err := json.Unmarshal([]byte(c.cli("j1", "cluster", "token", "ls", "--format", "json")), &ts); err != nil || len(ts) != 1 || ts[0].State != "active" {
		t.Fatalf("tokens after init: %+v, %v", ts, err)
	}
	if !strings.Contains(token, "-"+ts[0].ID+".") {
		t.Errorf("token %s is not the listed %s", token, ts[0].ID)
	}

	// j2 through j1; j3 through j2. No --advertise-addr: each takes the
	// address it reaches the member from.
	for _, h := range []struct{ name, via string }{{"j2", addr}, {"j3", c.hosts["j2"].addr}} {
		if out, err := vx(h.name, "cluster", "join", "--token", token, "--config-dir", dir(h.name), "--no-start", h.via); err != nil {
			t.Fatalf("cluster join on %s via %s: %v\n%s", h.name, h.via, err, out)
		}
		var conf map[string]any
		b, _ := os.ReadFile(filepath.Join(dir(h.name), "config.json"))
		if err := json.Unmarshal(b, &conf); err != nil || conf["advertise-addr"] != c.hosts[h.name].addr || conf["join"] == nil {
			t.Fatalf("%s's config.json: %v\n%s", h.name, err, b)
		}
		got, _ := os.ReadFile(filepath.Join(dir(h.name), "gossip.key"))
		if strings.TrimSpace(string(got)) != strings.TrimSpace(string(key)) {
			t.Errorf("%s got another gossip key", h.name)
		}
		c.startWith(h.name, "", "--config", filepath.Join(dir(h.name), "config.json"))
		c.waitJoinService(h.name)
	}
	c.waitMembers([]string{"j1", "j2", "j3"}, 3)
	for name, h := range c.hosts {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", h.cmd.Process.Pid))
		if strings.Contains(string(cmdline), strings.TrimSpace(string(key))) {
			t.Errorf("%s's command line holds the gossip key", name)
		}
	}

	// Rotation: the old token is refused, the new one admits.
	rot := c.cli("j3", "cluster", "token", "rotate")
	m = joinCommand.FindStringSubmatch(rot)
	if m == nil || !strings.Contains(rot, "revoked: "+ts[0].ID) {
		t.Fatalf("token rotate:\n%s", rot)
	}
	newToken := m[1]
	out, err = vx("j3", "cluster", "join", "--token", token, "--config-dir", dir("j3-old"), "--no-start", addr)
	if err == nil || !strings.Contains(out, "revoked") {
		t.Errorf("join with the revoked token: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir("j3-old"), "config.json")); err == nil {
		t.Errorf("a refused join wrote settings")
	}
	if out, err := vx("j3", "cluster", "join", "--token", newToken, "--config-dir", dir("j3-new"), "--no-start", addr); err != nil {
		t.Errorf("join with the new token: %v\n%s", err, out)
	}
	// Another certificate's PIN: refused by the joiner itself.
	parts := strings.SplitN(newToken, "-", 3)
	other := parts[0] + "-" + strings.Repeat("a", len(parts[1])) + "-" + parts[2]
	if out, err := vx("j3", "cluster", "join", "--token", other, "--config-dir", dir("j3-pin"), "--no-start", addr); err == nil || !strings.Contains(out, "not the one the token names") {
		t.Errorf("join with another PIN: %v\n%s", err, out)
	}
	if out := c.cli("j1", "cluster", "token", "ls"); !strings.Contains(out, "revoked") || strings.Count(out, "active") != 1 {
		t.Errorf("token ls after rotate:\n%s", out)
	}

	// A gossip key rotation while every host watches the others: no host
	// ever sees fewer than 3 members. Then every key file holds the new
	// key alone, and an agent restarted from its files is back in.
	// Traffic across hosts throughout: a container on j1 pings one on j3.
	c.cli("j1", "network", "create", "--subnet", "10.86.0.0/24", "rot")
	ca, cb := l.netns("ca"), l.netns("cb")
	c.cli("j1", "endpoint", "create", "--network", "rot", "--name", "ca", "--netns", ca)
	c.cli("j3", "endpoint", "create", "--network", "rot", "--name", "cb", "--netns", cb)
	testutil.WaitFor(t, "j1 to see cb", 20*time.Second, func() bool { _, ok := c.endpoints("j1")["cb"]; return ok })
	cbAddr := addrOf(t, c.endpoints("j1")["cb"]).String()
	l.waitPing("ca to cb", ca, cbAddr)
	ping := exec.Command("ip", "netns", "exec", ca, "ping", "-i", "0.05", "-W", "1", cbAddr)
	var pingOut testutil.SyncBuffer
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ping.Process.Kill(); ping.Wait() })
	replies := func() int { return strings.Count(pingOut.String(), "bytes from") }
	testutil.WaitFor(t, "pings ca -> cb", 10*time.Second, func() bool { return replies() > 3 })
	stop, lost := make(chan struct{}), make(chan string, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, name := range []string{"j1", "j2", "j3"} {
				out, err := c.tryCLI(name, "cluster", "members", "--format", "json")
				var ms []map[string]any
				if err != nil || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
					select {
					case lost <- fmt.Sprintf("%s saw %d members (%v): %s", name, len(ms), err, out):
					default:
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	rotOut := c.cli("j2", "cluster", "rotate-gossip-key")
	t.Logf("rotate-gossip-key: %s", rotOut)
	close(stop)
	<-watched
	select {
	case msg := <-lost:
		t.Errorf("a member was lost during the gossip key rotation: %s", msg)
	default:
	}
	seen := replies()
	testutil.WaitFor(t, "pings ca -> cb after the rotation", 10*time.Second, func() bool { return replies() > seen+3 })
	if !strings.Contains(rotOut, "j1, j2, j3") {
		t.Errorf("rotate-gossip-key: %s", rotOut)
	}
	var newKey string
	for _, name := range []string{"j1", "j2", "j3"} {
		b, err := os.ReadFile(filepath.Join(dir(name), "gossip.key"))
		got := strings.TrimSpace(string(b))
		if err != nil || strings.Contains(got, "\n") || got == strings.TrimSpace(string(key)) || newKey != "" && got != newKey {
			t.Errorf("%s's key file after the rotation: %v %q (old %q, others %q)", name, err, got, key, newKey)
		}
		newKey = got
	}
	// j1, the first host, has no member to join in its settings: it
	// remembers the members it saw and joins them when it comes back.
	h := c.hosts["j1"]
	remembered, _ := os.ReadFile(filepath.Join(h.data, "members.json"))
	if !strings.Contains(string(remembered), c.hosts["j2"].addr+":7946") || !strings.Contains(string(remembered), c.hosts["j3"].addr+":7946") {
		t.Errorf("j1 remembers the members %q", remembered)
	}
	c.stop("j1")
	c.startWith("j1", "", "--config", filepath.Join(dir("j1"), "config.json"))
	c.waitMembers([]string{"j1", "j2", "j3"}, 3)
	if b, _ := os.ReadFile(h.log); !strings.Contains(string(b), "joining the members this host last saw") || !strings.Contains(string(b), "joined the cluster") {
		t.Errorf("j1 did not join the members it remembered:\n%s", b)
	}
	// j2's settings name j1 alone (the member of the moment it joined):
	// with j1 down too, j2 comes back through the others it last saw.
	c.stop("j1")
	c.stop("j2")
	c.startWith("j2", "", "--config", filepath.Join(dir("j2"), "config.json"))
	c.waitMembers([]string{"j2", "j3"}, 2)
	if b, _ := os.ReadFile(c.hosts["j2"].log); !strings.Contains(string(b), "joining the members this host last saw") || !strings.Contains(string(b), c.hosts["j3"].addr+":7946") {
		t.Errorf("j2 did not join the members it remembered beside its settings':\n%s", b)
	}
}

// TestCluster_initJoinEtcd: a cluster set up with cluster init --store etcd
// keeps its tables in etcd from the first start; a host that joins with a
// token learns the store from the cluster, and both read the first token
// from etcd.
func TestCluster_initJoinEtcd(t *testing.T) {
	l := newLab(t)
	eps, _ := l.etcdOnUnderlay("198.18.87")
	c := l.clusterHosts("198.18.87", nil, false, "n1", "n2")
	l.beforeAgents = nil
	dir := func(name string) string { return filepath.Join(l.dir, name+"-etc") }
	vx := func(host string, args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", c.hosts[host].ns, vxnetBin}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := vx("n1", "cluster", "init", "--advertise-addr", c.hosts["n1"].addr, "--config-dir", dir("n1"), "--no-start",
		"--store", "etcd", "--etcd-endpoints", eps, "--etcd-prefix", "/vxinit")
	if err != nil {
		t.Fatalf("cluster init: %v\n%s", err, out)
	}
	m := joinCommand.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "in etcd ("+eps+"), under /vxinit") {
		t.Fatalf("cluster init printed no join command, or not where the tables are:\n%s", out)
	}
	c.startWith("n1", "", "--config", filepath.Join(dir("n1"), "config.json"))
	c.waitJoinService("n1")
	if out, err := vx("n2", "cluster", "join", "--token", m[1], "--config-dir", dir("n2"), "--no-start", m[2]); err != nil {
		t.Fatalf("cluster join: %v\n%s", err, out)
	}
	c.startWith("n2", "", "--config", filepath.Join(dir("n2"), "config.json"))
	c.waitMembers([]string{"n1", "n2"}, 2)
	for _, h := range []string{"n1", "n2"} {
		testutil.WaitFor(t, h+" to have etcd up", 20*time.Second, func() bool { return c.store(h).Up })
		if st := c.store(h); st.Backend != "etcd" || st.Prefix != "/vxinit" {
			t.Errorf("cluster store on %s: %+v, want etcd under /vxinit", h, st)
		}
		var ts []struct{ ID, State string }
		if err := json.Unmarshal([]byte(c.cli(h, "cluster", "token", "ls", "--format", "json")), &ts); err != nil || len(ts) != 1 || ts[0].State != "active" {
			t.Errorf("tokens on %s: %+v, %v; want init's, active", h, ts, err)
		}
	}
}
