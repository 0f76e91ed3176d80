// Package hns programs Windows' Host Networking Service (HNS) for vxnet's
// five network drivers: one HNS network per vxnet network and one HNS
// endpoint per container attachment, in the v2 schema that
// github.com/Microsoft/hcsshim/hcn wraps.
//
// The package is in three layers, so that all but the last build and test
// on any platform:
//
//	model     Network, Endpoint and their policies (model.go, policy.go):
//	          our own types, whose JSON has the shape of hcn's
//	          HostComputeNetwork and HostComputeEndpoint.
//	builders  BuildNetwork and BuildEndpoint (network.go, endpoint.go):
//	          a vxnet network or endpoint, per HNS network type, to the
//	          HNS document.
//	client    the Client interface (client.go), which Programmer drives to
//	          make HNS match what vxnet wants (programmer.go). NewHCN is the
//	          real client on Windows (hns_windows.go, the only file that
//	          imports hcn); package hnstest holds an in-memory fake.
//
// Which type a vxnet network takes is its driver's decision (package
// driver: HNSNetwork, HNSEndpoint); they map as Windows' own container
// networking does:
//
//	nat          NAT: endpoints get OutBoundNAT (the subnet excepted) and
//	             PortMapping policies for published ports.
//	transparent  Transparent on a host adapter (NetAdapterName).
//	l2bridge     L2Bridge on a host adapter; the virtual switch rewrites
//	             MACs to the host's.
//	l2tunnel     L2Tunnel on a host adapter, with a VSID when the network
//	             has a VNI; endpoints carry the allow/deny rules as ACLs.
//	overlay      Overlay: the VNI as the subnet's VSID, VXLAN on port 4789,
//	             the host's VTEP as provider address. Containers on other
//	             hosts are remote endpoints (flag 1) whose ProviderAddress
//	             policy is their host's VTEP, as Docker's Windows overlay
//	             does.
//
// Everything vxnet creates is named with NamePrefix ("vxnet-"), and
// Programmer never touches an object without it.
package hns
