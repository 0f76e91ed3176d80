package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// cniLab is a CNI setup for the tests: the plugin under its type name in
// a plugin directory, configuration lists in a directory of their own,
// and cnitool (libcni) to drive them, as runtimes do.
type cniLab struct {
	t       *testing.T
	binDir  string
	confDir string
	cnitool string
	hostNS  string // the network namespace cnitool runs in ("": this one)
}

// goTool finds a tool make deps installs with go install (module@version
// says which): on PATH, or in GOPATH's bin; the test skips without it.
func goTool(t *testing.T, name, module string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is missing: make deps installs it (go install %s)", name, module)
	}
	return p
}

// cniLab finds cnitool and sets up the directories.
func (l *lab) cniLab() *cniLab {
	t := l.t
	t.Helper()
	tool := goTool(t, "cnitool", "github.com/containernetworking/cni/cnitool@v1.3.0")
	c := &cniLab{t: t, binDir: filepath.Join(l.dir, "cni-bin"), confDir: filepath.Join(l.dir, "cni-conf"), cnitool: tool}
	for _, d := range []string{c.binDir, c.confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(cniBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.binDir, "vxnet"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// conf writes configuration list name: one vxnet plugin with the given
// fields, of version v.
func (c *cniLab) conf(name, v string, plugin map[string]any) {
	c.t.Helper()
	plugin["type"] = "vxnet"
	b, _ := json.Marshal(map[string]any{"cniVersion": v, "name": name, "plugins": []any{plugin}})
	if err := os.WriteFile(filepath.Join(c.confDir, name+".conflist"), b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// run runs cnitool VERB NAME NETNS (netns a name under /run/netns),
// with CNI_ARGS args.
func (c *cniLab) run(verb, name, netns, args string) (string, error) {
	return c.runCap(verb, name, netns, args, "")
}

// runCap is run with the runtime's capability arguments (JSON).
func (c *cniLab) runCap(verb, name, netns, args, capArgs string) (string, error) {
	argv := []string{verb, name}
	if netns != "" {
		argv = append(argv, "/run/netns/"+netns)
	} else {
		argv = append(argv, "/nonexistent") // gc and status take none, but cnitool wants one
	}
	cmd := exec.Command(c.cnitool, argv...)
	if c.hostNS != "" { // as a runtime of that host: chained plugins' host-side work lands there
		cmd = exec.Command("nsenter", append([]string{"--net=/run/netns/" + c.hostNS, c.cnitool}, argv...)...)
	}
	cmd.Env = append(os.Environ(), "CNI_PATH="+c.binDir, "NETCONFPATH="+c.confDir)
	if args != "" {
		cmd.Env = append(cmd.Env, "CNI_ARGS="+args)
	}
	if capArgs != "" {
		cmd.Env = append(cmd.Env, "CAP_ARGS="+capArgs)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cniLab) must(verb, name, netns, args string) string {
	c.t.Helper()
	out, err := c.run(verb, name, netns, args)
	if err != nil {
		c.t.Fatalf("cnitool %s %s %s: %v\n%s", verb, name, netns, err, out)
	}
	return out
}

// cniResult is the part of a CNI result the tests read.
type cniResult struct {
	CNIVersion string `json:"cniVersion"`
	Interfaces []struct {
		Name, Mac, Sandbox string
	}
	IPs []struct {
		Address, Gateway string
		Version          string // 0.3.x
	}
	Routes []struct{ Dst, GW string }
	DNS    struct {
		Nameservers, Search []string
	}
}

// TestCNI_conformance drives vxnet-cni through libcni (cnitool) against a
// live two-host cluster, for every spec version runtimes send: ADD gives a
// result of that version (interface with MAC and sandbox, address in the
// subnet with its gateway, default route, vxnet's resolver) and a
// container that reaches an endpoint of the other host by name; CHECK
// (0.4.0 and later) passes, and fails once the endpoint is gone; DEL
// removes the endpoint and is idempotent, also after the namespace is
// gone; GC (1.1.0) removes what the runtime no longer lists; STATUS says
// whether the agent answers; configurations the plugin cannot serve are
// CNI errors naming the field; the pod's name names the endpoint.
func TestCNI_conformance(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.81", "h1", "h2")
	cn := l.cniLab()
	sock := c.hosts["h1"].sock
	// A vxnet-native endpoint on the other host, to reach.
	c.cli("h1", "network", "create", "--subnet", "10.81.0.0/24", "web")
	far := l.netns("far")
	testutil.WaitFor(t, "h2 to know network web", 10*time.Second, func() bool {
		_, err := c.tryCLI("h2", "network", "inspect", "web")
		return err == nil
	})
	c.cli("h2", "endpoint", "create", "--network", "web", "--name", "far", "--netns", far)

	for i, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			name := fmt.Sprintf("web%d", i)
			cn.conf(name, v, map[string]any{"network": "web", "subnet": "10.81.0.0/24", "socket": sock})
			ns := l.netns(fmt.Sprintf("cni%d", i))
			out := cn.must("add", name, ns, fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=pod%d", i))
			var res cniResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("ADD result: %v\n%s", err, out)
			}
			if res.CNIVersion != v || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Mac == "" ||
				res.Interfaces[0].Sandbox != "/run/netns/"+ns {
				t.Errorf("ADD result %+v", res)
			}
			if len(res.IPs) != 1 || !netip.MustParsePrefix("10.81.0.0/24").Contains(netip.MustParsePrefix(res.IPs[0].Address).Addr()) ||
				res.IPs[0].Gateway != "10.81.0.1" {
				t.Errorf("ADD ips %+v", res.IPs)
			}
			if len(res.Routes) != 1 || res.Routes[0].Dst != "0.0.0.0/0" || len(res.DNS.Nameservers) != 1 || res.DNS.Nameservers[0] != "127.0.0.11" {
				t.Errorf("ADD routes %+v, dns %+v", res.Routes, res.DNS)
			}
			epName := fmt.Sprintf("pod%d-shop", i)
			if _, ok := c.endpoints("h2")[epName]; !ok {
				testutil.WaitFor(t, "h2 to list "+epName, 10*time.Second, func() bool { _, ok := c.endpoints("h2")[epName]; return ok })
			}
			// The runtime writes the result's DNS into the container's
			// resolv.conf (cnitool does not): ask 127.0.0.11 directly.
			farAddr := c.dig(ns, "far", false)
			if farAddr != addrOf(t, c.endpoints("h1")["far"]).String() {
				t.Errorf("far from the container's resolver: %q", farAddr)
			}
			l.in(ns, "ping", "-c", "1", "-W", "5", addrOf(t, c.endpoints("h1")["far"]).String())
			if v != "0.3.1" {
				cn.must("check", name, ns, "")
			}
			cn.must("del", name, ns, "")
			if _, ok := c.endpoints("h1")[epName]; ok {
				t.Errorf("endpoint %s left after DEL", epName)
			}
			cn.must("del", name, ns, "") // idempotent
			if v != "0.3.1" {
				if out, err := cn.run("check", name, ns, ""); err == nil {
					t.Errorf("CHECK after DEL passed: %s", out)
				}
			}
		})
	}

	cn.conf("web11", "1.1.0", map[string]any{"network": "web", "socket": sock})
	t.Run("DEL after the namespace is gone", func(t *testing.T) {
		ns := l.netns("gone")
		cn.must("add", "web11", ns, "")
		l.run("ip", "netns", "del", ns)
		cn.must("del", "web11", ns, "")
		for name, e := range c.endpoints("h1") {
			if e.Netns == "/run/netns/"+ns {
				t.Errorf("endpoint %s of the deleted namespace left", name)
			}
		}
	})
	t.Run("GC and STATUS", func(t *testing.T) {
		for _, n := range []string{"gc1", "gc2"} {
			cn.must("add", "web11", l.netns(n), "")
		}
		cn.must("status", "web11", "", "")
		cn.must("gc", "web11", "", "") // cnitool lists no valid attachment: all go
		for name, e := range c.endpoints("h1") {
			if strings.HasPrefix(e.Netns, "/run/netns/gc") {
				t.Errorf("endpoint %s left after GC", name)
			}
		}
		if _, ok := c.endpoints("h1")["far"]; !ok {
			t.Error("GC removed vxnet's own endpoint far")
		}
		cn.conf("down", "1.1.0", map[string]any{"network": "web", "socket": filepath.Join(l.dir, "none.sock")})
		if out, err := cn.run("status", "down", "", ""); err == nil || !strings.Contains(out, "does not answer") {
			t.Errorf("STATUS with no agent: %v %s", err, out)
		}
	})
	t.Run("capabilities: portMappings, ips, aliases", func(t *testing.T) {
		cn.conf("caps", "1.1.0", map[string]any{"network": "web", "socket": sock,
			"capabilities": map[string]bool{"portMappings": true, "ips": true, "aliases": true}})
		ns := l.netns("caps")
		caps := `{"portMappings":[{"hostPort":8089,"containerPort":80,"protocol":"tcp"}],"ips":["10.81.0.77/24"],"aliases":{"caps":["shop-api"]}}`
		out, err := cn.runCap("add", "caps", ns, "K8S_POD_NAME=capped", caps)
		if err != nil || !strings.Contains(out, "10.81.0.77/24") {
			t.Fatalf("ADD with capabilities: %v\n%s", err, out)
		}
		l.tryIn(ns, "sh", "-c", "mkdir -p /tmp/www-caps && echo hello-caps > /tmp/www-caps/index.html")
		srv := exec.Command("ip", "netns", "exec", ns, busyboxBin, "httpd", "-f", "-p", "80", "-h", "/tmp/www-caps")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		testutil.WaitFor(t, "the published port to answer from another host", 15*time.Second, func() bool {
			out, err := l.tryIn(c.hosts["h2"].ns, "curl", "-s", "-m", "2", "http://"+c.hosts["h1"].addr+":8089/")
			return err == nil && strings.Contains(out, "hello-caps")
		})
		if got := c.dig(far, "shop-api", false); got != "10.81.0.77" {
			t.Errorf("the alias from another host's container: %q", got)
		}
		cn.must("del", "caps", ns, "K8S_POD_NAME=capped")
	})
	t.Run("errors name the field", func(t *testing.T) {
		for name, c2 := range map[string]struct {
			plugin map[string]any
			says   string
		}{
			"badsubnet": {map[string]any{"network": "other", "subnet": "10.82.0.1/24", "socket": sock}, `subnet "10.82.0.1/24"`},
			"differ":    {map[string]any{"network": "web", "subnet": "10.83.0.0/24", "socket": sock}, `subnet "10.81.0.0/24"`},
			"driver":    {map[string]any{"network": "other", "driver": "bogus", "subnet": "10.84.0.0/24", "socket": sock}, "driver"},
			"noagent":   {map[string]any{"network": "web", "socket": filepath.Join(l.dir, "none.sock")}, "is `vxnet agent` running?"},
		} {
			cn.conf(name, "1.1.0", c2.plugin)
			ns := l.netns("e" + name)
			if out, err := cn.run("add", name, ns, ""); err == nil || !strings.Contains(out, c2.says) {
				t.Errorf("%s: ADD %v, want an error saying %q:\n%s", name, err, c2.says, out)
			}
		}
	})
	// Nothing left but far.
	if eps := c.endpoints("h1"); len(eps) != 1 {
		t.Errorf("endpoints left: %v", eps)
	}
}

// TestCNI_chained: the standard plugins chained after vxnet's (tuning,
// firewall) get its result and do their part; DEL goes through all of
// them. (bandwidth shapes a veth's host side, which vxnet's devices do not
// have.)
func TestCNI_chained(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.84", "h1")
	cn := l.cniLab()
	b, err := os.ReadDir("/usr/lib/cni")
	if err != nil || len(b) == 0 {
		t.Skip("the standard CNI plugins are missing: make deps installs them (containernetworking-plugins)")
	}
	for _, p := range []string{"tuning", "firewall"} {
		data, err := os.ReadFile(filepath.Join("/usr/lib/cni", p))
		if err != nil {
			t.Skipf("/usr/lib/cni/%s: %v", p, err)
		}
		os.WriteFile(filepath.Join(cn.binDir, p), data, 0o755)
	}
	cn.hostNS = c.hosts["h1"].ns
	list, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "chain", "plugins": []any{
		map[string]any{"type": "vxnet", "network": "chain", "subnet": "10.84.0.0/24", "socket": c.hosts["h1"].sock},
		map[string]any{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.accept_local": "1"}},
		map[string]any{"type": "firewall", "backend": "iptables"},
	}})
	if err := os.WriteFile(filepath.Join(cn.confDir, "chain.conflist"), list, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := l.netns("chained")
	out := cn.must("add", "chain", ns, "")
	if !strings.Contains(out, "10.84.0.") {
		t.Errorf("ADD result: %s", out)
	}
	if v := strings.TrimSpace(l.in(ns, "cat", "/proc/sys/net/ipv4/conf/eth0/accept_local")); v != "1" {
		t.Errorf("tuning's sysctl on vxnet's device: %q", v)
	}
	if rules := l.in(c.hosts["h1"].ns, "iptables", "-S", "CNI-FORWARD"); !strings.Contains(rules, "CNI-ADMIN") {
		t.Errorf("firewall's chains on the host:\n%s", rules)
	}
	cn.must("check", "chain", ns, "")
	cn.must("del", "chain", ns, "")
	if eps := c.endpoints("h1"); len(eps) != 0 {
		t.Errorf("endpoints after DEL: %v", eps)
	}
}
