// Package agent is one vxnet host: `vxnet agent`. It wires the parts and
// owns this host's endpoints; what it decides is in packages of their own
// (the drivers' decisions in driver, the desired state in plan, the row
// formats in tables, the state file in hoststate).
//
// New wires, bottom up: gossip and kvs (membership and the replicated
// tables: networks, endpoints, and IPAM's, which ipam/kvstable adapts),
// ipam.Global (subnets and per-host address blocks), dns.Server (with a
// listener in each container's namespace, dns.Namespaces), the switch
// (dataplane.Listen) and the host side of the networks (hostnet).
//
// Run starts the loops, then serves the API (package api) and, if asked,
// metrics. The files, by job:
//
//	agent.go      New, Run, persisting this host's rows
//	view.go       the tables, decoded once when they change; the API reads them
//	reconcile.go  watch → plan → apply: host side, switch, DNS, HNS
//	networks.go   network create and remove; which creation of a name wins
//	endpoints.go  endpoint create (check, reserve, acquire an address,
//	              commit) and remove; the API's lists
//	attach.go     this host's endpoints: devices, ports, DNS; restore at start
//	conflicts.go  what this host does when the cluster decides against one
//	              of its endpoints (name taken, address lost); recovery
//	dhcp.go       endpoints whose address a segment's DHCP server leases
//	names.go      names unique in any case, while being created
//	handover.go   devices a runtime moves into its containers (Docker):
//	              followed, adopted again after a restart; a runtime's
//	              later changes (aliases, published ports)
//	reservations.go  addresses a runtime reserves before its endpoint
//	              (Docker's IPAM), taken over by the endpoint
//	gatewaydns.go vxnet's resolver on gateways, for the queries of
//	              runtimes' resolvers (Docker's) that leave through them
//	server.go     the API socket; metrics.go the metrics and profiler
//
// Restart: New puts the saved rows back before joining, and Run re-creates
// the endpoints in their namespaces with the same addresses and MACs (a
// handed-over device, which outlives the agent, is opened again);
// endpoints whose namespace is gone are removed and their addresses
// released.
package agent
