//go:build !linux && !windows

package tun

import (
	"errors"
	"fmt"
)

// Create is not supported on this platform.
func Create(cfg Config) (Device, error) {
	return nil, fmt.Errorf("tun: create %s: %w", cfg.Name, errors.ErrUnsupported)
}
