package driver

import "github.com/vxnet/vxnet/hns"

// overlay is VXLAN between hosts: the switch does it all. On Windows HNS
// holds, besides this host's containers, a remote endpoint for every
// container on another host, behind that host's VTEP (as Docker's
// Windows overlay does).
type overlay struct{ base }

func (overlay) Name() string { return "overlay" }

func (overlay) Help() string { return "containers on every host, on one VXLAN segment (the default)" }

func (overlay) HNSNetwork(n Network, h Here) hns.NetworkSpec { return hnsNetwork(n, h, hns.Overlay) }

// HNSEndpoint: every endpoint, other hosts' ones as remote endpoints.
func (overlay) HNSEndpoint(_ Network, e hns.EndpointSpec) (hns.EndpointSpec, bool) { return e, true }
