//go:build !linux

package hostnet

import "net/netip"

// RoutedNetworks lists nothing on this platform (HNS keeps its own routes).
func RoutedNetworks() ([]netip.Prefix, error) { return nil, nil }
