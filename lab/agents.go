package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cliTimeout bounds one CLI call to an agent.
const cliTimeout = 5 * time.Second

// agentArgv is the command line of host h's agent.
func agentArgv(s *State, h *HostState, join []string) []string {
	argv := inNetns(h.Netns, s.Binary, "agent",
		"--name", h.Name,
		"--advertise-addr", h.Addr.String(),
		"--data-dir", h.DataDir,
		"--api-socket", h.Socket, "--docker-plugin", "off",
		"--profile", s.Profile,
		"--log-level", s.LogLevel)
	// Names the agent does not own go to the outside, the lab's only DNS
	// server; without it they would go to the machine's resolv.conf, whose
	// servers a lab host cannot reach.
	if s.Outside.Addr.IsValid() {
		argv = append(argv, "--dns-upstream", s.Outside.Addr.String())
	}
	if s.GossipPort != DefaultGossipPort {
		argv = append(argv, "--gossip-port", strconv.Itoa(s.GossipPort))
	}
	if s.GossipKeyFile != "" {
		argv = append(argv, "--gossip-key-file", hostKeyFile(h))
	}
	if s.JoinCertFile != "" {
		argv = append(argv, "--join-cert", s.JoinCertFile, "--join-key", s.JoinKeyFile)
	}
	if len(join) > 0 {
		argv = append(argv, "--join", strings.Join(join, ","))
	}
	if s.Store == StoreEtcd {
		argv = append(argv, "--store", "etcd", "--etcd-endpoints", s.EtcdEndpoint())
	}
	return argv
}

// StartAgent starts host's agent and waits until its API answers. It joins
// every host whose agent runs, so the first agent of a fresh lab starts
// alone and a restarted one finds the others.
func (l *Lab) StartAgent(ctx context.Context, host string) error {
	s := l.State()
	h, ok := s.Host(host)
	if !ok {
		return fmt.Errorf("no host %q in lab %s", host, s.ID)
	}
	if alive(h.Agent) {
		return fmt.Errorf("agent on %s already runs (pid %d)", host, h.Agent.PID)
	}
	var join []string
	for _, o := range s.Hosts {
		if o.Name != host && alive(o.Agent) {
			join = append(join, net.JoinHostPort(o.Addr.String(), strconv.Itoa(s.GossipPort)))
		}
	}
	if err := os.MkdirAll(h.DataDir, 0o700); err != nil {
		return err
	}
	if err := seedHostKey(&s, h); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := agentArgv(&s, h, join)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, exited, err := startProc(cmd)
	if err != nil {
		return &AgentError{Host: host, Log: h.Log, Err: err}
	}
	if err := l.update(func(s *State) { s.Hosts[hostIndex(s, host)].Agent = p }); err != nil {
		return err
	}
	start := time.Now()
	if err := l.waitAgent(ctx, *h, exited); err != nil {
		return err
	}
	l.say("  agent %-4s ready in %.1fs (pid %d, log %s)", host, time.Since(start).Seconds(), p.PID, h.Log)
	return nil
}

func hostIndex(s *State, host string) int {
	for i := range s.Hosts {
		if s.Hosts[i].Name == host {
			return i
		}
	}
	panic("lab: no host " + host)
}

// waitAgent polls until h's API socket exists and `cluster members`
// succeeds, the agent exits, or the ready timeout passes.
func (l *Lab) waitAgent(ctx context.Context, h HostState, exited <-chan error) error {
	deadline := time.Now().Add(l.cfg.ReadyTimeout)
	var last error
	for {
		select {
		case err := <-exited:
			return l.agentError(h, fmt.Errorf("exited before it was ready (%v)", err))
		default:
		}
		if _, err := os.Stat(h.Socket); err != nil {
			last = fmt.Errorf("no API socket %s", h.Socket)
		} else {
			cctx, cancel := context.WithTimeout(ctx, cliTimeout)
			_, err := l.Members(cctx, h.Name)
			cancel()
			if err == nil {
				return nil
			}
			last = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return l.agentError(h, fmt.Errorf("not ready after %v: %v", l.cfg.ReadyTimeout, last))
		}
		pause(ctx, pollInterval)
	}
}

func (l *Lab) agentError(h HostState, err error) *AgentError {
	b, _ := os.ReadFile(h.Log)
	return &AgentError{Host: h.Name, Log: h.Log, LogTail: lastLines(string(b), 20), Err: err}
}

// StopAgent stops host's agent: SIGTERM (a stop) with up to 10 s
// to exit, or SIGKILL at once when kill is set (a crash).
func (l *Lab) StopAgent(ctx context.Context, host string, kill bool) error {
	s := l.State()
	h, ok := s.Host(host)
	if !ok {
		return fmt.Errorf("no host %q in lab %s", host, s.ID)
	}
	grace := 10 * time.Second
	if kill {
		if err := signalProc(h.Agent, syscall.SIGKILL); err != nil {
			return err
		}
	}
	if _, err := stopProcs(ctx, []Proc{h.Agent}, grace); err != nil {
		return err
	}
	return l.update(func(s *State) { s.Hosts[hostIndex(s, host)].Agent = Proc{} })
}

// WaitMembers polls until every running agent lists every host of the lab
// as a cluster member.
func (l *Lab) WaitMembers(ctx context.Context) error {
	s := l.State()
	var want []string
	for _, h := range s.Hosts {
		want = append(want, h.Name)
	}
	deadline := time.Now().Add(l.cfg.ReadyTimeout)
	for {
		var last error
		for _, h := range s.Hosts {
			cctx, cancel := context.WithTimeout(ctx, cliTimeout)
			m, err := l.Members(cctx, h.Name)
			cancel()
			if err == nil {
				if missing := hasAll(memberNames(m), want); len(missing) > 0 {
					err = fmt.Errorf("%s sees %d members, not %s", h.Name, len(m), quoteList(missing))
				}
			}
			if err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return errors.New("cluster did not converge in " + l.cfg.ReadyTimeout.String() + ": " + last.Error())
		}
		pause(ctx, pollInterval)
	}
}

// hostKeyFile is a host's own gossip key file, beside its data directory,
// as each real host has its own: a key rotation rewrites each host's file
// on its own (and a host's lost state keeps its key, as on a real host).
func hostKeyFile(h *HostState) string {
	return filepath.Join(filepath.Dir(h.DataDir), "gossip.key")
}

// seedHostKey gives a host the lab's gossip key at its first start; later
// starts keep what its agent wrote there.
func seedHostKey(s *State, h *HostState) error {
	if s.GossipKeyFile == "" {
		return nil
	}
	if _, err := os.Stat(hostKeyFile(h)); err == nil {
		return nil
	}
	b, err := os.ReadFile(s.GossipKeyFile)
	if err != nil {
		return fmt.Errorf("lab gossip key: %w", err)
	}
	return os.WriteFile(hostKeyFile(h), b, 0o600)
}
