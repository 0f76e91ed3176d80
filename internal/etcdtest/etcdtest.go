// Package etcdtest runs a real etcd cluster for tests: Debian's etcd-server
// (the etcd binary on PATH), each member a process with its own data
// directory, listening on loopback ports only. Tests that need it skip
// with a clear message when the binary is missing.
package etcdtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	opts    Options
	members []*member
}

// Options place a cluster somewhere other than the test's own loopback.
type Options struct {
	// Members is the cluster's size. Default 3.
	Members int
	// Netns, when set, is a network namespace (ip netns) the members run
	// in, listening on Host: an end-to-end lab's underlay, say.
	Netns string
	// Host is the address members listen on. Default 127.0.0.1 (with a
	// free port each); in Netns, ports from 2379 up.
	Host string
}

type member struct {
	name      string
	args      []string
	clientURL string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	logPath   string
}

// Binary returns the etcd binary, or skips t.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (make deps installs Debian's etcd-server): skipping the etcd backend's tests")
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts an n-member cluster on loopback and waits until every
// member answers; it is stopped (kill -9) and its directories removed when
// t ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, Options{Members: n})
}

// StartWith starts a cluster as opts say; see Start.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Members == 0 {
		opts.Members = 3
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	n := opts.Members
	c := &Cluster{t: t, bin: Binary(t), opts: opts}
	dir := t.TempDir()
	port := func(i int) int {
		if opts.Netns != "" {
			return 2379 + i
		}
		return freePort(t)
	}
	token := fmt.Sprintf("vxnet-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	var initial []string
	peers := make([]string, n)
	for i := range n {
		peers[i] = fmt.Sprintf("http://%s:%d", opts.Host, port(2*i+1))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), clientURL: fmt.Sprintf("http://%s:%d", opts.Host, port(2*i)),
			logPath: filepath.Join(dir, fmt.Sprintf("m%d.log", i))}
		m.args = []string{"--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token, "--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-level", "warn"}
		c.members = append(c.members, m)
	}
	t.Cleanup(c.killAll)
	for i := range c.members {
		c.Start(i)
	}
	c.WaitHealthy()
	return c
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL)
	}
	return out
}

// Start starts member i again (after Kill or Stop), with its data.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	argv := append([]string{c.bin}, m.args...)
	if c.opts.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", c.opts.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("starting etcd member %s: %v", m.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	m.cmd, m.done = cmd, done
}

// Kill stops member i with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func (c *Cluster) killAll() {
	for i := range c.members {
		c.Kill(i)
	}
}

// Healthy reports whether member i answers its health check.
func (c *Cluster) Healthy(i int) bool {
	url := c.members[i].clientURL + "/health"
	var body []byte
	if c.opts.Netns != "" {
		out, err := exec.Command("ip", "netns", "exec", c.opts.Netns, "curl", "-s", "-m", "1", url).Output()
		if err != nil {
			return false
		}
		body = out
	} else {
		cl := http.Client{Timeout: time.Second}
		resp, err := cl.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 256))
	}
	return strings.Contains(string(body), `"health":"true"`)
}

// WaitHealthy waits until every running member is healthy (a leader is
// elected), or fails t after 30 s with the members' logs.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i, m := range c.members {
		m.mu.Lock()
		running := m.cmd != nil
		m.mu.Unlock()
		for running && !c.Healthy(i) {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(m.logPath)
				c.t.Fatalf("etcd member %s not healthy after 30s; its log:\n%s", m.name, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
