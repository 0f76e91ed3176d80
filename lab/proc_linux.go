package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// checkPlatform says whether this process can build a lab here.
func checkPlatform() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root: it creates network namespaces (run it with sudo)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the lab needs the ip command: install iproute2 (make deps)")
	}
	return nil
}

// readProc reads /proc/PID/stat.
func readProc(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// identify returns the Proc of a running PID.
func identify(pid int) (Proc, error) {
	st, err := readProc(pid)
	if err != nil {
		return Proc{}, err
	}
	return Proc{PID: pid, Start: st.Start}, nil
}

// alive reports whether p still runs: same PID, same start time, not a
// zombie.
func alive(p Proc) bool {
	if p.PID <= 0 {
		return false
	}
	st, err := readProc(p.PID)
	return err == nil && st.Start == p.Start && st.State != 'Z'
}

// signalProc sends sig to p if p is still the process the lab started.
func signalProc(p Proc, sig syscall.Signal) error {
	if !alive(p) {
		return nil
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.PID, err)
	}
	return nil
}

// startProc starts cmd in a session of its own (so a terminal's ^C reaches
// only the lab, which then stops it in order), reaps it when it exits, and
// returns its identity and a channel that yields its exit.
func startProc(cmd *exec.Cmd) (Proc, <-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, nil, err
	}
	exited := make(chan error, 1)
	p, err := identify(cmd.Process.Pid)
	go func() { exited <- cmd.Wait() }()
	if err != nil {
		cmd.Process.Kill()
		return Proc{}, nil, fmt.Errorf("identifying pid %d: %w", cmd.Process.Pid, err)
	}
	return p, exited, nil
}

// pauseProc stops p with SIGSTOP: it keeps its sockets and memory but runs
// no more, as a host that hangs.
func pauseProc(p Proc) error { return signalProc(p, syscall.SIGSTOP) }

// resumeProc continues p after pauseProc (SIGCONT).
func resumeProc(p Proc) error { return signalProc(p, syscall.SIGCONT) }

// stopProcs sends SIGTERM to every live process of procs (and SIGCONT, so
// that a paused one handles it), waits up to grace for them to exit, then
// sends SIGKILL to the rest and waits for them too. It returns the
// processes that needed SIGKILL.
func stopProcs(ctx context.Context, procs []Proc, grace time.Duration) ([]Proc, error) {
	var errs []error
	for _, p := range procs {
		errs = append(errs, signalProc(p, syscall.SIGTERM), resumeProc(p))
	}
	left := waitGone(ctx, procs, grace)
	for _, p := range left {
		errs = append(errs, signalProc(p, syscall.SIGKILL))
	}
	if still := waitGone(ctx, left, 5*time.Second); len(still) > 0 {
		errs = append(errs, fmt.Errorf("pids %v still run after SIGKILL", pids(still)))
	}
	return left, errors.Join(errs...)
}

// waitGone polls until none of procs is alive or timeout passes, and
// returns those still alive.
func waitGone(ctx context.Context, procs []Proc, timeout time.Duration) []Proc {
	deadline := time.Now().Add(timeout)
	for {
		var left []Proc
		for _, p := range procs {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		procs = left
		pause(ctx, pollInterval)
	}
}
