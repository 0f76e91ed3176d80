package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Serve serves the plugin on the unix socket at path until stop is called.
// A socket file there that nothing answers on (left by an agent that died)
// is replaced; one that answers is refused.
func (p *Plugin) Serve(path string) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("docker plugin socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("docker plugin socket %s: another process serves it (another vxnet agent?)", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("docker plugin socket %s: a file that is not a socket is there", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("docker plugin socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("docker plugin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("docker plugin socket: %w", err)
	}
	mine, _ := os.Lstat(path)
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	// What Docker left while the agent was away goes once the agent is
	// ready (Docker activates the plugin only when it starts itself).
	p.goBG(p.collect)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		p.Close()
		if fi, err := os.Lstat(path); err == nil && mine != nil && os.SameFile(fi, mine) {
			os.Remove(path)
		}
	}, nil
}
