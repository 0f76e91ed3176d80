package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vxnet/vxnet/internal/bindretry"
)

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
