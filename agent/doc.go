// Package agent is the composition root of a vxnet host: `vxnet agent`.
//
// New wires, bottom up:
//
//   - gossip and kvs: membership and the replicated tables ("networks",
//     "endpoints", and "ipam", which ipam/kvstable adapts to ipam.Table);
//   - ipam.Global: subnets and per-host address blocks, cluster-wide;
//   - dns.Server: the embedded resolver, one listener in each container's
//     namespace, bound to the networks that container is attached to;
//   - dataplane.Switch: the VXLAN switch, a port per local endpoint.
//
// Run starts the loops: the switch, IPAM, the reconciler (every change of
// the networks and endpoints tables becomes a new forwarding snapshot and
// new DNS records, published whole, one at a time), the persister (this
// host's own rows and Lamport clock to DATA_DIR/state.json, with its
// endpoints and leases), then the API (HTTP + JSON on a unix socket,
// package api) and, if asked, Prometheus metrics and pprof.
//
// A change: CreateEndpoint checks the request, allocates an address
// (ipam), creates the TUN device in the container's namespace and its
// port, opens DNS there, writes the endpoint's row, saves the state; every
// agent's reconciler then programs the new endpoint. Restart: New puts the
// saved rows back before joining, and Run re-creates the endpoints in their
// namespaces with the same addresses and MACs; endpoints whose namespace
// is gone are removed and their addresses released.
package agent
