package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vxnet/vxnet/dns"
)

// EnvDNSChild marks the child process that runs vxnet's DNS server for
// RunDNS; its value is the number of names. A binary that runs RunDNS
// calls DNSChildMain first thing (the bench tests do, in TestMain).
const EnvDNSChild = "VXNET_BENCH_DNS_CHILD"

// DNSConfig is one DNS benchmark run. Zero fields take the defaults.
type DNSConfig struct {
	Names      int           // names served, default 1000
	Duration   time.Duration // of the full-speed run per server, default 10 s
	Clients    int           // dnsperf -c, default 10
	InFlight   int           // dnsperf -q, default 100
	FixedQPS   int           // rate of the latency run, default 20000
	FixedFor   time.Duration // length of the latency run, default 5 s
	ServerCPU  int           // core the servers are pinned to, default 0
	ClientCPU  int           // core dnsperf is pinned to, default 1
	Exe        string        // binary re-run as our server, default os.Executable
	SkipDnsmsq bool          // measure vxnet only
}

// DNSServerResult is what dnsperf measured against one server.
type DNSServerResult struct {
	Server   string  // "vxnet" or "dnsmasq"
	QPS      float64 // full speed, as dnsperf reports it
	Lost     float64 // fraction of queries lost in the full-speed run
	CPUus    float64 // server CPU time per query, in µs, full-speed run
	PerCore  float64 // queries per CPU-second of the server: 1e6 / CPUus
	P50, P99 time.Duration
	FixedQPS float64 // achieved in the latency run
}

// DNSResult is a side-by-side run.
type DNSResult struct {
	Servers []DNSServerResult
}

func (c *DNSConfig) defaults() {
	if c.Names == 0 {
		c.Names = 1000
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Clients == 0 {
		c.Clients = 10
	}
	if c.InFlight == 0 {
		c.InFlight = 100
	}
	if c.FixedQPS == 0 {
		c.FixedQPS = 20000
	}
	if c.FixedFor == 0 {
		c.FixedFor = 5 * time.Second
	}
	if c.ClientCPU == 0 && c.ServerCPU == 0 && runtime.NumCPU() > 1 {
		c.ClientCPU = 1
	}
}

// benchName is the i-th name and benchAddr its address.
func benchName(i int) string { return fmt.Sprintf("host%04d", i) }

func benchAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}) }

// RunDNS starts vxnet's DNS server (a child process, GOMAXPROCS=1, pinned
// to ServerCPU) and dnsmasq (pinned the same) on loopback with the same
// names, and runs dnsperf (pinned to ClientCPU) against each: full speed
// for qps and server CPU per query, then a fixed rate for latency
// percentiles (from dnsperf -v, one line per query).
func RunDNS(ctx context.Context, cfg DNSConfig) (DNSResult, error) {
	cfg.defaults()
	var res DNSResult
	for _, tool := range []string{"dnsperf", "taskset", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			return res, fmt.Errorf("bench: %s not found (Debian: apt-get install dnsperf dnsmasq util-linux): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "vxnet-bench-dns-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	queries, hosts := filepath.Join(dir, "queries"), filepath.Join(dir, "hosts")
	var q, h strings.Builder
	for i := range cfg.Names {
		fmt.Fprintf(&q, "%s A\n", benchName(i))
		fmt.Fprintf(&h, "%s %s\n", benchAddr(i), benchName(i))
	}
	if err := os.WriteFile(queries, []byte(q.String()), 0o644); err != nil {
		return res, err
	}
	if err := os.WriteFile(hosts, []byte(h.String()), 0o644); err != nil {
		return res, err
	}
	servers := []func() (*exec.Cmd, netip.AddrPort, error){
		func() (*exec.Cmd, netip.AddrPort, error) { return startVxnetDNS(cfg) },
	}
	if !cfg.SkipDnsmsq {
		servers = append(servers, func() (*exec.Cmd, netip.AddrPort, error) { return startDnsmasq(cfg, hosts) })
	}
	for i, start := range servers {
		r, err := measureDNS(ctx, cfg, []string{"vxnet", "dnsmasq"}[i], queries, start)
		if err != nil {
			return res, err
		}
		res.Servers = append(res.Servers, r)
	}
	return res, nil
}

func measureDNS(ctx context.Context, cfg DNSConfig, name, queries string, start func() (*exec.Cmd, netip.AddrPort, error)) (DNSServerResult, error) {
	r := DNSServerResult{Server: name}
	cmd, addr, err := start()
	if err != nil {
		return r, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := []string{"-c", strconv.Itoa(cfg.ClientCPU), "dnsperf", "-s", addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())), "-d", queries}
	// Warm up, then full speed.
	if _, err := dnsperf(ctx, append(base, "-l", "1", "-c", strconv.Itoa(cfg.Clients), "-q", strconv.Itoa(cfg.InFlight))...); err != nil {
		return r, fmt.Errorf("bench: dnsperf against %s: %w", name, err)
	}
	cpu0, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	out, err := dnsperf(ctx, append(base, "-l", secs(cfg.Duration), "-c", strconv.Itoa(cfg.Clients), "-q", strconv.Itoa(cfg.InFlight))...)
	if err != nil {
		return r, fmt.Errorf("bench: dnsperf against %s: %w", name, err)
	}
	cpu1, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	st, err := parseDnsperf(out)
	if err != nil {
		return r, fmt.Errorf("bench: dnsperf against %s: %w\n%s", name, err, out)
	}
	r.QPS, r.Lost = st.qps, st.lost
	if st.completed > 0 {
		r.CPUus = float64(cpu1-cpu0) * 1e6 / clockTicks / st.completed
		r.PerCore = 1e6 / r.CPUus
	}
	// Fixed rate, per-query latencies.
	out, err = dnsperf(ctx, append(base, "-l", secs(cfg.FixedFor), "-Q", strconv.Itoa(cfg.FixedQPS), "-c", strconv.Itoa(cfg.Clients), "-v")...)
	if err != nil {
		return r, fmt.Errorf("bench: dnsperf -Q against %s: %w", name, err)
	}
	st, err = parseDnsperf(out)
	if err != nil {
		return r, fmt.Errorf("bench: dnsperf -Q against %s: %w", name, err)
	}
	r.FixedQPS, r.P50, r.P99 = st.qps, st.pct(0.50), st.pct(0.99)
	return r, nil
}

func secs(d time.Duration) string { return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) }

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// cpuTicks is the user+system CPU time of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	return u + k, errors.Join(err1, err2)
}

// dnsperf runs taskset args (dnsperf pinned) with its output going to a
// file, not a pipe: reading 20k lines a second from a pipe would cost the
// client core, and the latency measured, more than the server does.
func dnsperf(ctx context.Context, args ...string) (string, error) {
	f, err := os.CreateTemp("", "vxnet-dnsperf-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, "taskset", args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if err != nil || rerr != nil {
		return string(out), fmt.Errorf("%w\n%s", errors.Join(err, rerr), out)
	}
	return string(out), nil
}

type dnsperfStats struct {
	qps, completed, lost float64
	lat                  []time.Duration // per query, with -v
}

func (s *dnsperfStats) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[min(len(s.lat)-1, int(p*float64(len(s.lat))))]
}

// parseDnsperf reads dnsperf 2.10's summary and, with -v, its per-query
// lines ("> NOERROR host0001 A 0.000123").
func parseDnsperf(out string) (dnsperfStats, error) {
	var s dnsperfStats
	var sent float64
	haveQPS := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "> ") && len(f) >= 5:
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				s.lat = append(s.lat, time.Duration(v*float64(time.Second)))
			}
		case strings.HasPrefix(line, "Queries per second:") && len(f) >= 4:
			s.qps, _ = strconv.ParseFloat(f[3], 64)
			haveQPS = true
		case strings.HasPrefix(line, "Queries completed:") && len(f) >= 3:
			s.completed, _ = strconv.ParseFloat(f[2], 64)
		case strings.HasPrefix(line, "Queries sent:") && len(f) >= 3:
			sent, _ = strconv.ParseFloat(f[2], 64)
		case strings.HasPrefix(line, "Queries lost:") && len(f) >= 3:
			s.lost, _ = strconv.ParseFloat(f[2], 64)
		}
	}
	if !haveQPS {
		return s, errors.New("no \"Queries per second\" in dnsperf's output")
	}
	if sent > 0 {
		s.lost /= sent
	}
	slices.Sort(s.lat)
	return s, nil
}

// startVxnetDNS re-runs cfg.Exe as DNSChildMain, pinned, GOMAXPROCS=1,
// and waits for the address it prints.
func startVxnetDNS(cfg DNSConfig) (*exec.Cmd, netip.AddrPort, error) {
	exe := cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, netip.AddrPort{}, err
		}
	}
	cmd := exec.Command("taskset", "-c", strconv.Itoa(cfg.ServerCPU), exe)
	cmd.Env = append(os.Environ(), EnvDNSChild+"="+strconv.Itoa(cfg.Names), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	if _, err := cmd.StdinPipe(); err != nil { // closed when we exit: the child follows
		return nil, netip.AddrPort{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, netip.AddrPort{}, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, perr := netip.ParseAddrPort(strings.TrimPrefix(strings.TrimSpace(line), "ready "))
	if err != nil || perr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, netip.AddrPort{}, fmt.Errorf("bench: vxnet dns child: %q: %v %v", line, err, perr)
	}
	return cmd, addr, nil
}

// DNSChildMain runs the benchmark's DNS server when EnvDNSChild is set,
// until stdin closes, then exits the process; otherwise it returns.
func DNSChildMain() {
	v := os.Getenv(EnvDNSChild)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err == nil {
		err = serveBenchDNS(n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vxnet dns child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveBenchDNS(n int) error {
	eps := make([]dns.Endpoint, n)
	for i := range eps {
		eps[i] = dns.Endpoint{Name: benchName(i), Network: "bench", Addrs: []netip.Addr{benchAddr(i)}, Local: true}
	}
	tab, err := dns.NewTable([]dns.Network{{Name: "bench", Scope: dns.ScopeGlobal}}, eps, 0)
	if err != nil {
		return err
	}
	cfg := dns.DefaultConfig()
	cfg.Upstreams = nil // nothing leaves the machine
	s, err := dns.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetRecords(tab)
	c, err := dns.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		return err
	}
	l, err := s.Serve(c, dns.View{Networks: []string{"bench"}})
	if err != nil {
		return err
	}
	fmt.Printf("ready %s\n", l.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// startDnsmasq runs dnsmasq pinned on a free loopback port with the
// names in hosts and nothing else (no upstream, no /etc/hosts, no config).
func startDnsmasq(cfg DNSConfig, hosts string) (*exec.Cmd, netip.AddrPort, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	cmd := exec.Command("taskset", "-c", strconv.Itoa(cfg.ServerCPU), "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hosts, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--port="+strconv.Itoa(int(addr.Port())), "--pid-file=", "--user=root", "--cache-size=10000", "--log-facility=/dev/null")
	if err := cmd.Start(); err != nil {
		return nil, addr, err
	}
	// Ready when it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("dig", "+short", "+time=1", "+tries=1", "-p", strconv.Itoa(int(addr.Port())), "@127.0.0.1", benchName(0)).Output()
		if strings.TrimSpace(string(out)) == benchAddr(0).String() {
			return cmd, addr, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, addr, fmt.Errorf("bench: dnsmasq on %s did not answer %s in 10 s: %q", addr, benchName(0), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// String formats a result as a small table.
func (r DNSResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %10s %8s %10s %12s %9s %9s %10s\n", "server", "qps", "lost", "cpu µs/q", "qps/core", "p50", "p99", "fixed qps")
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "%-8s %10.0f %7.2f%% %10.2f %12.0f %9v %9v %10.0f\n", s.Server, s.QPS, s.Lost*100, s.CPUus, s.PerCore,
			s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.FixedQPS)
	}
	return b.String()
}
