//go:build !linux

package tun

import (
	"errors"
	"fmt"
	"net/netip"
)

// Readdress is not supported here: on Windows addresses are programmed
// through HNS.
func Readdress(netns, name string, remove, add, routes []netip.Prefix) error {
	return fmt.Errorf("tun: readdress %s: %w", name, errors.ErrUnsupported)
}
