//go:build !linux

package dns

import (
	"fmt"
	"net/netip"
)

// ListenNetns needs Linux network namespaces; elsewhere it returns
// ErrNotSupported (on Windows, listen on the container's vNIC address
// with Listen instead).
func ListenNetns(nsPath string, addr netip.AddrPort) (Conns, error) {
	return Conns{}, fmt.Errorf("dns: listen in netns %s on %s: %w", nsPath, addr, ErrNotSupported)
}
