// Package static runs one host's switch from a hand-written JSON file, with
// no control plane: `vxnet dataplane --config FILE`.
//
// Load reads and checks the file (errors name the field by its JSON path
// and quote the value, before any device exists); Run opens the underlay
// with dataplane.Listen, as the agent does, creates a TUN device in each
// local endpoint's namespace, publishes one forwarding table built from the
// file, and forwards until its context ends. Every remote endpoint is
// listed by hand; a remote MAC left out is vxlan.StableMAC of its first
// address, the MAC an agent would have given it.
//
// It serves as a data plane without a cluster (a lab, a benchmark, a peer
// of the kernel's own VXLAN device) and sits above dataplane only: it
// never imports the agent.
package static
