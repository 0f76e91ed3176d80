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

// dnsChildCommand is what RunDNS runs, after the binary, to start vxnet's
// DNS server, followed by the number of names: `vxnet bench dns-child N`
// (cmd/vxnet/bench.go), which calls ServeDNSChild. The server gets a
// process of its own so that, pinned to one core, the CPU time measured is
// its own.
var dnsChildCommand = []string{"bench", "dns-child"}

// DNSConfig is one DNS benchmark run. Zero fields take the defaults.
type DNSConfig struct {
	Names     int           // names served, default 1000
	Duration  time.Duration // of the full-speed run per server, default 10 s
	Clients   int           // dnsperf -c, default 10
	InFlight  int           // dnsperf -q, default 100
	FixedQPS  int           // rate of the latency runs, default 20000
	FixedFor  time.Duration // length of each latency run, default 3 s
	Reps      int           // latency runs per server, alternating servers, default 5
	ServerCPU int           // core the servers are pinned to, default 0
	// ServerProcs is GOMAXPROCS of vxnet's server (still pinned to one
	// core), default 2: its UDP loop sleeps in recvmmsg holding a P in
	// the syscall state, and with no P to spare the runtime's sysmon
	// takes that P back every 20 µs, waking up on the server's core each
	// time (dns/udp_linux.go).
	ServerProcs int
	ClientCPU   int    // core dnsperf is pinned to, default 1
	Exe         string // binary run as `Exe bench dns-child N` for our server, default os.Executable
	SkipDnsmsq  bool   // measure vxnet only
}

// DNSServerResult is what dnsperf measured against one server.
type DNSServerResult struct {
	Server   string        // "vxnet" or "dnsmasq"
	QPS      float64       // full speed, as dnsperf reports it
	Lost     float64       // fraction of queries lost in the full-speed run
	CPUus    float64       // server CPU time per query, in µs, full-speed run
	PerCore  float64       // queries per CPU-second of the server: 1e6 / CPUus
	P50, P99 time.Duration // medians over the latency runs
	P99Min   time.Duration // best latency run
	P99Max   time.Duration // worst latency run
	FixedQPS float64       // achieved in the latency runs (median)
	// P99Quiet is the median p99 of the quiet runs (Quiet), 0 if none
	// was: the figure to hold against a latency target.
	P99Quiet  time.Duration
	QuietRuns int
	Runs      []DNSLatencyRun
}

// QuietShare is the most that other tasks may take of either core for a
// latency run to count as quiet. Past it, p99 measures the machine: other
// load showed up as multi-millisecond stalls for both servers alike, and
// neither nice -20 nor SCHED_FIFO for servers and client took them away.
const QuietShare = 0.05

// Quiet says whether other tasks left both cores alone during the run.
func (r DNSLatencyRun) Quiet() bool {
	return r.OtherServerCPU <= QuietShare && r.OtherClientCPU <= QuietShare
}

// DNSLatencyRun is one fixed-rate run against one server. Other* are the
// shares of a core that tasks other than the server (resp. dnsperf) used
// during the run: above a few percent, the run measured the machine's
// load as much as the server.
type DNSLatencyRun struct {
	P50, P99, P999 time.Duration
	QPS            float64
	OtherServerCPU float64 // of ServerCPU, 0..1
	OtherClientCPU float64 // of ClientCPU, 0..1
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
		c.FixedFor = 3 * time.Second
	}
	if c.Reps == 0 {
		c.Reps = 5
	}
	if c.ServerProcs == 0 {
		c.ServerProcs = 2
	}
	if c.ClientCPU == 0 && c.ServerCPU == 0 && runtime.NumCPU() > 1 {
		c.ClientCPU = 1
	}
}

// benchName is the i-th name and benchAddr its address.
func benchName(i int) string { return fmt.Sprintf("host%04d", i) }

func benchAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}) }

// RunDNS starts vxnet's DNS server (a child process, pinned
// to ServerCPU) and dnsmasq (pinned the same) on loopback with the same
// names, and runs dnsperf (pinned to ClientCPU) against each: full speed
// for qps and server CPU per query, then Reps fixed-rate runs per server,
// alternating servers so that a burst of load elsewhere on the machine
// hits both, for latency percentiles (from dnsperf -v, one line per
// query; dnsperf 2.10 has no histogram). Latency is reported as the
// median over the runs, with the best and worst p99 beside it.
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
	var servers []*dnsTarget
	defer func() {
		for _, t := range servers {
			t.cmd.Process.Kill()
			t.cmd.Wait()
		}
	}()
	starts := []func() (*exec.Cmd, netip.AddrPort, error){func() (*exec.Cmd, netip.AddrPort, error) { return startVxnetDNS(cfg) }}
	if !cfg.SkipDnsmsq {
		starts = append(starts, func() (*exec.Cmd, netip.AddrPort, error) { return startDnsmasq(cfg, hosts) })
	}
	for i, start := range starts {
		cmd, addr, err := start()
		if err != nil {
			return res, err
		}
		servers = append(servers, &dnsTarget{name: []string{"vxnet", "dnsmasq"}[i], cmd: cmd, addr: addr})
	}
	for _, t := range servers {
		if err := t.measureQPS(ctx, cfg, queries); err != nil {
			return res, err
		}
	}
	for rep := range cfg.Reps {
		for i := range servers {
			t := servers[(i+rep)%len(servers)] // who goes first alternates
			if err := t.measureLatency(ctx, cfg, queries); err != nil {
				return res, err
			}
		}
	}
	for _, t := range servers {
		res.Servers = append(res.Servers, t.result())
	}
	return res, nil
}

// dnsTarget is one running server and what was measured against it.
type dnsTarget struct {
	name string
	cmd  *exec.Cmd
	addr netip.AddrPort
	r    DNSServerResult
}

// pinned is the command line that runs argv on core cpu.
func pinned(cpu int, argv ...string) []string {
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

func (t *dnsTarget) dnsperfArgs(cfg DNSConfig, queries string) []string {
	return pinned(cfg.ClientCPU, "dnsperf", "-s", t.addr.Addr().String(), "-p", strconv.Itoa(int(t.addr.Port())),
		"-d", queries, "-c", strconv.Itoa(cfg.Clients))
}

// measureQPS warms the server up, then runs dnsperf at full speed.
func (t *dnsTarget) measureQPS(ctx context.Context, cfg DNSConfig, queries string) error {
	base := append(t.dnsperfArgs(cfg, queries), "-q", strconv.Itoa(cfg.InFlight))
	if _, _, err := dnsperf(ctx, append(base, "-l", "1")...); err != nil {
		return fmt.Errorf("bench: dnsperf against %s: %w", t.name, err)
	}
	cpu0, err := cpuTicks(t.cmd.Process.Pid)
	if err != nil {
		return err
	}
	out, _, err := dnsperf(ctx, append(base, "-l", secs(cfg.Duration))...)
	if err != nil {
		return fmt.Errorf("bench: dnsperf against %s: %w", t.name, err)
	}
	cpu1, err := cpuTicks(t.cmd.Process.Pid)
	if err != nil {
		return err
	}
	st, err := parseDnsperf(out)
	if err != nil {
		return fmt.Errorf("bench: dnsperf against %s: %w\n%s", t.name, err, out)
	}
	t.r.QPS, t.r.Lost = st.qps, st.lost
	if st.completed > 0 {
		t.r.CPUus = float64(cpu1-cpu0) * 1e6 / clockTicks / st.completed
		t.r.PerCore = 1e6 / t.r.CPUus
	}
	return nil
}

// measureLatency runs dnsperf at cfg.FixedQPS with per-query output and
// notes how busy both cores were with other tasks meanwhile.
func (t *dnsTarget) measureLatency(ctx context.Context, cfg DNSConfig, queries string) error {
	args := append(t.dnsperfArgs(cfg, queries), "-l", secs(cfg.FixedFor), "-Q", strconv.Itoa(cfg.FixedQPS), "-v")
	srv0, err1 := cpuTicks(t.cmd.Process.Pid)
	busy0, err2 := coreBusyTicks()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	out, client, err := dnsperf(ctx, args...)
	if err != nil {
		return fmt.Errorf("bench: dnsperf -Q against %s: %w", t.name, err)
	}
	srv1, err1 := cpuTicks(t.cmd.Process.Pid)
	busy1, err2 := coreBusyTicks()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	st, err := parseDnsperf(out)
	if err != nil {
		return fmt.Errorf("bench: dnsperf -Q against %s: %w", t.name, err)
	}
	run := DNSLatencyRun{P50: st.pct(0.50), P99: st.pct(0.99), P999: st.pct(0.999), QPS: st.qps}
	if st.elapsed > 0 {
		total := st.elapsed * clockTicks
		run.OtherServerCPU = max(0, float64(busy1[cfg.ServerCPU]-busy0[cfg.ServerCPU]-(srv1-srv0))/total)
		run.OtherClientCPU = max(0, (float64(busy1[cfg.ClientCPU]-busy0[cfg.ClientCPU])-client.Seconds()*clockTicks)/total)
	}
	t.r.Runs = append(t.r.Runs, run)
	return nil
}

// result sums up the runs: medians, and the spread of p99.
func (t *dnsTarget) result() DNSServerResult {
	r := t.r
	r.Server = t.name
	if len(r.Runs) == 0 {
		return r
	}
	med := func(f func(DNSLatencyRun) float64) float64 {
		v := make([]float64, len(r.Runs))
		for i, run := range r.Runs {
			v[i] = f(run)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	r.P50 = time.Duration(med(func(x DNSLatencyRun) float64 { return float64(x.P50) }))
	r.P99 = time.Duration(med(func(x DNSLatencyRun) float64 { return float64(x.P99) }))
	r.FixedQPS = med(func(x DNSLatencyRun) float64 { return x.QPS })
	r.P99Min, r.P99Max = r.Runs[0].P99, r.Runs[0].P99
	var quiet []time.Duration
	for _, run := range r.Runs {
		r.P99Min, r.P99Max = min(r.P99Min, run.P99), max(r.P99Max, run.P99)
		if run.Quiet() {
			quiet = append(quiet, run.P99)
		}
	}
	if r.QuietRuns = len(quiet); r.QuietRuns > 0 {
		slices.Sort(quiet)
		r.P99Quiet = quiet[len(quiet)/2]
	}
	return r
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

// dnsperf runs argv (dnsperf, pinned) with its output going to a
// file, not a pipe: reading 20k lines a second from a pipe would cost the
// client core, and the latency measured, more than the server does. It
// returns the output and the CPU time dnsperf used.
func dnsperf(ctx context.Context, argv ...string) (string, time.Duration, error) {
	f, err := os.CreateTemp("", "vxnet-dnsperf-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, rerr := os.ReadFile(f.Name())
	if err != nil || rerr != nil {
		return string(out), 0, fmt.Errorf("%w\n%s", errors.Join(err, rerr), out)
	}
	return string(out), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// coreBusyTicks is the time each core spent not idle, from /proc/stat, in
// clock ticks.
func coreBusyTicks() ([]int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	var busy []int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var t int64
		for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bench: /proc/stat %s: %w", f[0], err)
			}
			if i != 3 && i != 4 {
				t += n
			}
		}
		busy = append(busy, t)
	}
	return busy, nil
}

type dnsperfStats struct {
	qps, completed, lost, elapsed float64
	lat                           []time.Duration // per query, with -v
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
		case strings.HasPrefix(line, "Run time (s):") && len(f) >= 4:
			s.elapsed, _ = strconv.ParseFloat(f[3], 64)
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

// startVxnetDNS runs cfg.Exe's dnsChildCommand, pinned,
// GOMAXPROCS=cfg.ServerProcs, and waits for the address it prints.
func startVxnetDNS(cfg DNSConfig) (*exec.Cmd, netip.AddrPort, error) {
	exe := cfg.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, netip.AddrPort{}, err
		}
	}
	argv := pinned(cfg.ServerCPU, slices.Concat([]string{exe}, dnsChildCommand, []string{strconv.Itoa(cfg.Names)})...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.ServerProcs))
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

// ServeDNSChild is the DNS server RunDNS starts in a child process. args
// are what follows dnsChildCommand: the number of names. It serves them on
// a loopback port, writes "ready ADDR" to ready, and returns when until
// ends: RunDNS holds the child's standard input open, so the server stops
// when the benchmark does, however it ends.
func ServeDNSChild(args []string, until io.Reader, ready io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("want one argument, the number of names; got %q", args)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("number of names %q: want a positive integer", args[0])
	}
	return serveBenchDNS(n, until, ready)
}

func serveBenchDNS(n int, until io.Reader, ready io.Writer) error {
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
	fmt.Fprintf(ready, "ready %s\n", l.Addr())
	io.Copy(io.Discard, until)
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
	argv := pinned(cfg.ServerCPU, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hosts, "--listen-address=127.0.0.1", "--bind-interfaces",
		"--port="+strconv.Itoa(int(addr.Port())), "--pid-file=", "--user=root", "--cache-size=10000", "--log-facility=/dev/null")
	cmd := exec.Command(argv[0], argv[1:]...)
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

// String formats a result as a small table: full speed, then latency at
// the fixed rate (medians over the runs; p99 range best..worst; other%:
// the most that other tasks took of the server core, then of the client
// core, in any run; quiet p99: median over the quiet runs, of n), then
// every run.
func (r DNSResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %10s %7s %9s %10s │ %7s %7s %19s %11s │ %14s\n", "server", "qps", "lost", "cpu µs/q", "qps/core",
		"p50", "p99", "p99 range", "max other%", "quiet p99 (n)")
	for _, s := range r.Servers {
		var os, oc float64
		for _, run := range s.Runs {
			os, oc = max(os, run.OtherServerCPU), max(oc, run.OtherClientCPU)
		}
		quiet := "-"
		if s.QuietRuns > 0 {
			quiet = s.P99Quiet.Round(time.Microsecond).String()
		}
		fmt.Fprintf(&b, "%-8s %10.0f %6.2f%% %9.2f %10.0f │ %7v %7v %9v..%-8v %5.0f/%-5.0f │ %9s (%d/%d)\n", s.Server, s.QPS,
			s.Lost*100, s.CPUus, s.PerCore, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond),
			s.P99Min.Round(time.Microsecond), s.P99Max.Round(time.Microsecond), os*100, oc*100, quiet, s.QuietRuns, len(s.Runs))
	}
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "%s runs (p50/p99/p99.9, other%% server/client):", s.Server)
		for _, run := range s.Runs {
			fmt.Fprintf(&b, " %v/%v/%v %.0f/%.0f;", run.P50.Round(time.Microsecond), run.P99.Round(time.Microsecond),
				run.P999.Round(time.Microsecond), run.OtherServerCPU*100, run.OtherClientCPU*100)
		}
		b.WriteString("\n")
	}
	return b.String()
}
