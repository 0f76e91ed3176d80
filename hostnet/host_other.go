//go:build !linux

package hostnet

import (
	"errors"
	"log/slog"

	"github.com/vxnet/vxnet/dataplane"
	"github.com/vxnet/vxnet/dhcp"
)

// Host is the host side of gateway networks; on this platform HNS does
// that work (see hns), and Sync refuses gateway networks.
type Host struct{}

// NewHost returns a Host that programs nothing.
func NewHost(*dataplane.Switch, int, *slog.Logger, Guard) *Host { return &Host{} }

// Port returns nil.
func (*Host) Port(string) *dataplane.Port { return nil }

// Sync accepts no gateway networks.
func (*Host) Sync(nets []Gateway, _ []Published) error {
	if len(nets) > 0 {
		return errors.New("hostnet: gateway networks (nat) need Linux on this build")
	}
	return nil
}

// Prune removes nothing.
func (*Host) Prune([]Gateway) bool { return false }

// Uplink is not supported on this build.
func (*Host) Uplink(name string) (*dataplane.Uplink, error) {
	return nil, errors.New("hostnet: uplinks (transparent, l2bridge) need Linux on this build")
}

// DHCP is not supported on this build.
func (*Host) DHCP(name string) (*dhcp.Clients, error) {
	return nil, errors.New("hostnet: DHCP on uplinks needs Linux on this build")
}

// PruneUplinks does nothing.
func (*Host) PruneUplinks(map[string]bool) {}

// Close does nothing.
func (*Host) Close() error { return nil }
