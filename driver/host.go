package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// GatewayNetwork is a network whose gateway port lives on this host.
type GatewayNetwork struct {
	Network
	Masquerade bool // its packets to the outside leave with the host's address
}

// Published is a published port of a local endpoint.
type Published struct {
	Publish
	Network  string
	Endpoint string
	Addr     netip.Addr
}

// GatewayPrefix starts the name of every gateway device, so one netfilter
// rule can tell traffic between NAT networks from traffic leaving the host.
const GatewayPrefix = "vxg-"

// GatewayDevice is the host-side device name of a network's gateway:
// GatewayPrefix and 8 hex digits of the name's hash (interface names are at
// most 15 characters; network names are longer).
func GatewayDevice(network string) string {
	h := sha256.Sum256([]byte(network))
	return GatewayPrefix + hex.EncodeToString(h[:4])
}
