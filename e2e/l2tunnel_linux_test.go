package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestL2Tunnel_threeHosts: an l2tunnel network on h1 and h2 with h3 as
// its policy host. The policy denies TCP port 5201 of b, which lives on
// the same host as a; a reaching b's 5202 but not its 5201 proves that
// even same-host traffic went through h3, whose metrics count the drop.
func TestL2Tunnel_threeHosts(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.44", "h1", "h2", "h3")
	policyHost := c.hosts["h3"].addr
	c.cli("h1", "network", "create", "-d", "l2tunnel", "--subnet", "10.44.0.0/24",
		"-o", "policy-host="+policyHost, "-o", "policy-deny=10.44.0.20:5201/tcp", "tun")
	a, b, d := l.netns("a"), l.netns("b"), l.netns("d")
	c.cli("h1", "endpoint", "create", "--network", "tun", "--name", "a", "--netns", a)
	c.cli("h1", "endpoint", "create", "--network", "tun", "--name", "b", "--netns", b, "--ip", "10.44.0.20")
	testutil.WaitFor(t, "h2 to see the network", 10*time.Second, func() bool {
		return strings.Contains(c.cli("h2", "network", "ls"), "tun")
	})
	c.cli("h2", "endpoint", "create", "--network", "tun", "--name", "d", "--netns", d)

	l.waitPing("a to b on the same host, through h3", a, "10.44.0.20")
	l.waitPing("a to d on h2, by name (global discovery)", a, "d")
	l.waitPing("d to b by name", d, "b")
	l.waitPing("a to b by name, same host", a, "b")

	for _, port := range []string{"5201", "5202"} {
		l.startIn(b, "iperf3", "-s", "-p", port)
	}
	testutil.WaitFor(t, "iperf3 to listen in b", 10*time.Second, func() bool {
		out, _ := l.tryIn(b, "ss", "-Hltn")
		return strings.Contains(out, ":5201") && strings.Contains(out, ":5202")
	})
	if out, err := l.tryIn(a, "iperf3", "-c", "10.44.0.20", "-p", "5202", "-t", "1", "--connect-timeout", "5000"); err != nil {
		t.Errorf("allowed port 5202: %v\n%s", err, out)
	}
	if out, err := l.tryIn(a, "iperf3", "-c", "10.44.0.20", "-p", "5201", "-t", "1", "--connect-timeout", "2000"); err == nil {
		t.Errorf("denied port 5201 answered:\n%s", out)
	}
	h3 := c.hosts["h3"]
	metrics := l.in(h3.ns, "curl", "-sf", "http://"+h3.addr+":9464/metrics")
	if m := regexp.MustCompile(`vxnet_dataplane_drops_total\{reason="policy"\} ([1-9][0-9]*)`).FindStringSubmatch(metrics); m == nil {
		t.Errorf("the policy host counted no policy drop:\n%s", metrics)
	}

	// Bad options name the option.
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "policy-host is required"},
		{[]string{"-o", "policy-host=somewhere"}, `policy-host="somewhere"`},
		{[]string{"-o", "policy-host=" + policyHost, "-o", "policy-deny=10.44.0.20:http"}, `port "http"`},
	} {
		out, err := c.tryCLI("h1", append(append([]string{"network", "create", "-d", "l2tunnel"}, tc.opts...), "bad")...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("l2tunnel with %v: %v, want an error saying %q:\n%s", tc.opts, err, tc.want, out)
		}
	}
}
