package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollEvery spaces the polls of a wait that has its own deadline.
const pollEvery = 50 * time.Millisecond

// bgProc is a process that runs beside the tests (vxnet, iperf3 -s).
type bgProc struct {
	name   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when it has exited and been reaped
	err    error         // its exit, valid once exited is closed
}

// tailBuffer keeps the last tailMax bytes written to it; safe for
// concurrent use.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// start starts argv in a session of its own (a terminal's ^C reaches only
// the benchmark, which then stops everything in order), killed by the
// kernel should the benchmark itself die. `ip netns exec` execs the
// command in place, so the PID is the command's own.
func (tb *testbed) start(name string, argv ...string) (*bgProc, error) {
	p := &bgProc{name: name, out: &tailBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	tb.procs = append(tb.procs, p)
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *bgProc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// failure describes a process that exited when it should not have.
func (p *bgProc) failure() error {
	return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, strings.TrimSpace(p.out.String()))
}

// startIperfServer runs iperf3 -s in the path's server namespace and
// waits until it listens.
func (tb *testbed) startIperfServer(ctx context.Context, path *benchPath) error {
	p, err := tb.start("iperf3 server ("+path.label+")", "ip", "netns", "exec", path.server, "iperf3", "-s", "--forceflush")
	if err != nil {
		return err
	}
	return poll(ctx, 10*time.Second, "iperf3 -s ("+path.label+") to listen", func() (bool, error) {
		if p.done() {
			return false, p.failure()
		}
		return strings.Contains(p.out.String(), "Server listening"), nil
	})
}

// waitPing pings across the path until a reply comes back: the devices
// are up, the addresses resolved, and vxnet forwards.
func (tb *testbed) waitPing(ctx context.Context, path *benchPath, timeout time.Duration) error {
	var last string
	err := poll(ctx, timeout, "a ping across "+path.label, func() (bool, error) {
		for _, p := range path.cpu {
			if p.done() {
				return false, p.failure()
			}
		}
		out, err := run(ctx, "ip", "netns", "exec", path.client, "ping", "-n", "-c", "1", "-W", "1", path.addr)
		last = out
		return err == nil, nil
	})
	if err != nil && last != "" {
		err = fmt.Errorf("%w; last ping:\n%s", err, strings.TrimSpace(last))
	}
	return err
}

// poll calls cond every pollEvery until it returns true or an error, ctx
// ends, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: no %s after %v", what, timeout)
		}
		t := time.NewTimer(pollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// close stops every process (SIGTERM, then SIGKILL after a grace period),
// kills whatever else still runs in the namespaces, deletes them, and
// checks that none is left. It runs on a context of its own: the run's
// may be the one that was cancelled.
func (tb *testbed) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for i := len(tb.procs) - 1; i >= 0; i-- {
		if p := tb.procs[i]; !p.done() {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range tb.procs {
		t := time.NewTimer(10 * time.Second)
		select {
		case <-p.exited:
		case <-t.C:
			p.cmd.Process.Kill()
			<-p.exited
		}
		t.Stop()
	}
	for _, ns := range tb.namespaces {
		errs = append(errs, deleteNetns(ctx, ns))
	}
	if left, err := listNetns(ctx, tb.cfg.Prefix); err != nil {
		errs = append(errs, err)
	} else if len(left) > 0 {
		errs = append(errs, fmt.Errorf("bench: namespaces left behind: %s", strings.Join(left, " ")))
	}
	if tb.dir != "" {
		errs = append(errs, os.RemoveAll(tb.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: cleaning up: %w", err)
	}
	fmt.Fprintf(tb.progress, "testbed removed (%d namespaces, %d processes)\n", len(tb.namespaces), len(tb.procs))
	return nil
}

// deleteNetns kills what still runs in ns (only the benchmark's own
// processes can: it created ns), then deletes it.
func deleteNetns(ctx context.Context, ns string) error {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, err = run(ctx, "ip", "netns", "del", ns)
	return err
}

// listNetns returns the namespaces whose names start with prefix.
func listNetns(ctx context.Context, prefix string) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// staleName matches the namespaces of a run: "vxb<pid>-<name>".
var staleName = regexp.MustCompile(`^vxb([0-9]+)-`)

// removeStaleNamespaces deletes the namespaces of earlier runs whose
// process is gone (killed with SIGKILL, say, before it could clean up).
func removeStaleNamespaces(progress io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := listNetns(ctx, "vxb")
	if err != nil {
		return
	}
	for _, ns := range names {
		m := staleName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // its run is still going
		}
		fmt.Fprintf(progress, "removing namespace %s, left by an earlier run (pid %s is gone)\n", ns, m[1])
		if err := deleteNetns(ctx, ns); err != nil {
			fmt.Fprintf(progress, "  %v\n", err)
		}
	}
}

// cpuSeconds is the CPU time (user + system) of procs together.
func cpuSeconds(procs []*bgProc) (float64, error) {
	var total int64
	for _, p := range procs {
		t, err := cpuTicks(p.cmd.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("cpu time of %s: %w", p.name, err)
		}
		total += t
	}
	return float64(total) / clockTicks, nil
}

// machineBusySeconds is the CPU time every core of the machine has been
// busy since boot (/proc/stat's cpu line: all but idle and iowait).
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d %q: %w", i+1, v, err)
		}
		if i == 3 || i == 4 || i >= 7 { // idle, iowait; steal (another guest's); guest times are in user already
			continue
		}
		busy += n
	}
	return float64(busy) / clockTicks, nil
}

// iperfBusy says whether iperf3 failed because the server was still
// finishing the previous test.
func iperfBusy(out []byte) bool {
	return bytes.Contains(out, []byte("busy"))
}
