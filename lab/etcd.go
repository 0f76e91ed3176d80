package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EtcdEndpoint is the client URL of the lab's etcd (Store etcd).
func (s *State) EtcdEndpoint() string {
	return fmt.Sprintf("http://%s:2379", s.Outside.Addr)
}

// startEtcd starts a one-member etcd in the outside namespace, its data
// and log in the lab's directory, and waits until it answers.
func (l *Lab) startEtcd(ctx context.Context) error {
	s := l.State()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return fmt.Errorf("etcd is not installed (make deps installs Debian's etcd-server): %w", err)
	}
	if s.Outside.Netns == "" {
		return fmt.Errorf("lab %s has no outside namespace to run etcd in", s.ID)
	}
	dir := filepath.Join(s.Dir, outsideDir, "etcd")
	logPath := filepath.Join(s.Dir, outsideDir, "etcd.log")
	if err := os.MkdirAll(filepath.Join(s.Dir, outsideDir), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	client, peer := s.EtcdEndpoint(), fmt.Sprintf("http://%s:2380", s.Outside.Addr)
	argv := inNetns(s.Outside.Netns, bin, "--name", "lab", "--data-dir", dir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "lab="+peer, "--logger", "zap", "--log-level", "warn")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, exited, err := startProc(cmd)
	if err != nil {
		return err
	}
	if err := l.update(func(s *State) { s.Outside.Etcd = p }); err != nil {
		return err
	}
	return l.waitReady(ctx, "etcd", exited, logPath, func() (bool, string) {
		out, _ := l.run.run(ctx, inNetns(s.Outside.Netns, "curl", "-s", "-m", "1", client+"/health")...)
		return strings.Contains(out, `"health":"true"`), "not answering at " + client
	})
}
