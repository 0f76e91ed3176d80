package tun

import (
	"errors"
	"fmt"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Create creates a Wintun adapter. wintun.dll must sit beside the binary and
// the process needs administrator rights. Namespaces do not exist on
// Windows, and addresses are programmed through HNS, not here.
func Create(cfg Config) (Device, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Netns != "" {
		return nil, fmt.Errorf("tun: config Netns %q: network namespaces do not exist on Windows", cfg.Netns)
	}
	if len(cfg.Addresses) > 0 || len(cfg.Routes) > 0 {
		return nil, errors.New("tun: config Addresses, Routes: on Windows addresses and routes are programmed through HNS")
	}
	d, err := wgtun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("tun: create wintun adapter %s: %w", cfg.Name, err)
	}
	return d, nil
}
