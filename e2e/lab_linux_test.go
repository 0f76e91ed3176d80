package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/vxnet/vxnet/internal/testutil"
)

// vxnetBin and cniBin are the binaries under test, built once by TestMain.
var vxnetBin, cniBin string

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "vxnet-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		vxnetBin = filepath.Join(dir, "vxnet")
		cniBin = filepath.Join(dir, "vxnet-cni")
		for bin, pkg := range map[string]string{vxnetBin: "cmd/vxnet", cniBin: "cmd/vxnet-cni"} {
			out, err := exec.Command("go", "build", "-o", bin, "github.com/vxnet/vxnet/"+pkg).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
				os.Exit(1)
			}
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test needs root (network namespaces, TUN, veth); run `sudo make test`")
	}
	for _, tool := range []string{"ip", "bridge", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps` (installs iproute2 and iputils-ping)", tool)
		}
	}
}

var nsSeq atomic.Int64

// lab is one test's set of namespaces and processes, removed at cleanup.
type lab struct {
	t      *testing.T
	prefix string
	dir    string
	// beforeAgents, when set, runs once a cluster's underlay bridge (in
	// namespace br) is up and before its agents start.
	beforeAgents func(br string)
}

func newLab(t *testing.T) *lab {
	needRoot(t)
	l := &lab{
		t:      t,
		prefix: fmt.Sprintf("vxe%d-%d", os.Getpid()%100000, nsSeq.Add(1)),
		dir:    t.TempDir(),
	}
	return l
}

// netns creates a namespace named prefix-name with lo up and removes it at
// cleanup.
func (l *lab) netns(name string) string {
	ns := l.prefix + "-" + name
	l.run("ip", "netns", "add", ns)
	l.t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns).Run()
		os.RemoveAll("/etc/netns/" + ns) // the resolv.conf an agent wrote
	})
	l.run("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// run runs a command and fails the test on error.
func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command inside ns.
func (l *lab) in(ns string, args ...string) string {
	l.t.Helper()
	return l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// tryIn runs a command inside ns and returns its output and error.
func (l *lab) tryIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// startIn starts a server (args) inside ns, stopped at cleanup; its output
// is logged if the test failed.
func (l *lab) startIn(ns string, args ...string) {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	var log testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if l.t.Failed() {
			l.t.Logf("%s in %s:\n%s", args[0], ns, log.String())
		}
	})
}

// veth joins namespaces a and b with a veth pair named ifA/ifB, addresses
// given in CIDR form ("" for none), both ends up.
func (l *lab) veth(a, ifA, addrA, b, ifB, addrB string) {
	l.run("ip", "-n", a, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b)
	for _, e := range []struct{ ns, dev, addr string }{{a, ifA, addrA}, {b, ifB, addrB}} {
		if e.addr != "" {
			l.run("ip", "-n", e.ns, "addr", "add", e.addr, "dev", e.dev, "nodad")
		}
		l.run("ip", "-n", e.ns, "link", "set", e.dev, "up")
	}
}

// agent is a running `vxnet dataplane`.
type agent struct {
	sock string
	log  *bytes.Buffer
}

// startDataplane runs vxnet dataplane inside hostNS with the given config
// and waits until its stats socket answers.
func (l *lab) startDataplane(hostNS, name string, config any) *agent {
	l.t.Helper()
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		l.t.Fatal(err)
	}
	cfgPath := filepath.Join(l.dir, name+".json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		l.t.Fatal(err)
	}
	a := &agent{sock: filepath.Join(l.dir, name+".sock"), log: new(bytes.Buffer)}
	cmd := exec.Command("ip", "netns", "exec", hostNS, vxnetBin, "dataplane", "--config", cfgPath,
		"--stats-socket", a.sock, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	l.t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if l.t.Failed() {
			l.t.Logf("vxnet %s log:\n%s", name, a.log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := a.statsErr(); err == nil {
			return a
		}
		select {
		case err := <-exited:
			l.t.Fatalf("vxnet %s exited before it was ready: %v\n%s", name, err, a.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("vxnet %s not ready after 20s\n%s", name, a.log)
		}
	}
}

type stats struct {
	PortRxPackets, PortTxPackets, UnderlayRxPackets, UnderlayTxPackets uint64
	Flooded, NeighborReplies, Coalesced, ICMPTooBig                    uint64
	Drops                                                              map[string]uint64
}

func (a *agent) statsErr() (stats, error) {
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
	}}, Timeout: 2 * time.Second}
	var s stats
	resp, err := c.Get("http://vxnet/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

func (a *agent) stats(t *testing.T) stats {
	t.Helper()
	s, err := a.statsErr()
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

// waitPing pings dst from ns until a reply comes, within 15 s (a first
// packet may go while a neighbour is resolved, or a row still travels).
func (l *lab) waitPing(what, ns, dst string) {
	l.t.Helper()
	testutil.WaitFor(l.t, what, 15*time.Second, func() bool {
		_, err := l.tryIn(ns, "ping", "-c", "1", "-W", "1", dst)
		return err == nil
	})
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testutil.WaitFor

// inNetns runs fn on a thread switched into ns; sockets fn creates belong
// to ns and keep working from any goroutine afterwards.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // the thread is unusable; never return it to the runtime
		}
	}()
	fn()
}
