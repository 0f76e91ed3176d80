//go:build !linux

package lab

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

func checkPlatform() error { return ErrNeedsLinux }

func identify(pid int) (Proc, error) { return Proc{}, ErrNeedsLinux }

func alive(p Proc) bool { return false }

func signalProc(p Proc, sig syscall.Signal) error { return ErrNeedsLinux }

func pauseProc(p Proc) error { return ErrNeedsLinux }

func resumeProc(p Proc) error { return ErrNeedsLinux }

func startProc(cmd *exec.Cmd) (Proc, <-chan error, error) { return Proc{}, nil, ErrNeedsLinux }

func stopProcs(ctx context.Context, procs []Proc, grace time.Duration) ([]Proc, error) {
	return nil, ErrNeedsLinux
}
