package e2e

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxnet/vxnet/internal/testutil"
)

// TestAgent_waitsForAddressInUse: an agent that finds its gossip and VXLAN
// ports held (as by the agent it replaces, still shutting down) says so
// and waits; it gives up after --bind-timeout with an error naming the
// address, and otherwise starts once the ports are free.
func TestAgent_waitsForAddressInUse(t *testing.T) {
	l := newLab(t)
	ns := l.netns("h1")
	const addr = "198.18.50.1"
	l.veth(ns, "u0", addr+"/24", l.netns("peer"), "u0", "198.18.50.2/24")
	var gossipHolder, vxlanHolder net.PacketConn
	inNetns(t, ns, func() {
		var err1, err2 error
		gossipHolder, err1 = net.ListenPacket("udp", addr+":7946")
		vxlanHolder, err2 = net.ListenPacket("udp", addr+":4789")
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
	})
	defer gossipHolder.Close()
	defer vxlanHolder.Close()
	sock := filepath.Join(l.dir, "h1.sock")
	agentCmd := func(extra ...string) *exec.Cmd {
		args := append([]string{"netns", "exec", ns, vxnetBin, "agent", "--name", "h1", "--advertise-addr", addr,
			"--data-dir", filepath.Join(l.dir, "data"), "--api-socket", sock, "--docker-plugin", "off", "--profile", "fast", "--dns-upstream", "none"}, extra...)
		return exec.Command("ip", args...)
	}

	// Held for longer than --bind-timeout: a clear error, exit 1.
	start := time.Now()
	out, err := agentCmd("--bind-timeout", "1s").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("agent with its gossip port held: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"gossip: address in use", "still in use after 1s", addr + ":7946", "is another vxnet agent running?"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("gave up after %v, before --bind-timeout", d)
	}

	// Freed while it waits: it starts.
	var logs testutil.SyncBuffer
	cmd := agentCmd("--log-level", "debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	waitLog := func(what, text string) {
		t.Helper()
		testutil.WaitFor(t, what, 20*time.Second, func() bool {
			select {
			case err := <-exited:
				t.Fatalf("agent exited: %v", err)
			default:
			}
			return strings.Contains(logs.String(), text)
		})
	}
	waitLog("the agent to wait for the gossip port", "gossip: address in use")
	gossipHolder.Close()
	waitLog("the agent to wait for the VXLAN port", "vxlan: address in use")
	vxlanHolder.Close()
	waitLog("the agent to bind the VXLAN port", "vxlan: bound once the address was free")
	testutil.WaitFor(t, "the agent's API", 20*time.Second, func() bool {
		return exec.Command(vxnetBin, "--socket", sock, "cluster", "members").Run() == nil
	})
}

// TestAgent_dnsWaitsForItsAddress: an endpoint whose namespace has
// 127.0.0.11:53 held (by the resolver of an agent still exiting) is made
// at once; DNS there starts once the address is free.
func TestAgent_dnsWaitsForItsAddress(t *testing.T) {
	l := newLab(t)
	c := l.cluster("198.18.53", "h1")
	c.cli("h1", "network", "create", "--subnet", "10.53.0.0/24", "web")
	ns := l.netns("c1")
	var holder net.PacketConn
	inNetns(t, ns, func() {
		var err error
		if holder, err = net.ListenPacket("udp", "127.0.0.11:53"); err != nil {
			t.Fatal(err)
		}
	})
	defer holder.Close()
	c.cli("h1", "endpoint", "create", "--network", "web", "--name", "app", "--netns", ns)
	logPath := c.hosts["h1"].log
	testutil.WaitFor(t, "the agent to wait for the DNS address", 20*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "dns: address in use")
	})
	if got := c.dig(ns, "app", false); got == "10.53.0.2" {
		t.Fatalf("answered while the holder has the address: %q", got)
	}
	holder.Close()
	testutil.WaitFor(t, "DNS in the namespace once its address is free", 20*time.Second, func() bool {
		return c.dig(ns, "app", false) == "10.53.0.2"
	})
}
