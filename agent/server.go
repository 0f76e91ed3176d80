package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vxnet/vxnet/api"
	"github.com/vxnet/vxnet/internal/bindretry"
	"github.com/vxnet/vxnet/ipam"
)

// The agent is the API server's backend (package api has the routes, the
// decoding and the error documents); here is only its socket.
var _ api.Backend = (*Agent)(nil)

// Network returns the network called name (the winning creation of the
// name), if there is one.
func (a *Agent) Network(name string) (api.Network, bool) {
	n, ok := a.network(name)
	return a.apiNetwork(n), ok
}

// NetworkBlocks fills in the address blocks hosts hold of network n, of
// both sides of a dual-stack one.
func (a *Agent) NetworkBlocks(n *api.Network) {
	if a.ipam == nil {
		return
	}
	sides := []string{n.Name}
	if n.Subnet6 != "" && a.sidesMatch(n.Name) {
		sides = append(sides, n.Name+ipam.V6Suffix)
	}
	for _, side := range sides {
		held, others, _ := a.ipam.BlockHolders(side)
		for _, b := range held {
			n.Blocks = append(n.Blocks, api.AddressBlock{Block: b.Block.String(), Host: b.Holder})
		}
		n.OtherBlocks += others
	}
}

// serveAPI serves the API on a unix socket readable by root only.
func (a *Agent) serveAPI(path string) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	// A socket that answers is another agent's, perhaps the one this
	// agent replaces, still shutting down: wait for it (internal/bindretry).
	ln, err := bindretry.Retry(a.log, "api-socket", path, a.cfg.BindTimeout, func() (net.Listener, error) { return listenAPISocket(path) })
	if err != nil {
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	// Removed on stop only while it is still this agent's: a successor
	// may have made its own by then.
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	mine, _ := os.Lstat(path)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		removeOwnSocket(path, mine)
		return nil, fmt.Errorf("api-socket %s: %w", path, err)
	}
	stopServing := api.Serve(ln, api.NewHandler(a))
	// Once only: after the file is gone, a successor's socket could
	// reuse its inode and pass for this agent's.
	var once sync.Once
	return func() {
		once.Do(func() {
			stopServing()
			removeOwnSocket(path, mine)
		})
	}, nil
}

// listenAPISocket listens on the unix socket at path. A socket file there
// that answers is another agent's (in use: retried by the caller); one
// that does not is left from a process that died, and is replaced.
func listenAPISocket(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: a running process answers on it", bindretry.ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

// removeOwnSocket removes the socket file at path if it is still the one
// this agent made (mine), not a successor's.
func removeOwnSocket(path string, mine os.FileInfo) {
	if fi, err := os.Lstat(path); err == nil && mine != nil && os.SameFile(fi, mine) {
		os.Remove(path)
	}
}
