package agent

import (
	"net/netip"

	"github.com/vxnet/vxnet/dataplane/vxlan"
)

// StableMAC is the MAC the agent gives an endpoint with address a. It is
// vxlan.StableMAC, which static mode uses too: a MAC derived the same way
// on both sides lets a static file leave remote MACs out.
func StableMAC(a netip.Addr) vxlan.MAC { return vxlan.StableMAC(a) }
