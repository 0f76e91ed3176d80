// Package agent is the composition root of a vxnet host: it wires the
// control plane to the data plane. Until the gossip control plane lands it
// offers RunStatic, which runs the switch from a static config file
// (`vxnet dataplane --config FILE`).
package agent
