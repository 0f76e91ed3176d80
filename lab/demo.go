package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DemoConfig describes what the demo builds and checks.
type DemoConfig struct {
	// Network is the overlay network's name. Default "demo".
	Network string
	// Subnet is the network's subnet; empty lets the agent pick one.
	Subnet string
	// PerHost is how many containers each host gets. Default 2.
	PerHost int
	// Parallel is how many pairs of containers are checked at once.
	// Default 8.
	Parallel int
	// Attempts is how many times a check is tried before it counts as
	// failed. Default 3.
	Attempts int
	// EchoPort is the TCP port of each container's echo server. Default 7777.
	EchoPort int
	// Checks are the checks run for each pair. Default: all of them. A
	// check not run has Attempts 0 in the matrix.
	Checks []Check
	// KeepServers leaves the containers' echo servers and the outside's
	// echo and DNS servers running after the checks (the demo is kept to
	// look around); Down stops them.
	KeepServers bool
}

// DefaultDemoConfig returns the demo `vxnet lab demo` runs.
func DefaultDemoConfig() DemoConfig { return DemoConfig{}.withDefaults() }

func (d DemoConfig) withDefaults() DemoConfig {
	if d.Network == "" {
		d.Network = "demo"
	}
	if d.PerHost == 0 {
		d.PerHost = 2
	}
	if d.Parallel == 0 {
		d.Parallel = 8
	}
	if d.Attempts == 0 {
		d.Attempts = 3
	}
	if d.EchoPort == 0 {
		d.EchoPort = 7777
	}
	if d.Checks == nil {
		for c := range NumChecks {
			d.Checks = append(d.Checks, c)
		}
	}
	return d
}

func (d DemoConfig) validate() error {
	switch {
	case d.PerHost < 1 || d.PerHost > 50:
		return fmt.Errorf("containers per host %d: want 1 to 50", d.PerHost)
	case d.Parallel < 1:
		return fmt.Errorf("parallel %d: want at least 1", d.Parallel)
	case d.Attempts < 1:
		return fmt.Errorf("attempts %d: want at least 1", d.Attempts)
	case d.EchoPort < 1 || d.EchoPort > 65535:
		return fmt.Errorf("echo port %d: want 1 to 65535", d.EchoPort)
	}
	for _, c := range d.Checks {
		if c < 0 || c >= NumChecks {
			return fmt.Errorf("check %v: unknown", c)
		}
	}
	return nil
}

// RunDemo brings the lab up unless it is up already, runs the demo, and
// then takes down what it built (the whole lab if it brought it up, only
// the demo's network and containers otherwise), unless keep is set.
func RunDemo(ctx context.Context, cfg Config, dc DemoConfig, keep bool) (m *Matrix, err error) {
	cfg = cfg.withDefaults()
	l, err := Open(cfg)
	started := false
	if errors.Is(err, ErrNotUp) {
		l, err = Up(ctx, cfg)
		started = true
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if keep {
			if err == nil {
				l.sayKept(dc.withDefaults())
			} else {
				l.say("\nkept (--keep) as the demo left it:\n  %s", l.State().statusDownHint())
			}
			return
		}
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if started {
			err = errors.Join(err, l.Down(cctx))
		} else {
			err = errors.Join(err, l.RemoveDemo(cctx))
		}
	}()
	dc.KeepServers = keep
	return l.Demo(ctx, dc)
}

// Demo creates an overlay network and dc.PerHost containers on every host,
// checks ping, TCP and DNS between every ordered pair and from every
// container to the outside, and prints the matrix and its summary. It
// returns the matrix; a failed check is in the matrix, not in the error.
func (l *Lab) Demo(ctx context.Context, dc DemoConfig) (*Matrix, error) {
	dc = dc.withDefaults()
	if err := dc.validate(); err != nil {
		return nil, err
	}
	if err := demoTools(); err != nil {
		return nil, err
	}
	if err := l.demoReady(); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := l.createNetwork(ctx, dc); err != nil {
		return nil, err
	}
	if err := l.createContainers(ctx, dc); err != nil {
		return nil, err
	}
	l.waitEndpoints(ctx)
	if err := l.startEchoes(ctx, l.State().Containers, dc.EchoPort); err != nil {
		return nil, err
	}
	if err := l.startOutside(ctx, dc.EchoPort); err != nil {
		return nil, err
	}
	s := l.State()
	cs, out := s.Containers, outsideTarget(s.Outside)
	l.say("checking %d ordered pairs and %d containers to the outside (%d checks each, %d at a time)...",
		len(cs)*(len(cs)-1), len(cs), len(dc.Checks), dc.Parallel)
	m := l.checkAll(ctx, cs, &out, dc)
	if !dc.KeepServers || ctx.Err() != nil {
		l.stopEchoes(ctx)
		l.stopOutside(ctx)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	l.say("")
	m.Render(l.cfg.Out)
	l.say("")
	m.RenderSummary(l.cfg.Out)
	l.say("demo took %.1fs", time.Since(start).Seconds())
	return m, nil
}

// demoTools checks that the commands the demo runs are installed.
func demoTools() error {
	tools := []struct{ cmd, why, pkg string }{
		{"ping", "", "iputils-ping"},
		{"dig", "", "dnsutils"},
		{"dnsmasq", " (the outside's DNS server)", "dnsmasq"},
		{"nft", " (the hosts masquerade their containers' traffic to the outside with it)", "nftables"},
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			return fmt.Errorf("the demo needs %s%s: install %s (make deps)", t.cmd, t.why, t.pkg)
		}
	}
	return nil
}

// demoReady checks that the lab can run a demo: no earlier one left, and
// an outside to check (a lab built by an older vxnet has none).
func (l *Lab) demoReady() error {
	s := l.State()
	switch {
	case s.Network != "" || len(s.Containers) > 0:
		return fmt.Errorf("lab %s still has network %q and %d containers of an earlier demo (vxnet lab down --id %s)",
			s.ID, s.Network, len(s.Containers), s.ID)
	case s.Outside.Netns == "":
		return fmt.Errorf("lab %s has no outside namespace: it was built by an older vxnet (vxnet lab down --id %s, then up again)",
			s.ID, s.ID)
	}
	return nil
}

func (l *Lab) createNetwork(ctx context.Context, dc DemoConfig) error {
	s := l.State()
	args := []string{"network", "create", "-d", "overlay"}
	if dc.Subnet != "" {
		args = append(args, "--subnet", dc.Subnet)
	}
	if err := l.update(func(s *State) { s.Network = dc.Network }); err != nil {
		return err
	}
	if _, err := l.CLI(ctx, s.Hosts[0].Name, append(args, dc.Network)...); err != nil {
		return fmt.Errorf("creating network %s: %w", dc.Network, err)
	}
	l.say("network %s (overlay) created on %s", dc.Network, s.Hosts[0].Name)
	return nil
}

// createContainers makes dc.PerHost containers per host.
func (l *Lab) createContainers(ctx context.Context, dc DemoConfig) error {
	s := l.State()
	for i, h := range s.Hosts {
		for j := 1; j <= dc.PerHost; j++ {
			c, err := l.AddContainer(ctx, dc.Network, h.Name, ContainerName(i+1, j))
			if err != nil {
				return err
			}
			l.say("  container %-6s on %-4s %-15s namespace %s", c.Name, c.Host, c.Addr, c.Netns)
		}
	}
	return nil
}

// AddContainer makes a container on host: a namespace <ID>-<host>-c<N>
// (N counts the host's containers) with loopback up, and an endpoint name
// in network created through host's agent. It retries while the host has
// not yet learnt the network, up to the ready timeout. The container is in
// the state (so Down removes it) from before its namespace exists.
func (l *Lab) AddContainer(ctx context.Context, network, host, name string) (ContainerState, error) {
	var c ContainerState
	err := l.update(func(s *State) {
		ns, _ := s.containerNetns(host, 1)
		c = ContainerState{Name: name, Host: host, Netns: ns}
		s.Containers = append(s.Containers, c)
	})
	if err != nil {
		return c, err
	}
	// Recorded first, so that whatever happens next Down removes it; but
	// a namespace of that name that was there already is not the lab's.
	if err := l.addNetns(ctx, c.Netns); errors.Is(err, errNetnsNotMade) {
		uerr := l.update(func(s *State) {
			s.Containers = slices.DeleteFunc(s.Containers, func(o ContainerState) bool { return o.Netns == c.Netns })
		})
		if errors.Is(err, errNetnsExists) {
			err = fmt.Errorf("namespace %s exists already, and not as the lab's: remove it (the lab names its containers' namespaces %s-HOST-cN) or use another --id", c.Netns, l.cfg.ID)
		}
		return c, errors.Join(fmt.Errorf("container %s on %s: %w", name, host, err), uerr)
	} else if err != nil {
		return c, fmt.Errorf("container %s on %s: %w", name, host, err)
	}
	if err := l.attach(ctx, network, &c); err != nil {
		return c, fmt.Errorf("container %s on %s: %w", name, host, err)
	}
	return c, l.update(func(s *State) { s.Containers[containerIndex(s, c.Name)].Addr = c.Addr })
}

// attach creates the endpoint of c, whose namespace exists, and learns
// its address.
func (l *Lab) attach(ctx context.Context, network string, c *ContainerState) error {
	deadline := time.Now().Add(l.cfg.ReadyTimeout)
	for {
		_, err := l.CLI(ctx, c.Host, "endpoint", "create", "--network", network, "--name", c.Name, "--netns", c.Netns)
		ep, found := l.findEndpoint(ctx, c.Host, c.Name)
		if found && ep.Addr().IsValid() {
			c.Addr = ep.Addr()
			return nil
		}
		if err == nil {
			err = fmt.Errorf("created, but %s's endpoint ls shows no address for it", c.Host)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		pause(ctx, retryPause)
	}
}

func (l *Lab) findEndpoint(ctx context.Context, host, name string) (Endpoint, bool) {
	eps, err := l.Endpoints(ctx, host)
	if err != nil {
		return Endpoint{}, false
	}
	for _, e := range eps {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

func containerIndex(s *State, name string) int {
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return i
		}
	}
	panic("lab: no container " + name)
}

// waitEndpoints polls until every agent lists every container. It only
// warns when they do not: the checks then show what is missing.
func (l *Lab) waitEndpoints(ctx context.Context) {
	s := l.State()
	var want []string
	for _, c := range s.Containers {
		want = append(want, c.Name)
	}
	start, deadline := time.Now(), time.Now().Add(l.cfg.ReadyTimeout)
	for {
		var missing []string
		for _, h := range s.Hosts {
			eps, _ := l.Endpoints(ctx, h.Name)
			names := map[string]bool{}
			for _, e := range eps {
				names[e.Name] = true
			}
			for _, m := range hasAll(names, want) {
				missing = append(missing, h.Name+" lacks "+m)
			}
		}
		if len(missing) == 0 {
			l.say("every agent lists all %d endpoints (%.1fs)", len(want), time.Since(start).Seconds())
			return
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			l.say("warning: after %v, %s", l.cfg.ReadyTimeout, strings.Join(missing, ", "))
			return
		}
		pause(ctx, pollInterval)
	}
}

// startEchoes starts `vxnet lab tcp-echo --listen :port` in each of cs
// and waits until each says it listens.
func (l *Lab) startEchoes(ctx context.Context, cs []ContainerState, port int) error {
	s := l.State()
	dir := filepath.Join(s.Dir, "containers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, c := range cs {
		p, err := l.startEcho(ctx, s.Binary, c.Netns, port, filepath.Join(dir, c.Netns+"-echo.log"))
		if err != nil {
			return fmt.Errorf("echo server in %s: %w", c.Name, err)
		}
		err = l.update(func(s *State) {
			if i := slices.IndexFunc(s.Containers, func(o ContainerState) bool { return o.Netns == c.Netns }); i >= 0 {
				s.Containers[i].Echo = p
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// startEcho starts `vxnet lab tcp-echo --listen :port` in namespace ns and
// waits until it says it listens.
func (l *Lab) startEcho(ctx context.Context, bin, ns string, port int, logPath string) (Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return Proc{}, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return Proc{}, err
	}
	defer r.Close()
	argv := inNetns(ns, bin, "lab", "tcp-echo", "--listen", ":"+strconv.Itoa(port))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, logf
	p, exited, err := startProc(cmd)
	w.Close()
	if err != nil {
		return Proc{}, err
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.HasPrefix(s, EchoReady) {
			return p, nil
		}
		<-exited
		b, _ := os.ReadFile(logPath)
		return Proc{}, fmt.Errorf("did not start: %s", lastLines(string(b), 5))
	case <-time.After(l.cfg.ReadyTimeout):
	case <-ctx.Done():
	}
	stopProcs(context.WithoutCancel(ctx), []Proc{p}, time.Second)
	return Proc{}, fmt.Errorf("not listening after %v", l.cfg.ReadyTimeout)
}

// stopEchoes stops every container's echo server, even after ctx ends.
func (l *Lab) stopEchoes(ctx context.Context) error {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	var procs []Proc
	for _, c := range l.State().Containers {
		procs = append(procs, c.Echo)
	}
	_, err := stopProcs(ctx, procs, 5*time.Second)
	return errors.Join(err, l.update(func(s *State) {
		for i := range s.Containers {
			s.Containers[i].Echo = Proc{}
		}
	}))
}

// RemoveDemo removes the demo's containers (endpoints and namespaces) and
// network, and stops the outside's servers, leaving the lab up.
func (l *Lab) RemoveDemo(ctx context.Context) error {
	errs := []error{l.stopEchoes(ctx), l.stopOutside(ctx)}
	s := l.State()
	var left []ContainerState // whose namespace is still there: Down's to delete
	for _, c := range slices.Backward(s.Containers) {
		if _, err := l.CLI(ctx, c.Host, "endpoint", "rm", "--network", s.Network, c.Name); err != nil {
			errs = append(errs, err)
		}
		if _, err := l.run.run(ctx, "ip", "netns", "del", c.Netns); err != nil {
			errs = append(errs, err)
			left = append(left, c)
		}
		errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", c.Netns)))
	}
	if s.Network != "" {
		if _, err := l.CLI(ctx, s.Hosts[0].Name, "network", "rm", s.Network); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.RemoveAll(filepath.Join(s.Dir, "containers")), os.RemoveAll(filepath.Join(s.Dir, outsideDir)))
	errs = append(errs, l.update(func(s *State) { s.Containers, s.Network = left, "" }))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the demo: %w", err)
	}
	l.say("demo network %s and its %d containers removed; lab %s stays up", s.Network, len(s.Containers), s.ID)
	return nil
}

func (l *Lab) sayKept(dc DemoConfig) {
	s := l.State()
	l.say("\nkept (--keep). Try:")
	if len(s.Containers) > 1 {
		a, b := s.Containers[0], s.Containers[len(s.Containers)-1]
		l.say("  ip netns exec %s ping -c3 %s", a.Netns, b.Name)
		l.say("  ip netns exec %s dig +short %s.%s %s", a.Netns, b.Name, dc.Network, digAtAgent)
	}
	if len(s.Containers) > 0 && s.Outside.Addr.IsValid() {
		l.say("  ip netns exec %s ping -c3 %s   (the outside, through the container's host)", s.Containers[0].Netns, s.Outside.Addr)
	}
	l.say("  %s --socket %s endpoint ls", s.Binary, s.Hosts[0].Socket)
	l.say("  %s", s.statusDownHint())
}
