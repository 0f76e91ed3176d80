//go:build !linux

package udp

import (
	"errors"
	"net/netip"
)

// PathMTU is not known on this platform.
func PathMTU(local, dst netip.Addr) (int, error) {
	return 0, errors.New("udp: path MTU: not supported on this platform")
}
