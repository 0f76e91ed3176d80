package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// outsideDir is where the outside's logs go, in the lab directory.
const outsideDir = "outside"

// startOutside starts the demo's servers in the outside: the TCP echo
// server on port, and a DNS server that answers OutsideName with the
// outside's address. It waits until both answer. Each is in the state as
// soon as it runs, so Down and stopOutside stop it whatever happens next.
func (l *Lab) startOutside(ctx context.Context, port int) error {
	s := l.State()
	o := s.Outside
	dir := filepath.Join(s.Dir, outsideDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	echo, err := l.startEcho(ctx, s.Binary, o.Netns, port, filepath.Join(dir, "echo.log"))
	if err != nil {
		return fmt.Errorf("echo server in the outside: %w", err)
	}
	if err := l.update(func(s *State) { s.Outside.Echo = echo }); err != nil {
		return err
	}
	if err := l.startOutsideDNS(ctx, o, dir); err != nil {
		return fmt.Errorf("DNS server in the outside: %w", err)
	}
	l.say("outside %s (%s): TCP echo on :%d, DNS server answering %s", o.Netns, o.Addr, port, OutsideName)
	return nil
}

// dnsmasqArgv is the command line of the outside's DNS server: dnsmasq on
// the outside's address only, with no upstream and no hosts file, that
// answers OutsideName and nothing else. --local makes it answer the other
// types of OutsideName itself (no records) rather than refuse them, as a
// real server would: a resolver that asks A and AAAA takes a refusal of
// either as a failure. --user=root: the user dnsmasq switches to by default
// exists only where the dnsmasq package (not dnsmasq-base) installed it.
func dnsmasqArgv(o OutsideState, pidFile string) []string {
	a := o.Addr.String()
	return inNetns(o.Netns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--user=root",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+a,
		"--local=/"+OutsideName+"/", "--address=/"+OutsideName+"/"+a, "--pid-file="+pidFile)
}

// startOutsideDNS starts dnsmasq in the outside, logging to dir, and waits
// until it answers.
func (l *Lab) startOutsideDNS(ctx context.Context, o OutsideState, dir string) error {
	logPath := filepath.Join(dir, "dnsmasq.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := dnsmasqArgv(o, filepath.Join(dir, "dnsmasq.pid"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, exited, err := startProc(cmd)
	if err != nil {
		return err
	}
	if err := l.update(func(s *State) { s.Outside.DNS = p }); err != nil {
		return err
	}
	return l.waitOutsideDNS(ctx, o, exited, logPath)
}

// waitOutsideDNS asks the outside's DNS server, from the outside, until it
// answers OutsideName with the outside's address, the server exits, or the
// ready timeout passes.
func (l *Lab) waitOutsideDNS(ctx context.Context, o OutsideState, exited <-chan error, logPath string) error {
	argv := inNetns(o.Netns, "dig", "+short", "+time=1", "+tries=1", "@"+o.Addr.String(), OutsideName)
	return l.waitReady(ctx, "dnsmasq", exited, logPath, func() (bool, string) {
		out, err := l.run.run(ctx, argv...)
		out = strings.TrimSpace(out)
		return err == nil && out == o.Addr.String(), fmt.Sprintf("%s not answered: %q", OutsideName, out)
	})
}

// waitReady polls ready until it says yes, the server (what, logging to
// logPath) exits, ctx ends or the ready timeout passes; ready also says
// what it saw last, for the error.
func (l *Lab) waitReady(ctx context.Context, what string, exited <-chan error, logPath string, ready func() (bool, string)) error {
	deadline := time.Now().Add(l.cfg.ReadyTimeout)
	for {
		ok, last := ready()
		if ok {
			return nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited (%v): %s", what, err, lastLines(string(b), 5))
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s after %v (log %s)", what, last, l.cfg.ReadyTimeout, logPath)
		}
		pause(ctx, pollInterval)
	}
}

// stopOutside stops the outside's echo and DNS servers, even after ctx
// ends.
func (l *Lab) stopOutside(ctx context.Context) error {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	o := l.State().Outside
	_, err := stopProcs(ctx, []Proc{o.Echo, o.DNS}, 5*time.Second)
	return errors.Join(err, l.update(func(s *State) { s.Outside.Echo, s.Outside.DNS = Proc{}, Proc{} }))
}
