// Package lab builds a vxnet cluster on one machine out of network
// namespaces: N hosts joined by an underlay bridge in 198.18.0.0/15 (the
// benchmarking range, RFC 2544), one agent per host, and containers that
// are namespaces with a vxnet endpoint. `vxnet lab`, the end-to-end tests
// and the benchmarks use it.
//
// Layout of a lab with ID "vxlab" and 3 hosts (k picked from the ID):
//
//	namespace vxlab-bridge:   br0 (Linux bridge: the underlay switch)
//	                          ports h1, h2, h3 = veth peers of each host's u0,
//	                          port out = veth peer of the outside's eth0
//	namespace vxlab-h1:       u0 198.18.k.1/24, vxnet agent --name h1
//	namespace vxlab-h2:       u0 198.18.k.2/24, vxnet agent --name h2 --join 198.18.k.1:7946
//	namespace vxlab-h3:       u0 198.18.k.3/24, vxnet agent --name h3 --join 198.18.k.1:7946
//	namespace vxlab-outside:  eth0 198.18.k.250/24 and no other route; every agent
//	                          has --dns-upstream 198.18.k.250
//	namespace vxlab-h1-c1:    a container on h1 (endpoint h1c1, created by the demo)
//
// Every link is created inside a namespace the lab owns; nothing touches
// the machine's own interfaces. The /24 (k) is derived from the ID, so two
// labs with different IDs also differ in addresses.
//
// The outside stands for the world beyond the cluster. It is on the
// underlay like a host, but runs no agent and has no route to any overlay
// subnet: a container reaches it only through its host's gateway, which
// masquerades the traffic, as it would reach a server on a real network.
// The agents forward the DNS names they do not own to it. The demo runs a
// TCP echo server and a DNS server there (dnsmasq, answering only
// OutsideName, outside.test) and checks, from every container, ping, TCP
// and DNS to the outside as to another container: the matrix's "outside"
// column.
//
// A lab outlives the process that built it: its state (hosts, addresses,
// sockets, agent PIDs with their start times, containers) is a JSON file in
// the lab directory (default /run/vxnet-lab/<ID>), so Open, Status and Down
// work from another process. Down is idempotent and also works after a
// partial Up: it stops the recorded processes by PID (checking the start
// time, so a reused PID is never signalled), stops whatever else still runs
// in the lab's namespaces, and deletes every namespace whose name follows the
// lab's pattern, their /etc/netns directories and the lab directory.
//
// The lab drives the agents only through the vxnet CLI (`vxnet --socket S
// ...`), as a person would, so it needs nothing but the standard library.
//
// Faults and campaigns: a lab can restart a host's agent (kill -9, SIGTERM,
// with its data directory moved away), pause it (SIGSTOP) and cut a host
// off the underlay (nftables rules in the host's own namespace). Chaos
// runs a seeded campaign of such faults and a workload of networks and
// endpoints on a lab of its own, keeps a history of what ran, checks the
// cluster's invariants over what the hosts and containers show
// (Invariants), and reports each violation with the seed that replays it.
package lab
