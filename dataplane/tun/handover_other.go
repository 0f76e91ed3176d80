//go:build !linux

package tun

import (
	"errors"
	"fmt"
	"net/netip"
)

// CreateHandover is Linux only: Windows runtimes attach containers to HNS
// endpoints.
func CreateHandover(name string, mtu int) (Device, error) {
	return nil, fmt.Errorf("tun: create %s: %w", name, errors.ErrUnsupported)
}

// Adopt is Linux only.
func Adopt(netns string, addr netip.Addr, mtu int) (Device, string, error) {
	return nil, "", fmt.Errorf("tun: adopt in %s: %w", netns, errors.ErrUnsupported)
}

// Remove is Linux only.
func Remove(d Device) error { return errors.ErrUnsupported }

// Where is Linux only.
func Where(d Device, path string) (bool, string, error) { return false, "", errors.ErrUnsupported }

// Sweep is Linux only.
func Sweep(prefix string) ([]string, error) { return nil, nil }
