//go:build !linux

package driver

import (
	"errors"
	"log/slog"

	"github.com/vxnet/vxnet/dataplane"
)

// Host is the host side of gateway networks; on this platform HNS does
// that work (see dataplane/hns), and Sync refuses gateway networks.
type Host struct{}

// NewHost returns a Host that programs nothing.
func NewHost(*dataplane.Switch, int, *slog.Logger) *Host { return &Host{} }

// Port returns nil.
func (*Host) Port(string) *dataplane.Port { return nil }

// Sync accepts no gateway networks.
func (*Host) Sync(nets []GatewayNetwork, _ []Published) error {
	if len(nets) > 0 {
		return errors.New("driver: gateway networks (nat) need Linux on this build")
	}
	return nil
}

// Prune removes nothing.
func (*Host) Prune([]GatewayNetwork) bool { return false }

// Uplink is not supported on this build.
func (*Host) Uplink(name string) (*dataplane.Uplink, error) {
	return nil, errors.New("driver: uplinks (transparent, l2bridge) need Linux on this build")
}

// DHCP is not supported on this build.
func (*Host) DHCP(name string) (*DHCPClients, error) {
	return nil, errors.New("driver: DHCP on uplinks needs Linux on this build")
}

// PruneUplinks does nothing.
func (*Host) PruneUplinks(map[string]bool) {}

// Close does nothing.
func (*Host) Close() error { return nil }
